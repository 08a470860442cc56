package gateway

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tokenIssuer is an authorization server for the tests: OpenID discovery
// and a JWKS with one RSA key, counting the key fetches.
type tokenIssuer struct {
	srv  *httptest.Server
	key  *rsa.PrivateKey
	jwks atomic.Int32
}

func newTokenIssuer(t *testing.T) *tokenIssuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	is := &tokenIssuer{key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": is.srv.URL, "jwks_uri": is.srv.URL + "/jwks"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		is.jwks.Add(1)
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "gw-1", Algorithm: "RS256", Use: "sig"}}})
	})
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	return is
}

// token mints an RFC 9068 access token for user with aud and scope.
func (is *tokenIssuer) token(t *testing.T, user, aud, scope string) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", "gw-1")
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: is.key}, opts)
	require.NoError(t, err)
	now := time.Now()
	claims, err := json.Marshal(map[string]any{
		"iss": is.srv.URL, "sub": user, "aud": aud, "client_id": "agent-7", "scope": scope,
		"iat": now.Add(-time.Second).Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	})
	require.NoError(t, err)
	jws, err := signer.Sign(claims)
	require.NoError(t, err)
	out, err := jws.CompactSerialize()
	require.NoError(t, err)
	return out
}

const oauthResource = "http://localhost/mcp"

// An OAuth access token goes through the gateway like a key: a valid one
// reaches the upstream with the principal headers; one for another
// audience is refused before the upstream hears of it.
func TestGatewayAcceptsOAuthTokens(t *testing.T) {
	up := startHTTPFixture(t, true)
	is := newTokenIssuer(t)
	cfg := httpConfig(up.url)
	cfg.Policy.File = filepath.Join(t.TempDir(), "policy.json")
	require.NoError(t, os.WriteFile(cfg.Policy.File, []byte(testPolicy), 0o600))
	cfg.OAuth = OAuthConfig{
		Resource: oauthResource, ScopesSupported: []string{"tools:basic"},
		Issuers: []OAuthIssuerConfig{{URL: is.srv.URL}},
	}
	g := startGateway(t, cfg)

	t.Run("valid token", func(t *testing.T) {
		before := len(up.headers())
		tok := is.token(t, "carol", oauthResource, "tools:basic")
		cs := g.connect(tok)
		assert.Equal(t, "hi", mustCall(t, cs, "echo", "hi"))
		assert.EqualValues(t, 1, up.ran("echo"))
		seen := up.headers()[before:]
		require.NotEmpty(t, seen)
		assertTokenPrincipal(t, seen, "carol", "tools:basic", tok)
		// The policy applies to tokens as to keys.
		_, err := call(t, cs, "secret", "")
		require.Error(t, err)
		assert.EqualValues(t, 0, up.ran("secret"))
	})

	t.Run("wrong audience", func(t *testing.T) {
		before, echoes := len(up.headers()), up.ran("echo")
		bad := is.token(t, "carol", "https://other.example.com/mcp", "tools:basic")
		status, h, _ := post(t, g.url, bad, "", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}`)
		assert.Equal(t, http.StatusUnauthorized, status)
		assert.Contains(t, h.Get("WWW-Authenticate"), `resource_metadata="http://localhost/.well-known/oauth-protected-resource/mcp"`)
		assert.Len(t, up.headers(), before, "no request reached the upstream")
		assert.Equal(t, echoes, up.ran("echo"))
	})

	t.Run("api keys still work", func(t *testing.T) {
		cs := g.connect(g.key("dave", "tools:basic"))
		assert.Equal(t, "k", mustCall(t, cs, "echo", "k"))
	})

	t.Run("resource metadata", func(t *testing.T) {
		for _, path := range []string{"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"} {
			res, err := http.Get(g.base + path)
			require.NoError(t, err)
			var md struct {
				Resource             string   `json:"resource"`
				AuthorizationServers []string `json:"authorization_servers"`
				ScopesSupported      []string `json:"scopes_supported"`
			}
			require.Equal(t, http.StatusOK, res.StatusCode, path)
			require.NoError(t, json.NewDecoder(res.Body).Decode(&md))
			res.Body.Close()
			assert.Equal(t, oauthResource, md.Resource)
			assert.Equal(t, []string{is.srv.URL}, md.AuthorizationServers)
			assert.Equal(t, []string{"tools:basic"}, md.ScopesSupported)
		}
	})
}

// Without [oauth] the metadata is not served and tokens are not accepted.
func TestGatewayWithoutOAuth(t *testing.T) {
	up := startHTTPFixture(t, true)
	g := startGateway(t, httpConfig(up.url))
	assertNoMetadata(t, g)
	status, h, _ := post(t, g.url, "eyJhbGciOiJSUzI1NiJ9.e30.c2ln", "", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
	assert.Equal(t, http.StatusUnauthorized, status)
	assert.NotContains(t, h.Get("WWW-Authenticate"), "resource_metadata")
	assert.Empty(t, up.headers())
}

// assertTokenPrincipal checks the headers of every request the upstream saw
// for one token's session: the principal headers name user, an OAuth grant
// and scope, and no header carries the token (nor an Authorization header).
func assertTokenPrincipal(t *testing.T, seen []http.Header, user, scope, token string) {
	t.Helper()
	for _, h := range seen {
		assert.Equal(t, []string{user}, h.Values("X-MCP-User"))
		assert.True(t, strings.HasPrefix(h.Get("X-MCP-Key-Id"), "oauth_"), h.Get("X-MCP-Key-Id"))
		assert.Equal(t, []string{scope}, h.Values("X-MCP-Scopes"))
		assert.Empty(t, h.Get("Authorization"), "the token is not forwarded")
		for name, values := range h {
			for _, v := range values {
				assert.NotContains(t, v, token, "the token is forwarded in %s", name)
			}
		}
	}
}

// assertNoMetadata checks that g serves no protected resource metadata, at
// either path.
func assertNoMetadata(t *testing.T, g *gw) {
	t.Helper()
	for _, path := range []string{"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"} {
		res, err := http.Get(g.base + path)
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, http.StatusNotFound, res.StatusCode, path)
	}
}
