package mcpauth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/mcpauth/accesstoken"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/scope"
	"github.com/mcpauth/mcpauth/store"
)

// fakeTokens is an accesstoken.Verifier answering from a table, counting calls.
type fakeTokens struct {
	tokens map[string]accesstoken.Token
	errs   map[string]error
	calls  atomic.Int64
	kinds  []accesstoken.Kind
}

func (f *fakeTokens) VerifyToken(_ context.Context, tok string, kind accesstoken.Kind, _ time.Time) (accesstoken.Token, error) {
	f.calls.Add(1)
	f.kinds = append(f.kinds, kind)
	if err, ok := f.errs[tok]; ok {
		return accesstoken.Token{}, err
	}
	t, ok := f.tokens[tok]
	if !ok {
		return accesstoken.Token{}, accesstoken.ErrSignature
	}
	return t, nil
}

func (f *fakeTokens) ResourceMetadata() accesstoken.ResourceMetadata {
	return accesstoken.ResourceMetadata{Resource: "https://mcp.example/mcp", AuthorizationServers: []string{"https://issuer.example"}, ScopesSupported: []string{"documents:read"}}
}

func TestKindIsToldFromTheShape(t *testing.T) {
	t.Parallel()
	key := mustKey(t)
	g, err := New(store.NewMemory(), &Options{OAuth: &fakeTokens{}, AcceptLegacyKeys: true, LegacyKeyPattern: `mcp_[0-9a-f]{64}`})
	require.NoError(t, err)
	t.Cleanup(func() { _ = g.Close(context.Background()) })
	plain, err := New(store.NewMemory(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = plain.Close(context.Background()) })
	tests := []struct {
		name, raw string
		want      accesstoken.Kind
	}{
		{"mcpauth key", key, kindAPIKey},
		{"mcpauth key shape, bad checksum", key[:len(key)-1] + "x", kindAPIKey},
		{"JWT", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln", accesstoken.JWT},
		{"JWT with alg none (empty signature)", "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", accesstoken.JWT},
		{"two parts", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0", accesstoken.Opaque},
		{"four parts", "a.b.c.d", accesstoken.Opaque},
		{"empty header", ".eyJzdWIiOiIxIn0.c2ln", accesstoken.Opaque},
		{"empty payload", "eyJhbGciOiJSUzI1NiJ9..c2ln", accesstoken.Opaque},
		{"legacy key", "mcp_" + strings.Repeat("ab", 32), kindAPIKey},
		{"opaque", "2YotnFZFEjr1zCsicMWpAA", accesstoken.Opaque},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, g.kindOf(tt.raw))
			assert.Equal(t, kindAPIKey, plain.kindOf(tt.raw), "without OAuth everything is a key")
		})
	}
}

func mustKey(t *testing.T) string {
	t.Helper()
	raw, err := apikey.Build("", "0123456789ab", "0123456789abcdefghijklmn")
	require.NoError(t, err)
	return raw
}

func bearer(tok string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/mcp", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	return r
}

func TestTokenVerdicts(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	jwt := "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"
	long := "eyJh." + strings.Repeat("a", maxTokenLen) + ".c2ln"
	f := &fakeTokens{
		tokens: map[string]accesstoken.Token{
			jwt:          {Subject: "u1", Issuer: "https://issuer.example", ClientID: "c1", Scopes: []string{"documents:read", "https://graph/.default"}, ExpiresAt: now.Add(time.Hour), CacheUntil: now.Add(time.Hour)},
			"no-subject": {ExpiresAt: now.Add(time.Hour)},
			"expired":    {Subject: "u1", ExpiresAt: now.Add(-time.Second)},
			"uncached":   {Subject: "u2", ExpiresAt: now.Add(time.Hour)},
		},
		errs: map[string]error{
			"down":    ErrUnavailable,
			"strange": errors.New("something odd"),
		},
	}
	g, err := New(store.NewMemory(), &Options{OAuth: f, Now: func() time.Time { return now }})
	require.NoError(t, err)
	t.Cleanup(func() { _ = g.Close(context.Background()) })

	p, err := g.Authenticate(bearer(jwt))
	require.NoError(t, err)
	assert.Equal(t, Principal{KeyID: grantID("https://issuer.example", "c1", "u1"), UserID: "u1", Scopes: []string{"documents:read", "https://graph/.default"},
		ExpiresAt: now.Add(time.Hour), Kind: string(accesstoken.JWT), Issuer: "https://issuer.example", ClientID: "c1"}, p)
	calls := f.calls.Load()
	_, err = g.Authenticate(bearer(jwt))
	require.NoError(t, err)
	assert.Equal(t, calls, f.calls.Load(), "a cached verdict asks the verifier again")

	for _, tt := range []struct {
		tok  string
		want error
	}{
		{"no-subject", accesstoken.ErrInvalid},
		{"expired", accesstoken.ErrExpired},
		{"down", ErrUnavailable},
		{"strange", accesstoken.ErrInvalid},
		{"unknown", accesstoken.ErrSignature},
		{long, ErrInvalidKey}, // refused as it is read, before any work
	} {
		_, err := g.Authenticate(bearer(tt.tok))
		assert.ErrorIs(t, err, tt.want, tt.tok[:min(len(tt.tok), 10)])
		if tt.want != ErrUnavailable {
			assert.ErrorIs(t, err, ErrInvalidKey, "every bad token is also a bad credential")
		}
	}
	assert.NotContains(t, f.kinds, accesstoken.Kind(""))
	calls = f.calls.Load()
	_, _ = g.Authenticate(bearer(long))
	assert.Equal(t, calls, f.calls.Load(), "an oversized token reached the verifier")
	_, err = g.Authenticate(bearer("uncached"))
	require.NoError(t, err)
	_, err = g.Authenticate(bearer("uncached"))
	require.NoError(t, err)
	assert.Equal(t, accesstoken.Opaque, f.kinds[len(f.kinds)-1])
}

