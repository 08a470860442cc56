package mcpauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/ratelimit"
	"github.com/mcpauth/mcpauth/scope"
)

// CredentialKind is the kind of credential a request authenticated with,
// told from the credential's shape (see Options.OAuth).
type CredentialKind string

// Credential kinds, as Principal.Kind and audit events name them.
const (
	// KindAPIKey is an mcpauth API key (or a legacy key, with
	// Options.AcceptLegacyKeys).
	KindAPIKey CredentialKind = "api_key"
	// KindJWT is an OAuth access token in JWT form (RFC 9068): three
	// base64url parts separated by dots.
	KindJWT CredentialKind = "jwt"
	// KindOpaqueToken is any other OAuth access token, verified by the
	// authorization server (RFC 7662 introspection).
	KindOpaqueToken CredentialKind = "opaque_token"
)

// TokenVerifier verifies OAuth access tokens for a Guard (Options.OAuth).
// Module github.com/mcpauth/mcpauth/mcpauth/oauth implements it (JWTs
// against an issuer's JWKS, opaque tokens by introspection); the interface
// is here so that the core module needs no JOSE library.
//
// Implementations must be safe for concurrent use.
type TokenVerifier interface {
	// VerifyToken verifies token, whose kind the Guard told from its shape
	// (KindJWT or KindOpaqueToken), at time now (the Guard's clock). A
	// token that is not valid for this resource (bad signature, unknown
	// issuer, wrong audience, expired, inactive, ...) is an error wrapping
	// ErrInvalidToken, or one of its precise kinds (ErrTokenExpired, ...);
	// a failure to reach the issuer wraps ErrUnavailable. Any other error
	// is logged and refused as ErrInvalidToken. The error's text is never
	// sent to clients; it must not contain the token.
	VerifyToken(ctx context.Context, token string, kind CredentialKind, now time.Time) (Token, error)
	// ResourceMetadata describes this protected resource (RFC 9728): the
	// Guard serves it (ResourceMetadataHandler) and points to it from its
	// challenges.
	ResourceMetadata() ResourceMetadata
}

// Token is what a TokenVerifier found in a valid access token. The Guard
// turns it into the request's Principal.
type Token struct {
	// Subject is the host user the token acts for (the "sub" claim, or the
	// claim the verifier was configured with): Principal.UserID. Required.
	Subject string
	// Issuer is the authorization server that issued the token.
	Issuer string
	// ClientID is the OAuth client the token was issued to.
	ClientID string
	// Scopes are the token's scopes ("scope" or "scp").
	Scopes []string
	// ExpiresAt is the token's expiry ("exp"); zero if it has none.
	ExpiresAt time.Time
	// CacheUntil is how long the Guard may reuse this verdict for the
	// same token without asking the verifier again; the Guard never caches
	// past ExpiresAt. Zero means not at all.
	CacheUntil time.Time
}

// maxTokenLen bounds the credential read when Options.OAuth is set (JWTs
// from some issuers carry kilobytes of claims); longer ones are refused as
// they are read. API keys are still bounded by their shape.
const maxTokenLen = 8 << 10

// kindOf tells a credential's kind from its shape, never by trying
// verifiers: an mcpauth key (by its layout, whatever its checksum), a JWT
// (three base64url parts), a legacy key (Options.AcceptLegacyKeys and its
// filter), else an opaque token. Without Options.OAuth everything is a key.
func (g *Guard) kindOf(raw string) CredentialKind {
	switch {
	case g.opts.OAuth == nil || apikey.HasKeyShape(raw, g.opts.Prefix):
		return KindAPIKey
	case isJWTShape(raw):
		return KindJWT
	case g.opts.AcceptLegacyKeys && g.legacy.accepts(raw):
		return KindAPIKey
	}
	return KindOpaqueToken
}

// isJWTShape reports whether raw has the shape of a JWS in compact
// serialization (RFC 7515): three parts separated by two dots, the first
// two non-empty. An empty signature (alg "none") still counts: it is a JWT,
// refused as one. The parts' alphabet is left to the JWS parser, so that
// the warm path (a cached verdict) does not scan a kilobyte-long token
// byte by byte: the dots are found with the runtime's vectorised search.
func isJWTShape(raw string) bool {
	i := strings.IndexByte(raw, '.')
	if i <= 0 {
		return false
	}
	j := strings.IndexByte(raw[i+1:], '.')
	return j > 0 && strings.IndexByte(raw[i+1+j+1:], '.') < 0
}

