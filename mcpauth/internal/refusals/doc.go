// Package refusals holds only tests: every refusal of mcpauth's Require
// (no key, invalid or revoked key, inactive account, address, scope,
// blocked target, rate limit, body too large, store down, and the raw-POST
// ones: not JSON, Mcp-Name mismatch, batches) against real MCP clients —
// the official Go SDK client (protocol 2026-07-28 and 2025-06-18), the
// mcp-go client and the TypeScript SDK client (node, ts/client.mjs) — over
// real HTTP servers (go-sdk and mcp-go) behind Require, in each
// mcpauth.RefusalMode. Each client opens a session with a good key, meets
// every refusal, and completes a tool call on the same session after each.
//
// What the clients returned is written to docs/refusals.md; the test fails
// when the file differs from the outcomes, and
//
//	go test ./mcpauth/internal/refusals -update
//
// rewrites it. The TypeScript client needs node and `npm ci` in ts/ (done by
// .ci/node.sh); without them its tests skip, or fail when
// MCPAUTH_TEST_REQUIRE_SERVICES=1.
package refusals
