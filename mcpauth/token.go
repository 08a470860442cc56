package mcpauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mcpauth/mcpauth/mcpauth/accesstoken"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/ratelimit"
	"github.com/mcpauth/mcpauth/scope"
)

// kindAPIKey is the kind of an mcpauth key (or a legacy key, with
// Options.AcceptLegacyKeys), beside accesstoken's JWT and Opaque.
const kindAPIKey accesstoken.Kind = "api_key"

// errInvalidToken and errTokenExpired are the Guard's own refusals of a
// token: also ErrInvalidKey, so one check covers every bad credential.
var (
	errInvalidToken = &kindError{msg: "mcpauth: invalid access token", parent: ErrInvalidKey, also: accesstoken.ErrInvalid}
	errTokenExpired = &kindError{msg: "mcpauth: access token expired", parent: ErrInvalidKey, also: accesstoken.ErrExpired}
)

// tokenRefusal is a verifier's refusal of a token (an accesstoken.ErrInvalid
// of some kind), reported as an ErrInvalidKey too.
type tokenRefusal struct{ err error }

func (e *tokenRefusal) Error() string   { return e.err.Error() }
func (e *tokenRefusal) Unwrap() []error { return []error{e.err, ErrInvalidKey} }

// maxTokenLen bounds the credential read when Options.OAuth is set (JWTs
// from some issuers carry kilobytes of claims); longer ones are refused as
// they are read. API keys are still bounded by their shape.
const maxTokenLen = 8 << 10

// kindOf tells a credential's kind from its shape, never by trying
// verifiers: an mcpauth key (by its layout, whatever its checksum), a JWT
// (three base64url parts), a legacy key (Options.AcceptLegacyKeys and its
// filter), else an opaque token. Without Options.OAuth everything is a key.
func (g *Guard) kindOf(raw string) accesstoken.Kind {
	switch {
	case g.opts.OAuth == nil || apikey.HasKeyShape(raw, g.opts.Prefix):
		return kindAPIKey
	case isJWTShape(raw):
		return accesstoken.JWT
	case g.opts.AcceptLegacyKeys && g.legacy.accepts(raw):
		return kindAPIKey
	}
	return accesstoken.Opaque
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
	return v.g.verifyToken(ctx, raw, accesstoken.JWT, now)
}

func (v opaqueVerifier) verify(ctx context.Context, raw string, now time.Time) (*cacheEntry, error) {
	return v.g.verifyToken(ctx, raw, accesstoken.Opaque, now)
}

// verifyToken verifies an access token, with positive verdicts cached by
// the SHA-256 of the token (never the token itself) until
// Token.CacheUntil, never past the token's expiry.
func (g *Guard) verifyToken(ctx context.Context, raw string, kind accesstoken.Kind, now time.Time) (*cacheEntry, error) {
	sum := tokenSum(raw)
	id := string(sum[:])
	if e := g.cached(g.tokens, string(kind), id, now); e != nil {
		return e, nil
	}
	t, err := g.opts.OAuth.VerifyToken(ctx, raw, kind, now)
	switch {
	case err == nil:
	case errors.Is(err, accesstoken.ErrInvalid):
		return nil, &tokenRefusal{err}
	case errors.Is(err, accesstoken.ErrUnavailable), errors.Is(err, ErrUnavailable):
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	default:
		g.opts.Logger.LogAttrs(ctx, slog.LevelError, "mcpauth: token verifier returned an error of no known kind; refusing the token", slog.String("error", err.Error()))
		return nil, errInvalidToken
	}
	if t.Subject == "" {
		return nil, errInvalidToken
	}
	if !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt) {
		return nil, errTokenExpired
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
func (g *Guard) tokenEntry(t accesstoken.Token, kind accesstoken.Kind) *cacheEntry {
	scopes := slices.Clone(t.Scopes)
	set, _ := scope.ParseSet(validScopes(scopes))
	p := &Principal{
		KeyID:     grantID(t.Issuer, t.ClientID, t.Subject),
		UserID:    t.Subject,
		Scopes:    scopes,
		ExpiresAt: t.ExpiresAt,
		Kind:      string(kind),
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
