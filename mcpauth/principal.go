package mcpauth

import (
	"context"
	"slices"
	"time"
)

// Principal is who a request acts for: the key that authenticated it and the
// host user that key belongs to. Handlers get it with PrincipalFrom.
//
// A Principal is shared between requests made with the same key: treat its
// slices and map as read-only.
type Principal struct {
	// KeyID is the public ID of the API key (safe to log).
	KeyID string
	// UserID is the host application's user the key acts for. Scope every
	// data access by it.
	UserID string
	// KeyName is the label the user gave the key.
	KeyName string
	// Scopes the key grants, canonical strings.
	Scopes []string
	// ExpiresAt is when the key expires; zero means never.
	ExpiresAt time.Time
	// Metadata is the key's free-form host data.
	Metadata map[string]string
	// RateLimit is the key's per-key rate override (requests per minute); 0 = policy default.
	RateLimit int
}

// HasScope reports whether the principal's scopes include s literally. For
// hierarchical checks (admin, documents:*) use package scope.
func (p Principal) HasScope(s string) bool { return slices.Contains(p.Scopes, s) }

type principalKey struct{}

// WithPrincipal returns a context carrying p. The middleware does this for
// every authenticated request; tests use it to call handlers directly.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, &p)
}

// withPrincipalPtr stores a cached principal without copying it.
func withPrincipalPtr(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal the middleware authenticated, and
// false if ctx has none (the handler is not behind Require). It never panics.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	if !ok || p == nil {
		return Principal{}, false
	}
	return *p, true
}
