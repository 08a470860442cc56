package gosdk_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/gosdk"
	"github.com/mcpauth/mcpauth/scope"
)

func TestTokenInfo(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	exp := now.Add(time.Hour)
	tests := []struct {
		name       string
		p          mcpauth.Principal
		wantExp    time.Time
		wantScopes bool
	}{
		{"expiring key", mcpauth.Principal{KeyID: "k1", UserID: "alice", Scopes: []string{"documents:read"}, ExpiresAt: exp}, exp, true},
		{"key without expiry reports now+24h", mcpauth.Principal{KeyID: "k2", UserID: "bob"}, now.Add(24 * time.Hour), true},
		{"unparsable scopes are not put in Extra", mcpauth.Principal{KeyID: "k3", UserID: "carol", Scopes: []string{"docs::read"}}, now.Add(24 * time.Hour), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ti := gosdk.TokenInfo(tt.p, now)
			assert.Equal(t, tt.p.UserID, ti.UserID)
			assert.Equal(t, tt.p.Scopes, ti.Scopes)
			assert.Equal(t, tt.wantExp, ti.Expiration)
			got, ok := gosdk.Principal(&mcp.RequestExtra{TokenInfo: ti})
			require.True(t, ok)
			assert.Equal(t, tt.p.KeyID, got.KeyID)
			set, ok := gosdk.Scopes(&mcp.RequestExtra{TokenInfo: ti})
			assert.Equal(t, tt.wantScopes, ok)
			if ok {
				assert.Equal(t, len(tt.p.Scopes), set.Len())
			}
		})
	}
}

func TestPrincipalAndScopesNeverPanic(t *testing.T) {
	t.Parallel()
	good := mcpauth.Principal{UserID: "alice", Scopes: []string{"read"}}
	tests := []struct {
		name          string
		extra         *mcp.RequestExtra
		wantPrincipal bool
		wantScopes    bool
	}{
		{"nil extra", nil, false, false},
		{"nil token info", &mcp.RequestExtra{}, false, false},
		{"nil Extra map", &mcp.RequestExtra{TokenInfo: &auth.TokenInfo{UserID: "alice"}}, false, false},
		{"wrong type under ExtraKey", &mcp.RequestExtra{TokenInfo: &auth.TokenInfo{Extra: map[string]any{gosdk.ExtraKey: "alice"}}}, false, false},
		{"pointer instead of value", &mcp.RequestExtra{TokenInfo: &auth.TokenInfo{Extra: map[string]any{gosdk.ExtraKey: &good}}}, false, false},
		{"wrong type under ScopesKey falls back to the principal", &mcp.RequestExtra{TokenInfo: &auth.TokenInfo{Extra: map[string]any{gosdk.ExtraKey: good, gosdk.ScopesKey: []string{"admin"}}}}, true, true},
		{"principal with bad scopes", &mcp.RequestExtra{TokenInfo: &auth.TokenInfo{Extra: map[string]any{gosdk.ExtraKey: mcpauth.Principal{Scopes: []string{"a b"}}}}}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, ok := gosdk.Principal(tt.extra)
			assert.Equal(t, tt.wantPrincipal, ok)
			set, ok := gosdk.Scopes(tt.extra)
			assert.Equal(t, tt.wantScopes, ok)
			if ok {
				assert.True(t, set.Allows(scope.MustParse("read")))
				assert.False(t, set.Allows(scope.MustParse("admin")), "a forged ScopesKey of the wrong type must not grant anything")
			}
		})
	}
}

func TestBridgeWithoutPrincipalIs401(t *testing.T) {
	t.Parallel()
	called := false
	h := gosdk.Bridge(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/mcp", nil))
	assert.Equal(t, http.StatusUnauthorized, rec.Code)
	assert.False(t, called)
}

func TestBridgeSetsTokenInfo(t *testing.T) {
	t.Parallel()
	p := mcpauth.Principal{KeyID: "k", UserID: "alice", Scopes: []string{"documents:read"}}
	var got *auth.TokenInfo
	h := gosdk.Bridge(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = auth.TokenInfoFromContext(r.Context()) }))
	for _, header := range []string{"", "Basic x", "bearer abc"} {
		r := httptest.NewRequest(http.MethodPost, "/mcp", nil).WithContext(mcpauth.WithPrincipal(context.Background(), p))
		if header != "" {
			r.Header.Set("Authorization", header)
		}
		got = nil
		h.ServeHTTP(httptest.NewRecorder(), r)
		require.NotNil(t, got, header)
		assert.Equal(t, "alice", got.UserID)
		pp, ok := got.Extra[gosdk.ExtraKey].(mcpauth.Principal)
		require.True(t, ok)
		assert.Equal(t, "k", pp.KeyID)
	}
}
