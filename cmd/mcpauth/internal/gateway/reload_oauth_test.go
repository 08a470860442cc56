package gateway

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Two introspection client secrets: the one the gateway starts with and the
// one it is rotated to. Both have characters that RFC 6749 §2.3.1
// form-encodes.
const (
	secretBefore = "rotate-A s3cret:+/%"
	secretAfter  = "rotate-B s3cret:+/%"
)

// assertNoSecret checks that neither introspection secret, plain or
// form-encoded, is in s.
func assertNoSecret(t *testing.T, s, where string) {
	t.Helper()
	for _, secret := range []string{secretBefore, secretAfter, introspectionSecret} {
		assert.NotContains(t, s, secret, where)
		assert.NotContains(t, s, url.QueryEscape(secret), where)
	}
}

// introspectionFromFile is a gateway config whose one issuer, as,
// introspects with the secret in a file, which holds secret; it returns the
// config and the file. as accepts only secret.
func introspectionFromFile(t *testing.T, up *httpFixture, as *introspectionServer, secret string) (Config, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "introspection-secret")
	require.NoError(t, os.WriteFile(file, []byte(secret+"\n"), 0o600))
	as.acceptOnly(secret)
	cfg := introspectionConfig(t, up, as, IntrospectionConfig{Endpoint: as.srv.URL + "/introspect", ClientSecretFile: file})
	return cfg, file
}

// Rotating the introspection client secret needs a reload, not a restart:
// once the issuer accepts only the new secret, a new token gets 503 until
// the reload re-reads the file; then it works, and the issuer sees the new
// secret. Neither secret is logged.
func TestGatewayReloadRotatesIntrospectionSecret(t *testing.T) {
	up := startHTTPFixture(t, true)
	as := newIntrospectionServer(t)
	cfg, file := introspectionFromFile(t, up, as, secretBefore)
	g := startGateway(t, cfg)
	now := time.Now()

	const first = "opaque-rotate-first-1"
	as.answer(first, active("carol", oauthResource, "tools:basic", now))
	cs := g.connect(first)
	assert.Equal(t, "a", mustCall(t, cs, "echo", "a"))
	require.Positive(t, as.callsWith(secretBefore))
	assert.Zero(t, as.badAuth.Load())

	// The issuer rotates; the file is rewritten; no reload yet.
	as.acceptOnly(secretAfter)
	require.NoError(t, os.WriteFile(file, []byte(secretAfter+"\n"), 0o600))
	const second = "opaque-rotate-second-2" // fresh: no cached verdict
	as.answer(second, active("carol", oauthResource, "tools:basic", now))
	echoes := up.ran("echo")
	status, _, body := post(t, g.url, second, "", callEcho)
	assert.Equal(t, http.StatusServiceUnavailable, status, body)
	assert.Zero(t, as.callsWith(secretAfter), "the new secret is not read before the reload")
	assert.Positive(t, as.badAuth.Load(), "the old secret was refused")
	assert.Equal(t, echoes, up.ran("echo"))

	ignored, err := g.srv.Reload(&cfg)
	require.NoError(t, err)
	assert.Empty(t, ignored)

	refused := as.badAuth.Load()
	cs2 := g.connect(second)
	assert.Equal(t, "b", mustCall(t, cs2, "echo", "b"))
	assert.Positive(t, as.callsWith(secretAfter), "the issuer saw the new secret")
	// The session opened before the reload goes on under the new secret.
	assert.Equal(t, "c", mustCall(t, cs, "echo", "c"))
	assert.Equal(t, refused, as.badAuth.Load(), "nothing was refused after the reload")
	assert.Equal(t, echoes+2, up.ran("echo"))

	logs := g.log.String()
	assert.Contains(t, logs, "configuration reloaded")
	assertNoSecret(t, logs, "logs")
}

