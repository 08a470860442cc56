// Package gosdk connects mcpauth to the official MCP Go SDK
// (github.com/modelcontextprotocol/go-sdk).
//
// The SDK hands tool handlers the caller's identity through
// req.Extra.TokenInfo, and binds each stateful session to TokenInfo.UserID,
// rejecting a session ID presented with another user's key. Values added to
// later HTTP requests' contexts do not reach handlers of a stateful session,
// so the principal must travel as TokenInfo. Bridge does that:
//
//	handler := mcp.NewStreamableHTTPHandler(getServer, nil)
//	mux.Handle("/mcp", guard.Require(gosdk.Bridge(handler)))
//
// and tool handlers read the principal with Principal(req.Extra).
package gosdk

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpauth/mcpauth/mcpauth"
)

// ExtraKey is the TokenInfo.Extra entry holding the mcpauth.Principal.
const ExtraKey = "mcpauth.principal"

// noExpiryHorizon is the Expiration reported for keys that never expire:
// the SDK requires one, and a request-scoped TokenInfo needs no more.
const noExpiryHorizon = 24 * time.Hour

// TokenInfo converts a principal to the SDK's TokenInfo: UserID, Scopes and
// Expiration are always set (a key without expiry reports now+24h, since
// each request gets a fresh TokenInfo), and Extra[ExtraKey] holds p.
func TokenInfo(p mcpauth.Principal, now time.Time) *auth.TokenInfo {
	exp := p.ExpiresAt
	if exp.IsZero() {
		exp = now.Add(noExpiryHorizon)
	}
	return &auth.TokenInfo{
		UserID:     p.UserID,
		Scopes:     p.Scopes,
		Expiration: exp,
		Extra:      map[string]any{ExtraKey: p},
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
		return TokenInfo(p, time.Now()), nil
	}
	inner := auth.RequireBearerToken(verifier, nil)(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := mcpauth.PrincipalFrom(r.Context()); !ok {
			mcpauth.DefaultErrorHandler(w, r, mcpauth.ErrNoCredential)
			return
		}
		if v := r.Header.Get("Authorization"); len(v) < 7 || !strings.EqualFold(v[:7], "bearer ") {
			r = r.Clone(r.Context())
			r.Header.Set("Authorization", placeholder)
		}
		inner.ServeHTTP(w, r)
	})
}
