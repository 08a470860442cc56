// Package gateway is the "mcpauth gateway" command's server: it puts an
// mcpauth Guard (keys, MCP policy, rate limits, audit) in front of an MCP
// server written in any language, reached over streamable HTTP or started
// as a stdio process per session, and adds what a deployed proxy needs:
// /health and /ready, a configuration file whose policy, limits and OAuth
// issuers reload on SIGHUP without dropping connections, graceful shutdown that drains
// streams and flushes audit, and a structured log that names keys by ID
// only. docs/gateway.md is the operator's guide.
//
// # Request path
//
//	client ─▶ host check ─▶ access log ─▶ Guard.Require ─▶ upstream
//	                                       (current generation)  (HTTP proxy or stdio sessions)
//
// A reload builds a new Guard (a generation) and swaps it in; requests in
// flight finish on the one they started with, which is closed once they
// have. Each generation has its OAuth verifier: a new one when the oauth
// table or the introspection client secret changed, else the running one,
// with the keys it fetched. Rate-limit budgets live in one limiter shared by all generations,
// so a reload neither refills nor empties them: in memory, or in Redis
// (rate_limit.redis_url_env, module ratelimit/redislimit), where every
// gateway instance using that Redis spends from the same budgets.
package gateway