// A reload whose oauth table or client secret is bad changes nothing: the
// error names the field (never the secret), and the running verifier,
// with its secret, and the running policy go on serving.
func TestGatewayReloadRefusesBadOAuth(t *testing.T) {
	up := startHTTPFixture(t, true)
	as := newIntrospectionServer(t)
	cfg, file := introspectionFromFile(t, up, as, secretBefore)
	g := startGateway(t, cfg)
	now := time.Now()
	open := filepath.Join(t.TempDir(), "open.json")
	require.NoError(t, os.WriteFile(open, []byte(`{"tools": [{"match": "*", "scopes": ["tools:basic"]}]}`), 0o600))

	cases := []struct {
		name   string
		change func(c *Config) // may rewrite the secret file too
		field  string
	}{
		{"secret file emptied", func(*Config) { require.NoError(t, os.WriteFile(file, []byte("\n"), 0o600)) }, "oauth.issuers[0].introspection.client_secret_file"},
		{"secret file removed", func(*Config) { require.NoError(t, os.Remove(file)) }, "oauth.issuers[0].introspection.client_secret_file"},
		{"secret variable unset", func(c *Config) {
			c.OAuth.Issuers[0].Introspection.ClientSecretFile = ""
			c.OAuth.Issuers[0].Introspection.ClientSecretEnv = "GW_TEST_UNSET_SECRET"
		}, "oauth.issuers[0].introspection.client_secret_env"},
		{"resource invalid", func(c *Config) { c.OAuth.Resource = "ftp://mcp.example.com/mcp" }, "oauth.resource"},
		{"secret rotated, resource invalid", func(c *Config) {
			require.NoError(t, os.WriteFile(file, []byte(secretAfter+"\n"), 0o600))
			c.OAuth.Resource = "http://mcp.example.com/mcp" // http off loopback
		}, "oauth.resource"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Cleanup(func() { require.NoError(t, os.WriteFile(file, []byte(secretBefore+"\n"), 0o600)) })
			next := cfg
			next.OAuth.Issuers = cloneIssuers(cfg.OAuth.Issuers)
			next.Policy.File = open // would let "secret" run
			c.change(&next)
			ignored, err := g.srv.Reload(&next)
			var fe *FieldError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, c.field, fe.Field)
			assert.Empty(t, ignored)
			assertNoSecret(t, err.Error(), "Reload's error")

			before := as.callsWith(secretBefore)
			token := "opaque-still-" + string(rune('a'+i)) // fresh each time
			as.answer(token, active("carol", oauthResource, "tools:basic", now))
			cs := g.connect(token)
			assert.Equal(t, "ok", mustCall(t, cs, "echo", "ok"), "the running verifier stopped serving")
			assert.Greater(t, as.callsWith(secretBefore), before, "the running verifier's secret was not used")
			assert.Zero(t, as.callsWith(secretAfter))
			_, err = call(t, cs, "secret", "")
			require.Error(t, err, "a bad reload changed the policy")
		})
	}
	assert.Zero(t, as.badAuth.Load())
	assertNoSecret(t, g.log.String(), "logs")
}

// cloneIssuers copies issuers, so that a test can change one for a reload.
func cloneIssuers(issuers []OAuthIssuerConfig) []OAuthIssuerConfig {
	return append([]OAuthIssuerConfig(nil), issuers...)
}

// A reload that leaves the oauth table as it is keeps the running verifier
// with the keys it fetched: the JWKS is fetched once, however many reloads.
func TestGatewayReloadKeepsOAuthKeys(t *testing.T) {
	up := startHTTPFixture(t, true)
	is := newTokenIssuer(t)
	cfg := httpConfig(up.url)
	cfg.Policy.File = filepath.Join(t.TempDir(), "policy.json")
	require.NoError(t, os.WriteFile(cfg.Policy.File, []byte(testPolicy), 0o600))
	cfg.OAuth = OAuthConfig{Resource: oauthResource, Issuers: []OAuthIssuerConfig{{URL: is.srv.URL}}}
	g := startGateway(t, cfg)

	cs := g.connect(is.token(t, "carol", oauthResource, "tools:basic"))
	assert.Equal(t, "one", mustCall(t, cs, "echo", "one"))
	require.EqualValues(t, 1, is.jwks.Load())

	open := filepath.Join(t.TempDir(), "open.json")
	require.NoError(t, os.WriteFile(open, []byte(`{"tools": [{"match": "*", "scopes": ["tools:basic"]}]}`), 0o600))
	next := cfg
	next.Policy.File = open
	next.OAuth.Issuers = cloneIssuers(cfg.OAuth.Issuers) // equal, not the same slice
	for range 3 {
		ignored, err := g.srv.Reload(&next)
		require.NoError(t, err)
		assert.Empty(t, ignored)
	}

	cs2 := g.connect(is.token(t, "dave", oauthResource, "tools:basic"))
	assert.Equal(t, "the secret", mustCall(t, cs2, "secret", ""), "the reload applied the new policy")
	assert.EqualValues(t, 1, is.jwks.Load(), "the keys were fetched again: the verifier was not kept")
	assert.Contains(t, g.log.String(), `"oauth_verifier_kept":true`)
}

