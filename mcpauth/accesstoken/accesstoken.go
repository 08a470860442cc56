// Package accesstoken is the seam between the Guard (package mcpauth) and
// OAuth access-token verification: the Verifier a Guard calls for a
// credential shaped like a token (Options.OAuth), the Token it returns, the
// errors it may return, and the protected resource metadata (RFC 9728) the
// Guard publishes. Module github.com/mcpauth/mcpauth/mcpauth/oauth
// implements Verifier (JWTs against an issuer's JWKS, opaque tokens by
// introspection); the interface is here so that the core module needs no
// JOSE library. It is to tokens what package apikey is to keys.
//
// It imports only the standard library.
package accesstoken

import (
	"context"
	"errors"
	"time"
)

// Kind is the kind of an access token, told by the Guard from its shape.
type Kind string

// Token kinds, as Principal.Kind and audit events name them (an mcpauth
// key is "api_key").
const (
	// JWT is an access token in JWT form (RFC 9068): three base64url parts
	// separated by dots.
	JWT Kind = "jwt"
	// Opaque is any other access token, verified by the authorization
	// server (RFC 7662 introspection).
	Opaque Kind = "opaque_token"
)

// Verifier verifies OAuth access tokens for a Guard. Implementations must
// be safe for concurrent use.
type Verifier interface {
	// VerifyToken verifies token, whose kind the Guard told from its shape,
	// at time now (the Guard's clock). A token that is not valid for this
	// resource (bad signature, unknown issuer, wrong audience, expired,
	// inactive, ...) is an error wrapping ErrInvalid or one of its precise
	// kinds (ErrExpired, ...); a failure to reach the issuer wraps
	// ErrUnavailable. The Guard refuses any other error as ErrInvalid and
	// logs it. The error's text is never sent to clients; it must not
	// contain the token.
	VerifyToken(ctx context.Context, token string, kind Kind, now time.Time) (Token, error)
	// ResourceMetadata describes this protected resource (RFC 9728): the
	// Guard serves it and points to it from its challenges.
	ResourceMetadata() ResourceMetadata
}

// Token is what a Verifier found in a valid access token. The Guard turns
// it into the request's Principal.
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

// kindError is a sentinel that is also another sentinel.
type kindError struct {
	msg    string
	parent error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.parent }

// Errors a Verifier returns (wrapped or not). The Guard reports every
// ErrInvalid as mcpauth.ErrInvalidKey too (one 401 answer for every bad
// credential, the precise kind in audit), and ErrUnavailable as
// mcpauth.ErrUnavailable (503).
var (
	// ErrInvalid: the token is not valid for this resource.
	ErrInvalid = errors.New("mcpauth: invalid access token")
	// ErrExpired: the token is past its exp (beyond the allowed skew).
	ErrExpired = &kindError{msg: "mcpauth: access token expired", parent: ErrInvalid}
	// ErrNotYetValid: the token's nbf or iat is in the future (beyond the
	// allowed skew).
	ErrNotYetValid = &kindError{msg: "mcpauth: access token not yet valid", parent: ErrInvalid}
	// ErrAudience: the token was issued for another resource (its aud does
	// not name this server, RFC 8707).
	ErrAudience = &kindError{msg: "mcpauth: access token issued for another audience", parent: ErrInvalid}
	// ErrIssuer: the token names an issuer that is not trusted.
	ErrIssuer = &kindError{msg: "mcpauth: access token from an untrusted issuer", parent: ErrInvalid}
	// ErrSignature: the token's signature does not verify: a disallowed
	// algorithm (none, HMAC, ...), a key the issuer does not publish, or a
	// tampered token.
	ErrSignature = &kindError{msg: "mcpauth: access token signature invalid", parent: ErrInvalid}
	// ErrType: the token's typ header is not one accepted for access
	// tokens (RFC 9068: at+jwt), such as an ID token.
	ErrType = &kindError{msg: "mcpauth: not an access token", parent: ErrInvalid}
	// ErrInactive: the authorization server says the token is not active
	// (RFC 7662 introspection).
	ErrInactive = &kindError{msg: "mcpauth: access token inactive", parent: ErrInvalid}
	// ErrUnavailable: the issuer's keys or introspection endpoint could not
	// be reached; the request fails closed with 503.
	ErrUnavailable = errors.New("mcpauth: access token issuer unavailable")
)
