// Package oauth verifies OAuth 2.1 access tokens for an mcpauth Guard, so
// that one MCP endpoint accepts OAuth tokens and mcpauth API keys with one
// authorization model (the same Principal, Policy, rate limits and audit).
//
//	v, err := oauth.New("https://mcp.example.com/mcp", []oauth.Issuer{
//		{URL: "https://example.eu.auth0.com/", TokenTypes: []string{"JWT"}},
//	}, &oauth.Options{ScopesSupported: []string{"documents:read"}})
//	...
//	guard, err := mcpauth.New(keys, &mcpauth.Options{OAuth: v})
//	mux.Handle("/mcp", guard.Require(mcpHandler))
//	mux.Handle(accesstoken.WellKnownPath, guard.ResourceMetadataHandler())
//	mux.Handle(accesstoken.WellKnownPath+"/", guard.ResourceMetadataHandler())
//
// It is a module of its own (github.com/mcpauth/mcpauth/mcpauth/oauth), so
// that the core module needs no JOSE library. Signatures are checked by
// github.com/go-jose/go-jose/v4; nothing here is hand-written cryptography.
//
// # JWT access tokens (RFC 9068)
//
// A token is parsed with an allowlist of asymmetric algorithms ("none" and
// HMAC are never accepted); its unverified "iss" picks the configured
// Issuer (an unknown issuer is refused and nothing is fetched); its "typ"
// must be one of Issuer.TokenTypes (default "at+jwt"); its "kid" picks a
// key from the issuer's JWKS (found through discovery, fetched on first
// use, fetched again for an unknown kid at most once per
// Options.KeysRefreshFloor, and after Options.KeysMaxAge; one fetch per
// issuer at a time, which the client that started it cannot cancel by
// hanging up: see Options.HTTPClient); then the
// signature, "iss", "aud" (Issuer.Audiences, default the resource: RFC
// 8707), "exp" (required), "nbf" and "iat" are checked with
// Options.ClockSkew (default 30s, at most 5m).
//
// # Opaque tokens (RFC 7662)
//
// One issuer may have Introspection: tokens of no key and no JWT shape are
// posted to its introspection endpoint with the resource server's client
// credentials. An active answer must name this resource in "aud" (unless
// Introspection.UnsafeAcceptMissingAudience) and is cached by the Guard
// for Introspection.CacheTTL (default 10s), never past its "exp"; an
// inactive one is remembered for Introspection.NegativeCacheTTL (default
// 5s). At most Introspection.MaxConcurrent calls (default 8) are in flight.
//
// # Errors
//
// A bad token is an error wrapping one of package accesstoken's errors
// (ErrSignature, ErrIssuer, ErrAudience, ErrExpired, ErrNotYetValid,
// ErrType, ErrInactive, else ErrInvalid): the client gets 401
// invalid_token, audit the precise reason. An issuer that cannot be reached
// (no keys yet, introspection down) is accesstoken.ErrUnavailable, which the
// Guard answers 503 (fail closed).
//
// A Verifier is safe for concurrent use and starts no goroutines.
package oauth
