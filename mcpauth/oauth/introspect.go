package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/mcpauth/mcpauth/mcpauth/accesstoken"
)

// maxNegative bounds the remembered inactive tokens.
const maxNegative = 10_000

// introspector asks the issuer about opaque tokens (RFC 7662). Active
// answers are cached by the Guard (Token.CacheUntil); inactive ones here,
// by the token's SHA-256, for NegativeCacheTTL.
type introspector struct {
	is     *issuer
	cfg    Introspection
	slots  chan struct{} // MaxConcurrent
	mu     sync.Mutex
	dead   map[[sha256.Size]byte]time.Time // inactive until
	client *http.Client
}

func newIntrospector(is *issuer, cfg Introspection) *introspector {
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = defaultIntrospectionTTL
	}
	if cfg.NegativeCacheTTL == 0 {
		cfg.NegativeCacheTTL = defaultNegativeTTL
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = defaultMaxIntrospecting
	}
	return &introspector{is: is, cfg: cfg, slots: make(chan struct{}, cfg.MaxConcurrent), dead: make(map[[sha256.Size]byte]time.Time), client: is.client}
}

// introspection is the part of an RFC 7662 answer the verifier reads.
type introspection struct {
	Active    bool             `json:"active"`
	Scope     json.RawMessage  `json:"scope"`
	ClientID  string           `json:"client_id"`
	Subject   string           `json:"sub"`
	Audience  jwt.Audience     `json:"aud"`
	Issuer    string           `json:"iss"`
	Expiry    *jwt.NumericDate `json:"exp"`
	NotBefore *jwt.NumericDate `json:"nbf"`
}

func (is *issuer) introspect(ctx context.Context, token string, now time.Time) (accesstoken.Token, error) {
	return is.introspection.verify(ctx, token, now)
}

func (in *introspector) verify(ctx context.Context, token string, now time.Time) (accesstoken.Token, error) {
	sum := sha256.Sum256([]byte(token))
	if in.inactive(sum, now) {
		return accesstoken.Token{}, accesstoken.ErrInactive
	}
	select {
	case in.slots <- struct{}{}:
		defer func() { <-in.slots }()
	case <-ctx.Done():
		return accesstoken.Token{}, fmt.Errorf("%w: introspection: %v", accesstoken.ErrUnavailable, ctx.Err())
	}
	a, body, err := in.ask(ctx, token)
	if err != nil {
		in.is.logger.LogAttrs(ctx, slog.LevelError, "mcpauth/oauth: introspection failed", slog.String("issuer", in.is.url), slog.String("error", err.Error()))
		return accesstoken.Token{}, fmt.Errorf("%w: introspection failed", accesstoken.ErrUnavailable)
	}
	if !a.Active {
		in.remember(sum, now)
		return accesstoken.Token{}, accesstoken.ErrInactive
	}
	if err := in.check(a, now); err != nil {
		return accesstoken.Token{}, err
	}
	t := accesstoken.Token{Subject: a.Subject, Issuer: in.is.url, ClientID: a.ClientID, ExpiresAt: a.Expiry.Time()}
	if in.is.userClaim != "sub" {
		if t.Subject, err = stringClaim(body, in.is.userClaim); err != nil {
			return accesstoken.Token{}, err
		}
	}
	if t.Scopes, err = scopes(a.Scope, nil); err != nil {
		return accesstoken.Token{}, err
	}
	t.CacheUntil = now.Add(in.cfg.CacheTTL) // the Guard never caches past ExpiresAt
	return t, nil
}

// check judges an active answer: issuer, audience, exp and nbf with skew.
func (in *introspector) check(a introspection, now time.Time) error {
	is := in.is
	switch {
	case a.Issuer != "" && a.Issuer != is.url:
		return accesstoken.ErrIssuer
	case len(a.Audience) == 0 && !in.cfg.UnsafeAcceptMissingAudience:
		return fmt.Errorf("%w: introspection names no audience", accesstoken.ErrAudience)
	case len(a.Audience) > 0 && !slices.ContainsFunc(is.audiences, a.Audience.Contains):
		return accesstoken.ErrAudience
	case a.Expiry != nil && !now.Before(a.Expiry.Time().Add(is.skew)):
		return accesstoken.ErrExpired
	case a.NotBefore != nil && now.Add(is.skew).Before(a.NotBefore.Time()):
		return accesstoken.ErrNotYetValid
	}
	return nil
}

// ask posts the token to the introspection endpoint.
func (in *introspector) ask(ctx context.Context, token string) (introspection, []byte, error) {
	var a introspection
	endpoint, err := in.is.introspectionEndpoint(ctx)
	if err != nil {
		return a, nil, err
	}
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return a, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(in.cfg.ClientID), url.QueryEscape(in.cfg.ClientSecret))
	resp, err := in.client.Do(req)
	if err != nil {
		return a, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentBytes))
	if err != nil {
		return a, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return a, nil, fmt.Errorf("POST %s: %s", endpoint, resp.Status)
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return a, nil, fmt.Errorf("POST %s: %w", endpoint, err)
	}
	return a, body, nil
}

func (in *introspector) inactive(sum [sha256.Size]byte, now time.Time) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	until, ok := in.dead[sum]
	return ok && now.Before(until)
}

func (in *introspector) remember(sum [sha256.Size]byte, now time.Time) {
	if in.cfg.NegativeCacheTTL < 0 {
		return
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.dead) >= maxNegative {
		for k, until := range in.dead {
			if !now.Before(until) || len(in.dead) >= maxNegative {
				delete(in.dead, k)
			}
		}
	}
	in.dead[sum] = now.Add(in.cfg.NegativeCacheTTL)
}