// An issuer added by reload is trusted from then on; removed again, its
// tokens are refused before the upstream hears of them. The first issuer's
// tokens work throughout.
func TestGatewayReloadAddsAndRemovesIssuer(t *testing.T) {
	up := startHTTPFixture(t, true)
	one, two := newTokenIssuer(t), newTokenIssuer(t)
	cfg := httpConfig(up.url)
	cfg.Policy.File = filepath.Join(t.TempDir(), "policy.json")
	require.NoError(t, os.WriteFile(cfg.Policy.File, []byte(testPolicy), 0o600))
	cfg.OAuth = OAuthConfig{Resource: oauthResource, Issuers: []OAuthIssuerConfig{{URL: one.srv.URL}}}
	g := startGateway(t, cfg)

	refused := func(t *testing.T, token string) {
		t.Helper()
		before, echoes := len(up.headers()), up.ran("echo")
		status, h, body := post(t, g.url, token, "", callEcho)
		assert.Equal(t, http.StatusUnauthorized, status, body)
		assert.Contains(t, h.Get("WWW-Authenticate"), "invalid_token")
		assert.Len(t, up.headers(), before, "a request reached the upstream")
		assert.Equal(t, echoes, up.ran("echo"))
	}
	works := func(t *testing.T, token string) {
		t.Helper()
		echoes := up.ran("echo")
		assert.Equal(t, "hi", mustCall(t, g.connect(token), "echo", "hi"))
		assert.Equal(t, echoes+1, up.ran("echo"))
	}

	works(t, one.token(t, "carol", oauthResource, "tools:basic"))
	refused(t, two.token(t, "erin", oauthResource, "tools:basic"))

	both := cfg
	both.OAuth.Issuers = []OAuthIssuerConfig{{URL: one.srv.URL}, {URL: two.srv.URL}}
	_, err := g.srv.Reload(&both)
	require.NoError(t, err)
	works(t, two.token(t, "erin", oauthResource, "tools:basic"))
	works(t, one.token(t, "carol", oauthResource, "tools:basic"))
	md := metadata(t, g, http.StatusOK)
	assert.Equal(t, []string{one.srv.URL, two.srv.URL}, md.AuthorizationServers)

	_, err = g.srv.Reload(&cfg)
	require.NoError(t, err)
	refused(t, two.token(t, "erin", oauthResource, "tools:basic"))
	works(t, one.token(t, "carol", oauthResource, "tools:basic"))
	md = metadata(t, g, http.StatusOK)
	assert.Equal(t, []string{one.srv.URL}, md.AuthorizationServers)
}

// oauth switched on by reload publishes the metadata and accepts tokens;
// switched off again, the metadata is gone (404, as when the gateway
// started without oauth) and tokens are refused as an API-keys-only
// gateway refuses them. API keys work throughout.
func TestGatewayReloadSwitchesOAuth(t *testing.T) {
	up := startHTTPFixture(t, true)
	is := newTokenIssuer(t)
	off := httpConfig(up.url)
	off.Policy.File = filepath.Join(t.TempDir(), "policy.json")
	require.NoError(t, os.WriteFile(off.Policy.File, []byte(testPolicy), 0o600))
	g := startGateway(t, off)
	key := g.key("dave", "tools:basic")

	refusedAsKeysOnly := func(t *testing.T) {
		t.Helper()
		before := len(up.headers())
		status, h, _ := post(t, g.url, is.token(t, "carol", oauthResource, "tools:basic"), "", callEcho)
		assert.Equal(t, http.StatusUnauthorized, status)
		assert.NotContains(t, h.Get("WWW-Authenticate"), "resource_metadata")
		assert.Len(t, up.headers(), before, "a request reached the upstream")
	}

	assertNoMetadata(t, g)
	refusedAsKeysOnly(t)

	on := off
	on.OAuth = OAuthConfig{Resource: oauthResource, ScopesSupported: []string{"tools:basic"}, Issuers: []OAuthIssuerConfig{{URL: is.srv.URL}}}
	ignored, err := g.srv.Reload(&on)
	require.NoError(t, err)
	assert.Empty(t, ignored)
	md := metadata(t, g, http.StatusOK)
	assert.Equal(t, oauthResource, md.Resource)
	assert.Equal(t, []string{is.srv.URL}, md.AuthorizationServers)
	assert.Equal(t, []string{"tools:basic"}, md.ScopesSupported)
	echoes := up.ran("echo")
	assert.Equal(t, "on", mustCall(t, g.connect(is.token(t, "carol", oauthResource, "tools:basic")), "echo", "on"))
	assert.Equal(t, echoes+1, up.ran("echo"))
	status, h, _ := post(t, g.url, is.token(t, "carol", "https://other.example.com/mcp", "tools:basic"), "", callEcho)
	assert.Equal(t, http.StatusUnauthorized, status)
	assert.Contains(t, h.Get("WWW-Authenticate"), `resource_metadata="http://localhost/.well-known/oauth-protected-resource/mcp"`)
	assert.Equal(t, "k", mustCall(t, g.connect(key), "echo", "k"))

	ignored, err = g.srv.Reload(&off)
	require.NoError(t, err)
	assert.Empty(t, ignored)
	assertNoMetadata(t, g)
	refusedAsKeysOnly(t)
	assert.Equal(t, "k", mustCall(t, g.connect(key), "echo", "k"))
}

// resourceMetadata is the part of the protected resource metadata the
// tests read.
type resourceMetadata struct {
	Resource             string   `json:"resource"`
	AuthorizationServers []string `json:"authorization_servers"`
	ScopesSupported      []string `json:"scopes_supported"`
}

// metadata fetches g's protected resource metadata at both paths, checks
// that both answer status with the same document, and returns it.
func metadata(t *testing.T, g *gw, status int) resourceMetadata {
	t.Helper()
	var out []resourceMetadata
	for _, path := range []string{"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"} {
		res, err := http.Get(g.base + path)
		require.NoError(t, err)
		var md resourceMetadata
		if res.StatusCode == http.StatusOK {
			require.NoError(t, json.NewDecoder(res.Body).Decode(&md))
		}
		res.Body.Close()
		require.Equal(t, status, res.StatusCode, path)
		out = append(out, md)
	}
	require.Equal(t, out[0], out[1], "the two paths disagree")
	return out[0]
}
