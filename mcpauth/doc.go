// Package mcpauth puts API-key authentication in front of a Model Context
// Protocol server, as plain net/http middleware.
//
//	guard, err := mcpauth.New(keys, &mcpauth.Options{Peppers: peppers})
//	...
//	mux.Handle("/mcp", guard.Require(mcpHandler))
//
// Handlers read the caller with PrincipalFrom(r.Context()) and scope every
// data access by Principal.UserID.
//
// # Keys
//
// A key looks like mcp_0BPJ6Sm2Vx1q7hU3dZ8kLw4tYc9fRn5gEa2iK0oWX1pQ: a
// prefix, a 12-character public key ID, a 24-character secret (about 142
// bits from crypto/rand) and a 6-character CRC32 checksum, all base62, so
// that a double click selects the whole key. ParseKey rejects malformed and
// mistyped keys before any store access. Secret scanners can find leaked keys
// with the expression from ScannerRegexp:
//
//	\bmcp_[0-9A-Za-z]{42}\b
//
// The raw key is returned once, by Manager.Create, and never stored or
// logged: the store keeps HMAC-SHA256(pepper, key ID + secret) when a pepper
// is configured (recommended: keep the pepper outside the database), plain
// SHA-256 otherwise. The first of Options.Peppers is current; the others are
// retired peppers still accepted for keys they hashed. Hashes are compared in
// constant time.
//
// # The request path
//
// Require reads the key from "Authorization: Bearer" or "X-API-Key" (never
// from the URL; two different keys are rejected), checks its format and
// checksum, finds its record in a bounded in-memory cache or the store,
// compares the hash, checks revocation and expiry, asks Options.Users whether
// the user is active, and calls the next handler with the Principal in the
// context.
//
// Verified keys are cached for Options.CacheTTL (default 30s), never past the
// key's own expiry; unknown key IDs are cached as unknown for
// Options.NegativeCacheTTL (default 5s) so floods of made-up keys do not
// reach the store. A key revoked through the Guard's Manager stops working at
// once in this process; in other processes within CacheTTL. Last-used times
// are coalesced in memory and written in one batch every
// Options.TouchInterval; Close flushes them.
//
// # Responses
//
//	no credential              401  WWW-Authenticate: Bearer realm="mcp"
//	malformed/unknown/revoked/
//	  expired key              401  ... error="invalid_token", one message for all
//	two different keys         400  ... error="invalid_request"
//	user inactive              403
//	store or user check down   503  fail closed, no internal error text
//
// Bodies are JSON {"error": code, "message": text}. Options.ErrorHandler
// replaces all of them; ResponseFor is the one mapping from error to status.
//
// # Concurrency
//
// Guard and Manager are safe for concurrent use. A Guard with a store that
// implements store.Toucher runs one background goroutine; Close stops it.
package mcpauth
