package gosdk

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/scope"
)

// ExtraKey is the TokenInfo.Extra entry holding the mcpauth.Principal.
const ExtraKey = "mcpauth.principal"

// ScopesKey is the TokenInfo.Extra entry holding the principal's scopes
// parsed once per HTTP request (a scope.Set), so that Middleware does not
// parse them for every message. Absent when the principal's scopes do not
// parse (Middleware then refuses every policy-checked operation).
const ScopesKey = "mcpauth.scopes"

// noExpiryHorizon is the Expiration reported for keys that never expire:
// the SDK requires one, and a request-scoped TokenInfo needs no more.
const noExpiryHorizon = 24 * time.Hour

// TokenInfo converts a principal to the SDK's TokenInfo: UserID, Scopes and
// Expiration are always set (a key without expiry reports now+24h, since
// each request gets a fresh TokenInfo), Extra[ExtraKey] holds p and
// Extra[ScopesKey] its parsed scopes.
func TokenInfo(p mcpauth.Principal, now time.Time) *auth.TokenInfo {
	set, err := scope.ParseSet(p.Scopes)
	return tokenInfo(p, set, err == nil, now)
}

// tokenInfo builds the TokenInfo with scopes already parsed (by the Guard,
// once per key, for Bridge).
func tokenInfo(p mcpauth.Principal, set scope.Set, setOK bool, now time.Time) *auth.TokenInfo {
	exp := p.ExpiresAt
	if exp.IsZero() {
		exp = now.Add(noExpiryHorizon)
	}
	extra := map[string]any{ExtraKey: p}
	if setOK {
		extra[ScopesKey] = set
	}
	return &auth.TokenInfo{
		UserID:     p.UserID,
		Scopes:     p.Scopes,
		Expiration: exp,
		Extra:      extra,
	}
}

// Principal returns the mcpauth principal of an SDK request, from
// extra.TokenInfo. It returns false when the request did not pass through
// Bridge. It never panics.
func Principal(extra *mcp.RequestExtra) (mcpauth.Principal, bool) {
	if extra == nil || extra.TokenInfo == nil {
		return mcpauth.Principal{}, false
	}
	p, ok := extra.TokenInfo.Extra[ExtraKey].(mcpauth.Principal)
	return p, ok
}

// Scopes returns the parsed scopes of an SDK request's principal, and
// false when the request carries no principal or its scopes do not parse.
// It never panics.
func Scopes(extra *mcp.RequestExtra) (scope.Set, bool) {
	if extra == nil || extra.TokenInfo == nil {
		return scope.Set{}, false
	}
	if set, ok := extra.TokenInfo.Extra[ScopesKey].(scope.Set); ok {
		return set, true
	}
	p, ok := extra.TokenInfo.Extra[ExtraKey].(mcpauth.Principal)
	if !ok {
		return scope.Set{}, false
	}
	set, err := scope.ParseSet(p.Scopes)
	if err != nil {
		return scope.Set{}, false
	}
	return set, true
}

// placeholder is the bearer value Bridge shows the SDK for requests that
// authenticated with X-API-Key: the SDK's auth layer wants an Authorization
// header, but the key was already verified by mcpauth.
const placeholder = "Bearer mcpauth-verified"

// Bridge passes the principal that mcpauth's Require put in the request
// context to the SDK handler h as auth.TokenInfo. It must sit inside
// Require; a request without a principal gets 401 (fail closed).
func Bridge(h http.Handler) http.Handler {
	verifier := func(_ context.Context, _ string, r *http.Request) (*auth.TokenInfo, error) {
		p, ok := mcpauth.PrincipalFrom(r.Context())
		if !ok {
			return nil, auth.ErrInvalidToken
		}
		set, _ := mcpauth.ScopesFrom(r.Context())
		return tokenInfo(p, set, true, time.Now()), nil
	}
	inner := auth.RequireBearerToken(verifier, nil)(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := mcpauth.PrincipalFrom(r.Context()); !ok {
			mcpauth.WriteError(w, r, mcpauth.ErrNoCredential)
			return
		}
		if v := r.Header.Get("Authorization"); len(v) < 7 || !strings.EqualFold(v[:7], "bearer ") {
			r = r.Clone(r.Context())
			r.Header.Set("Authorization", placeholder)
		}
		inner.ServeHTTP(w, r)
	})
}
