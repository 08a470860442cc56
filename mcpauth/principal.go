package mcpauth

import (
	"context"
	"slices"
	"time"

	"github.com/mcpauth/mcpauth/scope"
)

// Principal is who a request acts for: the key (or OAuth access token)
// that authenticated it and the host user it belongs to. Handlers get it
// with PrincipalFrom. Policy, rate limits, audit and session binding read
// the same fields whatever Kind of credential arrived.
//
// A Principal is shared between requests made with the same key: treat its
// slices and map as read-only.
type Principal struct {
	// KeyID is the public ID of the API key (safe to log). For an OAuth
	// access token it is "oauth_" and 20 hex digits derived from Issuer,
	// ClientID and UserID: the same for every token of one grant, so rate
	// limits and audit group them across refreshes.
	KeyID string
	// UserID is the host application's user the key acts for (for an OAuth
	// token, its subject: "sub" or the claim the verifier names). Scope
	// every data access by it.
	UserID string
	// KeyName is the label the user gave the key.
	KeyName string
	// Scopes the key grants, canonical strings (for a token, its scope or
	// scp claim as issued; those the scope grammar rejects grant nothing).
	Scopes []string
	// ExpiresAt is when the key (or token) expires; zero means never.
	ExpiresAt time.Time
	// Metadata is the key's free-form host data.
	Metadata map[string]string
	// RateLimit is the key's per-key rate override (requests per minute); 0 = policy default.
	RateLimit int
	// Kind is the kind of credential: "api_key", or an OAuth access
	// token's accesstoken.JWT ("jwt") or accesstoken.Opaque
	// ("opaque_token"). Empty in a Principal made by hand (WithPrincipal).
	Kind string
	// Issuer and ClientID are the OAuth authorization server and client of
	// an access token; empty for API keys.
	Issuer, ClientID string
}

// HasScope reports whether the principal's scopes include s literally. For
// the hierarchy (admin, documents:*, read covering documents:read) use
// ScopesFrom(ctx) and scope.Set.Allows.
func (p Principal) HasScope(s string) bool { return slices.Contains(p.Scopes, s) }

// principalKey's value is the key's *cacheEntry, which holds the Principal
// and its parsed scopes, so that adapters need not parse them again.
type principalKey struct{}

// WithPrincipal returns a context carrying p. The middleware does this for
// every authenticated request; tests use it to call handlers directly.
// Scopes that do not parse grant nothing (see ScopesFrom).
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	set, _ := scope.ParseSet(validScopes(p.Scopes))
	return context.WithValue(ctx, principalKey{}, &cacheEntry{principal: &p, scopes: set})
}

// withEntry stores a cached key's entry without copying it.
func withEntry(ctx context.Context, e *cacheEntry) context.Context {
	return context.WithValue(ctx, principalKey{}, e)
}

func entryFrom(ctx context.Context) *cacheEntry {
	e, _ := ctx.Value(principalKey{}).(*cacheEntry)
	if e == nil || e.principal == nil {
		return nil
	}
	return e
}

// PrincipalFrom returns the principal the middleware authenticated, and
// false if ctx has none (the handler is not behind Require). It never panics.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	e := entryFrom(ctx)
	if e == nil {
		return Principal{}, false
	}
	return *e.principal, true
}

// ScopesFrom returns the principal's scopes as a scope.Set, parsed once per
// key when it was cached (not per request), and false if ctx has no
// principal. Scopes stored in a form the scope package rejects are left out:
// they grant nothing.
func ScopesFrom(ctx context.Context) (scope.Set, bool) {
	e := entryFrom(ctx)
	if e == nil {
		return scope.Set{}, false
	}
	return e.scopes, true
}

// CopyPrincipal returns dst carrying src's principal (and its parsed
// scopes), for SDKs that run handlers on a context of their own; dst
// unchanged if src has none.
func CopyPrincipal(dst, src context.Context) context.Context {
	if e := entryFrom(src); e != nil {
		return withEntry(dst, e)
	}
	return dst
}