// tokenSum is the SHA-256 of a token, the key of its cached verdict. The
// token is copied into a pooled buffer first, so that hashing a
// kilobyte-long token allocates nothing.
func tokenSum(raw string) [sha256.Size]byte {
	bp := tokenBufs.Get().(*[]byte)
	b := append((*bp)[:0], raw...)
	sum := sha256.Sum256(b)
	*bp = b
	tokenBufs.Put(bp)
	return sum
}

var tokenBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// jwtVerifier and opaqueVerifier verify OAuth access tokens of their kind
// through Options.OAuth (see verifyToken).
type (
	jwtVerifier    struct{ g *Guard }
	opaqueVerifier struct{ g *Guard }
)

func (v jwtVerifier) verify(ctx context.Context, raw string, now time.Time) (*cacheEntry, error) {
	return v.g.verifyToken(ctx, raw, KindJWT, now)
}

func (v opaqueVerifier) verify(ctx context.Context, raw string, now time.Time) (*cacheEntry, error) {
	return v.g.verifyToken(ctx, raw, KindOpaqueToken, now)
}

// verifyToken verifies an access token, with positive verdicts cached by
// the SHA-256 of the token (never the token itself) until
// Token.CacheUntil, never past the token's expiry.
func (g *Guard) verifyToken(ctx context.Context, raw string, kind CredentialKind, now time.Time) (*cacheEntry, error) {
	sum := tokenSum(raw)
	id := string(sum[:])
	if e := g.tokens.get(id, now); e != nil {
		return e, nil
	}
	t, err := g.opts.OAuth.VerifyToken(ctx, raw, kind, now)
	switch {
	case err == nil:
	case errors.Is(err, ErrInvalidKey), errors.Is(err, ErrUnavailable):
		return nil, err
	default:
		g.opts.Logger.LogAttrs(ctx, slog.LevelError, "mcpauth: token verifier returned an error of no known kind; refusing the token", slog.String("error", err.Error()))
		return nil, ErrInvalidToken
	}
	if t.Subject == "" {
		return nil, ErrInvalidToken
	}
	if !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt) {
		return nil, ErrTokenExpired
	}
	e := g.tokenEntry(t, kind)
	until := t.CacheUntil
	if !t.ExpiresAt.IsZero() && t.ExpiresAt.Before(until) {
		until = t.ExpiresAt
	}
	if g.opts.CacheTTL > 0 && now.Before(until) {
		e.validUntil = until
		g.tokens.put(id, e, g.tokens.generation(id), now)
	}
	return e, nil
}

// tokenEntry builds the cache entry of a verified token: its Principal,
// parsed scopes and rate-limit bucket, as entryFor does for a key.
func (g *Guard) tokenEntry(t Token, kind CredentialKind) *cacheEntry {
	scopes := slices.Clone(t.Scopes)
	set, _ := scope.ParseSet(validScopes(scopes))
	p := &Principal{
		KeyID:     grantID(t.Issuer, t.ClientID, t.Subject),
		UserID:    t.Subject,
		Scopes:    scopes,
		ExpiresAt: t.ExpiresAt,
		Kind:      kind,
		Issuer:    t.Issuer,
		ClientID:  t.ClientID,
	}
	e := &cacheEntry{guard: g, principal: p, scopes: set}
	if g.opts.RatePolicy != nil {
		e.bucket, e.limit = g.opts.RatePolicy.Resolve(ratelimit.Subject{KeyID: p.KeyID, UserID: p.UserID, Scopes: p.Scopes})
	}
	return e
}

// grantID is the KeyID of an OAuth principal: "oauth_" and 20 hex digits
// of the SHA-256 of issuer, client and subject. It is the same for every
// token of one grant (across refreshes), so that rate limits and audit
// group them; it says nothing about the token.
func grantID(issuer, client, subject string) string {
	h := sha256.New()
	for _, s := range []string{issuer, client, subject} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	var sum [sha256.Size]byte
	return "oauth_" + hex.EncodeToString(h.Sum(sum[:0])[:10])
}
