package mcpauth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/mcpauth/accesstoken"
	"github.com/mcpauth/mcpauth/store"
)

func TestResourceMetadataHandler(t *testing.T) {
	t.Parallel()
	g, err := New(store.NewMemory(), &Options{OAuth: &fakeTokens{}})
	require.NoError(t, err)
	plain, err := New(store.NewMemory(), nil)
	require.NoError(t, err)
	for _, g := range []*Guard{g, plain} {
		t.Cleanup(func() { _ = g.Close(context.Background()) })
	}
	tests := []struct {
		method, path string
		want         int
	}{
		{"GET", "/.well-known/oauth-protected-resource", 200},
		{"GET", "/.well-known/oauth-protected-resource/mcp", 200},
		{"HEAD", "/.well-known/oauth-protected-resource/mcp", 200},
		{"OPTIONS", "/.well-known/oauth-protected-resource/mcp", 204},
		{"POST", "/.well-known/oauth-protected-resource", 405},
		{"GET", "/.well-known/oauth-protected-resource/other", 404},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			w := httptest.NewRecorder()
			g.ResourceMetadataHandler().ServeHTTP(w, httptest.NewRequest(tt.method, tt.path, nil))
			assert.Equal(t, tt.want, w.Code)
			if tt.want == 200 && tt.method == "GET" {
				var md accesstoken.ResourceMetadata
				require.NoError(t, json.Unmarshal(w.Body.Bytes(), &md))
				assert.Equal(t, accesstoken.ResourceMetadata{Resource: "https://mcp.example/mcp", AuthorizationServers: []string{"https://issuer.example"},
					ScopesSupported: []string{"documents:read"}, BearerMethodsSupported: []string{"header"}}, md)
				assert.Equal(t, "*", w.Header().Get("Access-Control-Allow-Origin"))
			}
			w = httptest.NewRecorder()
			plain.ResourceMetadataHandler().ServeHTTP(w, httptest.NewRequest(tt.method, tt.path, nil))
			assert.Equal(t, http.StatusNotFound, w.Code, "a keys-only server advertises no metadata")
		})
	}
}

// badMetadata is a accesstoken.Verifier whose metadata New must refuse.
type badMetadata struct {
	fakeTokens
	md accesstoken.ResourceMetadata
}

func (b *badMetadata) ResourceMetadata() accesstoken.ResourceMetadata { return b.md }

func TestNewRefusesBadResourceMetadata(t *testing.T) {
	t.Parallel()
	as := []string{"https://issuer.example"}
	for _, md := range []accesstoken.ResourceMetadata{
		{AuthorizationServers: as},
		{Resource: "http://mcp.example/mcp", AuthorizationServers: as},
		{Resource: "https://mcp.example/mcp#x", AuthorizationServers: as},
		{Resource: "https://mcp.example/mcp?x=1", AuthorizationServers: as},
		{Resource: "/mcp", AuthorizationServers: as},
		{Resource: "https://mcp.example/mcp"},
		{Resource: "https://mcp.example/mcp", AuthorizationServers: as, ScopesSupported: []string{"a b"}},
	} {
		_, err := New(store.NewMemory(), &Options{OAuth: &badMetadata{md: md}})
		assert.ErrorContains(t, err, "Options.OAuth", "%+v", md)
	}
	g, err := New(store.NewMemory(), &Options{OAuth: &badMetadata{md: accesstoken.ResourceMetadata{Resource: "http://127.0.0.1:8080", AuthorizationServers: as}}})
	require.NoError(t, err, "http on loopback is for tests")
	assert.Equal(t, "http://127.0.0.1:8080/.well-known/oauth-protected-resource", g.ResourceMetadataURL())
	_ = g.Close(context.Background())
}
