package oauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/mcpauth/mcpauth/mcpauth/accesstoken"
)

// claims are the registered and OAuth claims an access token is judged by
// (RFC 9068 §2.2).
type claims struct {
	Issuer    string           `json:"iss"`
	Subject   string           `json:"sub"`
	Audience  jwt.Audience     `json:"aud"`
	Expiry    *jwt.NumericDate `json:"exp"`
	NotBefore *jwt.NumericDate `json:"nbf"`
	IssuedAt  *jwt.NumericDate `json:"iat"`
	ClientID  string           `json:"client_id"`
	AZP       string           `json:"azp"`
	Scope     json.RawMessage  `json:"scope"`
	Scp       json.RawMessage  `json:"scp"`
}

// verifyJWT verifies a compact JWS access token: algorithm allowlist,
// issuer (from the unverified iss, to pick the keys; nothing is fetched for
// an issuer not configured), typ, signature with the issuer's key for the
// token's kid, then iss, aud, exp, nbf and iat with the allowed skew.
func (v *Verifier) verifyJWT(ctx context.Context, raw string, now time.Time) (accesstoken.Token, error) {
	var t accesstoken.Token
	jws, err := jose.ParseSignedCompact(raw, allAlgorithms)
	if err != nil {
		// Malformed, or an algorithm outside every allowlist (none, HS256).
		return t, fmt.Errorf("%w: %v", accesstoken.ErrSignature, err)
	}
	if len(jws.Signatures) != 1 {
		return t, fmt.Errorf("%w: %d signatures", accesstoken.ErrSignature, len(jws.Signatures))
	}
	h := jws.Signatures[0].Protected
	var c claims
	payload := jws.UnsafePayloadWithoutVerification()
	if err := json.Unmarshal(payload, &c); err != nil {
		return t, fmt.Errorf("%w: claims: %v", accesstoken.ErrInvalid, err)
	}
	is := v.issuers[c.Issuer]
	if is == nil {
		return t, fmt.Errorf("%w: %q", accesstoken.ErrIssuer, c.Issuer)
	}
	alg := jose.SignatureAlgorithm(h.Algorithm)
	if !slices.Contains(is.algs, alg) {
		return t, fmt.Errorf("%w: algorithm %q not accepted from %s", accesstoken.ErrSignature, h.Algorithm, is.url)
	}
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	if !slices.Contains(is.types, normalType(typ)) {
		return t, fmt.Errorf("%w: typ %q", accesstoken.ErrType, typ)
	}
	key, err := is.key(ctx, h.KeyID, h.Algorithm, now)
	if err != nil {
		return t, err
	}
	if _, err := jws.Verify(key); err != nil {
		return t, fmt.Errorf("%w: %v", accesstoken.ErrSignature, err)
	}
	if err := is.checkClaims(&c, now); err != nil {
		return t, err
	}
	t = accesstoken.Token{Subject: c.Subject, Issuer: c.Issuer, ClientID: c.ClientID, ExpiresAt: c.Expiry.Time()}
	if t.ClientID == "" {
		t.ClientID = c.AZP
	}
	if is.userClaim != "sub" {
		if t.Subject, err = stringClaim(payload, is.userClaim); err != nil {
			return accesstoken.Token{}, err
		}
	}
	if t.Scopes, err = scopes(c.Scope, c.Scp); err != nil {
		return accesstoken.Token{}, err
	}
	t.CacheUntil = t.ExpiresAt // a signed token's verdict holds until its exp
	return t, nil
}

// allAlgorithms is what the JWS parser accepts; each issuer narrows it.
var allAlgorithms = func() []jose.SignatureAlgorithm {
	out := make([]jose.SignatureAlgorithm, len(DefaultAlgorithms))
	for i, a := range DefaultAlgorithms {
		out[i] = jose.SignatureAlgorithm(a)
	}
	return out
}()

// checkClaims checks a verified token's claims against the issuer's
// expectations, with the allowed skew. exp is required (RFC 9068).
func (is *issuer) checkClaims(c *claims, now time.Time) error {
	if c.Expiry == nil {
		return fmt.Errorf("%w: no exp", accesstoken.ErrInvalid)
	}
	err := jwt.Claims{Issuer: c.Issuer, Audience: c.Audience, Expiry: c.Expiry, NotBefore: c.NotBefore, IssuedAt: c.IssuedAt}.
		ValidateWithLeeway(jwt.Expected{Issuer: is.url, AnyAudience: is.audiences, Time: now}, is.skew)
	switch err {
	case nil:
		return nil
	case jwt.ErrExpired:
		return accesstoken.ErrExpired
	case jwt.ErrNotValidYet, jwt.ErrIssuedInTheFuture:
		return accesstoken.ErrNotYetValid
	case jwt.ErrInvalidAudience:
		return accesstoken.ErrAudience
	case jwt.ErrInvalidIssuer:
		return accesstoken.ErrIssuer
	}
	return fmt.Errorf("%w: %v", accesstoken.ErrInvalid, err)
}

// scopes reads "scope" (RFC 9068: space-separated) or, failing that,
// "scp" (Okta, Entra ID: a string or an array of strings).
func scopes(scope, scp json.RawMessage) ([]string, error) {
	for _, raw := range []json.RawMessage{scope, scp} {
		if len(raw) == 0 || string(raw) == "null" {
			continue
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return strings.Fields(s), nil
		}
		var list []string
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, fmt.Errorf("%w: scope claim is neither a string nor a list of strings", accesstoken.ErrInvalid)
		}
		return list, nil
	}
	return nil, nil
}

// stringClaim reads one string claim by name.
func stringClaim(payload []byte, name string) (string, error) {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(payload, &all); err != nil {
		return "", fmt.Errorf("%w: claims: %v", accesstoken.ErrInvalid, err)
	}
	var s string
	if raw, ok := all[name]; !ok || json.Unmarshal(raw, &s) != nil || s == "" {
		return "", fmt.Errorf("%w: no string claim %q", accesstoken.ErrInvalid, name)
	}
	return s, nil
}

// keyFits reports whether a key's type suits the algorithm (so that a
// kid-less token is matched to the one key it can be checked with).
func keyFits(k *jose.JSONWebKey, alg string) bool {
	switch pub := k.Key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		bits := map[string]int{"ES256": 256, "ES384": 384, "ES512": 521}[alg]
		return bits != 0 && pub.Curve.Params().BitSize == bits
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}
