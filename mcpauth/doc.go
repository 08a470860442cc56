// Package mcpauth puts API-key authentication in front of a Model Context
// Protocol server, as plain net/http middleware: the request path.
//
//	import "github.com/mcpauth/mcpauth/mcpauth"
//
//	guard, err := mcpauth.New(keys, &mcpauth.Options{Peppers: peppers})
//	...
//	mux.Handle("/mcp", guard.Require(mcpHandler))
//
// Handlers read the caller with PrincipalFrom(r.Context()) and scope every
// data access by Principal.UserID.
//
// The host's key-management code (settings pages, admin tools) uses package
// keyadmin, which issues, rotates and revokes the keys a Guard accepts;
// package apikey is the key format both share, and package notify the
// notifications both send.
//
// # Keys
//
// A key looks like mcp_0BPJ6Sm2Vx1q7hU3dZ8kLw4tYc9fRn5gEa2iK0oWX1pQ (see
// package apikey): a prefix, a public key ID, a secret and a checksum, so
// that malformed and mistyped keys are refused before any store access. The
// store keeps HMAC-SHA256(pepper, key ID + secret) when a pepper is
// configured (recommended: keep the pepper outside the database), plain
// SHA-256 otherwise. The first of Options.Peppers is current; the others are
// retired peppers still accepted for keys they hashed. Hashes are compared
// in constant time.
//
// # The request path
//
// Require takes each request through one step per file, in this order:
// credential.go reads the key from "Authorization: Bearer" or "X-API-Key"
// (never from the URL; two different keys are refused); verify.go checks its
// format and checksum, finds its record in a bounded cache or the store,
// compares the hash, checks revocation, expiry, the key's address allowlist
// and Options.Users; inspect.go reads the JSON-RPC messages of a POST once;
// limit.go spends the rate limit; policy.go checks each message against
// Options.Policy; record.go writes the audit events; respond.go answers a
// refusal. The request's facts (client address, request ID, messages) are
// gathered once, in require.go, and handed to each step.
//
// Verified keys are cached for Options.CacheTTL (default 30s), never past the
// key's own expiry; unknown key IDs are cached as unknown for
// Options.NegativeCacheTTL (default 5s) so floods of made-up keys do not
// reach the store. Forget drops a key at once (keyadmin's OnChange calls
// it); a Guard given the shared change channel (Options.Changes:
// PostgreSQL LISTEN/NOTIFY or Redis pub/sub) drops a key changed on any
// instance when the change arrives (milliseconds); Guards over a store that
// lists changes (the SQL store) also poll it, and drop keys changed
// elsewhere (revoked, given a new expiry) within
// Options.RevocationPollInterval (default 1s) when the channel is down or
// absent; others within CacheTTL. Last-used times are coalesced in memory and
// written in one batch every Options.TouchInterval; Close flushes them.
//
// # Responses
//
//	no credential              401  WWW-Authenticate: Bearer realm="mcp"
//	malformed/unknown/revoked/
//	  expired key              401  ... error="invalid_token", one message for all
//	two different keys         400  ... error="invalid_request"
//	scope, blocked, inactive   403  ... error="insufficient_scope" when a scope would allow it
//	rate limited               429  Retry-After
//	store or user check down   503  fail closed, no internal error text
//
// MCP POSTs get a JSON-RPC error carrying the request's id (see
// RefusalMode); other requests {"error": code, "message": text}.
// Options.ErrorHandler replaces all of them; ResponseFor is the one mapping
// from error to response, and WriteError answers through the Guard's hook.
//
// # OAuth access tokens
//
// With Options.OAuth (an accesstoken.Verifier, such as module
// github.com/mcpauth/mcpauth/mcpauth/oauth's), the same endpoint also
// accepts OAuth access tokens: a credential's kind is told from its shape
// (an mcpauth key, a JWT of three dot-separated parts, else an opaque
// token), the verifier's accesstoken.Token becomes a Principal like a key's (Kind,
// Issuer and ClientID say where it came from), and verdicts are cached by
// the token's SHA-256 until Token.CacheUntil, never past its expiry.
// Challenges then carry resource_metadata, and ResourceMetadataHandler
// serves the protected resource metadata (RFC 9728). See docs/oauth.md.
//
// # Concurrency
//
// A Guard is safe for concurrent use. Its background work (last-used
// times, notifications, the revocation poll) stops with Close.
package mcpauth
