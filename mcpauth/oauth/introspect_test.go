package oauth_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/mcpauth/accesstoken"
	"github.com/mcpauth/mcpauth/mcpauth/oauth"
)

// TestIntrospection: active answers must name this resource; inactive
// ones are remembered, so a retried dead token does not reach the issuer
// again within NegativeCacheTTL; the resource server authenticates.
func TestIntrospection(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	now := time.Now()
	answers := map[string]map[string]any{
		"Zq7-good":      {"active": true, "sub": "u1", "client_id": "c1", "scope": "documents:read", "aud": resource, "exp": now.Add(time.Hour).Unix()},
		"Zq7-other-aud": {"active": true, "sub": "u1", "aud": "https://other.example/mcp", "exp": now.Add(time.Hour).Unix()},
		"Zq7-no-aud":    {"active": true, "sub": "u1", "exp": now.Add(time.Hour).Unix()},
		"Zq7-expired":   {"active": true, "sub": "u1", "aud": resource, "exp": now.Add(-time.Hour).Unix()},
		"Zq7-other-iss": {"active": true, "sub": "u1", "aud": resource, "iss": "https://evil.example"},
		"Zq7-inactive":  {"active": false},
		"Zq7-not-json":  nil,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if id, secret, ok := r.BasicAuth(); !ok || id != "rs" || secret != "s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		a, ok := answers[r.PostFormValue("token")]
		if !ok || a == nil {
			_, _ = w.Write([]byte("<html>"))
			return
		}
		_ = json.NewEncoder(w).Encode(a)
	}))
	t.Cleanup(srv.Close)
	v, err := oauth.New(resource, []oauth.Issuer{{URL: "https://issuer.example", Introspection: &oauth.Introspection{
		Endpoint: srv.URL, ClientID: "rs", ClientSecret: "s3cret", CacheTTL: 10 * time.Second,
	}}}, nil)
	require.NoError(t, err)
	ctx := context.Background()
	tok, err := v.VerifyToken(ctx, "Zq7-good", accesstoken.Opaque, now)
	require.NoError(t, err)
	assert.Equal(t, accesstoken.Token{Subject: "u1", Issuer: "https://issuer.example", ClientID: "c1", Scopes: []string{"documents:read"},
		ExpiresAt: time.Unix(now.Add(time.Hour).Unix(), 0), CacheUntil: now.Add(10 * time.Second)}, tok)
	for tok, want := range map[string]error{
		"Zq7-other-aud": accesstoken.ErrAudience,
		"Zq7-no-aud":    accesstoken.ErrAudience,
		"Zq7-expired":   accesstoken.ErrExpired,
		"Zq7-other-iss": accesstoken.ErrIssuer,
		"Zq7-inactive":  accesstoken.ErrInactive,
		"Zq7-not-json":  accesstoken.ErrUnavailable,
	} {
		_, err := v.VerifyToken(ctx, tok, accesstoken.Opaque, now)
		assert.ErrorIs(t, err, want, tok)
		assert.NotContains(t, err.Error(), "Zq7", "the error names the token")
	}
	before := calls.Load()
	for range 50 {
		_, err := v.VerifyToken(ctx, "Zq7-inactive", accesstoken.Opaque, now.Add(time.Second))
		assert.ErrorIs(t, err, accesstoken.ErrInactive)
	}
	assert.Equal(t, before, calls.Load(), "a remembered inactive token reached the issuer")
	_, err = v.VerifyToken(ctx, "Zq7-inactive", accesstoken.Opaque, now.Add(6*time.Second))
	assert.ErrorIs(t, err, accesstoken.ErrInactive)
	assert.Equal(t, before+1, calls.Load(), "asked again after NegativeCacheTTL")

	// Without introspection, an opaque token is refused without a call.
	jwtOnly, err := oauth.New(resource, []oauth.Issuer{{URL: "https://issuer.example"}}, nil)
	require.NoError(t, err)
	_, err = jwtOnly.VerifyToken(ctx, "Zq7-good", accesstoken.Opaque, now)
	assert.ErrorIs(t, err, accesstoken.ErrInvalid)
}

// TestDiscoveryWaitsWithinTheRequest: while one request's discovery of the
// introspection endpoint hangs at the issuer, another whose context ends
// gives up at once instead of waiting behind it.
func TestDiscoveryWaitsWithinTheRequest(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{}, 4)
	gate := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		select {
		case <-gate:
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(gate) }) // runs before srv.Close
	v, err := oauth.New(resource, []oauth.Issuer{{URL: srv.URL, Introspection: &oauth.Introspection{ClientID: "rs", ClientSecret: "s3cret"}}}, nil)
	require.NoError(t, err)
	slow := make(chan error, 1)
	go func() {
		_, err := v.VerifyToken(context.Background(), "Zq7-first", accesstoken.Opaque, time.Now())
		slow <- err
	}()
	select {
	case <-entered: // the first request is discovering
	case <-time.After(10 * time.Second):
		t.Fatal("no discovery request")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	second := make(chan error, 1)
	go func() {
		_, err := v.VerifyToken(ctx, "Zq7-second", accesstoken.Opaque, time.Now())
		second <- err
	}()
	select {
	case err := <-second:
		assert.ErrorIs(t, err, accesstoken.ErrUnavailable)
	case <-time.After(10 * time.Second):
		t.Fatal("the second request waited for the first one's discovery")
	}
	select {
	case <-slow:
		t.Fatal("the first request's discovery ended early")
	default:
	}
}