func TestChallengesCarryResourceMetadataOnlyWithOAuth(t *testing.T) {
	t.Parallel()
	withOAuth, err := New(store.NewMemory(), &Options{OAuth: &fakeTokens{}})
	require.NoError(t, err)
	plain, err := New(store.NewMemory(), nil)
	require.NoError(t, err)
	for _, g := range []*Guard{withOAuth, plain} {
		t.Cleanup(func() { _ = g.Close(context.Background()) })
	}
	assert.Equal(t, "https://mcp.example/.well-known/oauth-protected-resource/mcp", withOAuth.ResourceMetadataURL())
	assert.Empty(t, plain.ResourceMetadataURL())
	for _, err := range []error{ErrNoCredential, accesstoken.ErrExpired, ErrUnknownKey, &ScopeError{Required: []string{"documents:write"}, Reason: "r"}} {
		got := withOAuth.responseFor(err).Challenge
		assert.Contains(t, got, `Bearer realm="mcp", resource_metadata="https://mcp.example/.well-known/oauth-protected-resource/mcp"`)
		assert.NotContains(t, plain.responseFor(err).Challenge, "resource_metadata")
	}
	assert.Equal(t, `Bearer realm="mcp"`, plain.responseFor(ErrNoCredential).Challenge, "static-key servers keep today's challenge")
}

// TestStepUpListsEveryScopeTheRequestNeeds: a batch whose messages need
// different scopes is refused with one challenge naming all of them, so
// that a client asks once for everything (scope accumulation); the handler
// does not run.
func TestStepUpListsEveryScopeTheRequestNeeds(t *testing.T) {
	t.Parallel()
	now := time.Now()
	policy, err := scope.NewPolicy(scope.PolicyConfig{Tools: []scope.Rule{
		{Match: "search", Scopes: []string{"documents:read"}},
		{Match: "create", Scopes: []string{"documents:write"}},
		{Match: "delete", Scopes: []string{"documents:delete"}},
	}})
	require.NoError(t, err)
	f := &fakeTokens{tokens: map[string]accesstoken.Token{"reader-token-1234": {Subject: "u1", Scopes: []string{"documents:read"}, ExpiresAt: now.Add(time.Hour)}}}
	g, err := New(store.NewMemory(), &Options{OAuth: f, Policy: policy})
	require.NoError(t, err)
	t.Cleanup(func() { _ = g.Close(context.Background()) })
	var runs atomic.Int64
	h := g.Require(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { runs.Add(1) }))
	call := func(id, tool string) string {
		return `{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":{"name":"` + tool + `"}}`
	}
	for _, tt := range []struct{ name, body, scope string }{
		{"one message", call("1", "create"), "documents:write"},
		{"batch", "[" + call("1", "search") + "," + call("2", "create") + "," + call("3", "delete") + "," + call("4", "create") + "]", "documents:write documents:delete"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(tt.body))
			r.Header.Set("Authorization", "Bearer reader-token-1234")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			assert.Equal(t, http.StatusForbidden, w.Code)
			assert.Contains(t, w.Header().Get("WWW-Authenticate"), `error="insufficient_scope"`)
			assert.Contains(t, w.Header().Get("WWW-Authenticate"), `scope="`+tt.scope+`"`)
			assert.Contains(t, w.Header().Get("WWW-Authenticate"), `resource_metadata="https://mcp.example/.well-known/oauth-protected-resource/mcp"`)
			assert.EqualValues(t, 0, runs.Load())
		})
	}
}
