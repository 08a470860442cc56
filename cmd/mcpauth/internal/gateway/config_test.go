package gateway

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/ratelimit"
)

func TestReadConfigExample(t *testing.T) {
	c, err := ReadConfig(strings.NewReader(`
listen = "0.0.0.0:9000"
shutdown_timeout = "10s"
trusted_proxies = ["10.0.0.0/8"]

[upstream]
url = "http://127.0.0.1:3000/mcp"
[upstream.principal_headers]
user_id = "X-MCP-User"

[database]
url = "postgres://mcp@db/mcp"

[policy]
file = "policy.json"

[rate_limit]
by = "user"
default = { rate = 60, per = "1m" }
tiers = { paid = { rate = 600, per = "1m", burst = 100 } }
tier_scopes = { "tier:paid" = "paid" }
costs = { "tools/call:expensive" = 5 }

[audit]
mode = "blocking"
`))
	require.NoError(t, err)
	require.NoError(t, c.Validate())
	assert.Equal(t, "0.0.0.0:9000", c.Listen)
	assert.Equal(t, "/mcp", c.Path)
	assert.Equal(t, 10*time.Second, c.ShutdownTimeout.D())
	assert.Equal(t, "database", c.Audit.Sink)
	assert.Equal(t, DefaultPepperEnv, c.Keys.PepperEnv)
	p, err := c.RatePolicy()
	require.NoError(t, err)
	assert.Equal(t, ratelimit.ByUser, p.By)
	assert.Equal(t, ratelimit.Limit{Name: "default", Rate: 60, Per: time.Minute}, p.Default)
	assert.Equal(t, 100, p.Tiers["paid"].Burst)
	assert.Equal(t, 5, p.Cost("tools/call", "expensive"))
}

// Every bad value is refused with the field's TOML name.
func TestConfigErrorsNameTheField(t *testing.T) {
	cases := []struct{ name, toml, field string }{
		{"unknown key", "listn = \"x\"\n[upstream]\nurl = \"http://a/\"", "listn"},
		{"unknown nested key", "[upstream]\nurl = \"http://a/\"\nheaders = 1", "upstream.headers"},
		{"integer duration", "shutdown_timeout = 30\n[upstream]\nurl = \"http://a/\"", ""},
		{"no upstream", "", "upstream.url"},
		{"two upstreams", "[upstream]\nurl = \"http://a/\"\n[stdio]\ncommand = [\"x\"]", "upstream.url"},
		{"bad url", "[upstream]\nurl = \"ftp://a/\"", "upstream.url"},
		{"url with password", "[upstream]\nurl = \"http://u:p@a/\"", "upstream.url"},
		{"bad listen", "listen = \"8080\"\n[upstream]\nurl = \"http://a/\"", "listen"},
		{"bad path", "path = \"mcp\"\n[upstream]\nurl = \"http://a/\"", "path"},
		{"reserved path", "path = \"/health\"\n[upstream]\nurl = \"http://a/\"", "path"},
		{"tls half", "[tls]\ncert = \"c.pem\"\n[upstream]\nurl = \"http://a/\"", "tls.key"},
		{"protocol header", "[upstream]\nurl = \"http://a/\"\n[upstream.principal_headers]\nuser_id = \"Authorization\"", "upstream.principal_headers.user_id"},
		{"bad header name", "[upstream]\nurl = \"http://a/\"\n[upstream.principal_headers]\nkey_id = \"X MCP\"", "upstream.principal_headers.key_id"},
		{"empty program", "[stdio]\ncommand = [\"\"]", "stdio.command"},
		{"per-user cap over total", "[stdio]\ncommand = [\"x\"]\nmax_processes = 2\nmax_processes_per_user = 3", "stdio.max_processes_per_user"},
		{"negative idle", "[stdio]\ncommand = [\"x\"]\nidle_timeout = \"-1s\"", "stdio.idle_timeout"},
		{"bad env name", "[stdio]\ncommand = [\"x\"]\nenv = { \"A=B\" = \"c\" }", "stdio.env"},
		{"two peppers", "[upstream]\nurl = \"http://a/\"\n[keys]\npepper_env = \"A\"\npepper_file = \"p\"", "keys.pepper_file"},
		{"rate by", "[upstream]\nurl = \"http://a/\"\n[rate_limit]\nby = \"team\"", "rate_limit.by"},
		{"rate zero", "[upstream]\nurl = \"http://a/\"\n[rate_limit]\ndefault = { rate = 0, per = \"1m\" }", "rate_limit.default.rate"},
		{"rate per", "[upstream]\nurl = \"http://a/\"\n[rate_limit]\ndefault = { rate = 5 }", "rate_limit.default.per"},
		{"tier scope to nowhere", "[upstream]\nurl = \"http://a/\"\n[rate_limit]\ntier_scopes = { \"s\" = \"gold\" }", "rate_limit.tier_scopes.s"},
		{"negative cost", "[upstream]\nurl = \"http://a/\"\n[rate_limit]\ncosts = { \"tools/call\" = -1 }", "rate_limit.costs.tools/call"},
		{"audit sink", "[upstream]\nurl = \"http://a/\"\n[audit]\nsink = \"kafka\"", "audit.sink"},
		{"audit mode", "[upstream]\nurl = \"http://a/\"\n[audit]\nmode = \"always\"", "audit.mode"},
		{"strict without sink", "[upstream]\nurl = \"http://a/\"\n[audit]\nsink = \"off\"\nmode = \"strict\"", "audit.mode"},
		{"log level", "[upstream]\nurl = \"http://a/\"\n[log]\nlevel = \"loud\"", "log.level"},
		{"oauth no resource", "[upstream]\nurl = \"http://a/\"\n[[oauth.issuers]]\nurl = \"https://idp.example.com/\"\n", "oauth.resource"},
		{"oauth no issuer", "[upstream]\nurl = \"http://a/\"\n[oauth]\nresource = \"https://mcp.example.com/mcp\"\n", "oauth.issuers"},
		{"oauth resource not https", "[upstream]\nurl = \"http://a/\"\n[oauth]\nresource = \"http://mcp.example.com/mcp\"\n[[oauth.issuers]]\nurl = \"https://idp.example.com/\"\n", "oauth.resource"},
		{"oauth skew", "[upstream]\nurl = \"http://a/\"\n[oauth]\nresource = \"https://mcp.example.com/mcp\"\nclock_skew = \"10m\"\n[[oauth.issuers]]\nurl = \"https://idp.example.com/\"\n", "oauth.clock_skew"},
		{"oauth negative http timeout", "[upstream]\nurl = \"http://a/\"\n[oauth]\nresource = \"https://mcp.example.com/mcp\"\nhttp_timeout = \"-1s\"\n[[oauth.issuers]]\nurl = \"https://idp.example.com/\"\n", "oauth.http_timeout"},
		{"oauth http timeout over 1m", "[upstream]\nurl = \"http://a/\"\n[oauth]\nresource = \"https://mcp.example.com/mcp\"\nhttp_timeout = \"2m\"\n[[oauth.issuers]]\nurl = \"https://idp.example.com/\"\n", "oauth.http_timeout"},
		{"oauth issuer url", "[upstream]\nurl = \"http://a/\"\n[oauth]\nresource = \"https://mcp.example.com/mcp\"\n[[oauth.issuers]]\naudiences = [\"x\"]\n", "oauth.issuers[0].url"},
		{"oauth issuer not https", "[upstream]\nurl = \"http://a/\"\n[oauth]\nresource = \"https://mcp.example.com/mcp\"\n[[oauth.issuers]]\nurl = \"http://idp.example.com/\"\n", "oauth.issuers[0]"},
		{"oauth hmac", "[upstream]\nurl = \"http://a/\"\n[oauth]\nresource = \"https://mcp.example.com/mcp\"\n[[oauth.issuers]]\nurl = \"https://idp.example.com/\"\nalgorithms = [\"HS256\"]\n", "oauth.issuers[0]"},
		{"oauth duplicate issuer", "[upstream]\nurl = \"http://a/\"\n[oauth]\nresource = \"https://mcp.example.com/mcp\"\n[[oauth.issuers]]\nurl = \"https://idp.example.com/\"\n[[oauth.issuers]]\nurl = \"https://idp.example.com/\"\n", "oauth.issuers[1].url"},
		{"oauth introspection without secret", "[upstream]\nurl = \"http://a/\"\n[oauth]\nresource = \"https://mcp.example.com/mcp\"\n[[oauth.issuers]]\nurl = \"https://idp.example.com/\"\n[oauth.issuers.introspection]\nclient_id = \"rs\"\n", "oauth.issuers[0].introspection.client_secret_env"},
		{"oauth introspection without client", "[upstream]\nurl = \"http://a/\"\n[oauth]\nresource = \"https://mcp.example.com/mcp\"\n[[oauth.issuers]]\nurl = \"https://idp.example.com/\"\n[oauth.issuers.introspection]\nclient_secret_env = \"S\"\n", "oauth.issuers[0].introspection.client_id"},
		{"oauth two introspections", "[upstream]\nurl = \"http://a/\"\n[oauth]\nresource = \"https://mcp.example.com/mcp\"\n[[oauth.issuers]]\nurl = \"https://idp.example.com/\"\n[oauth.issuers.introspection]\nclient_id = \"rs\"\nclient_secret_env = \"S\"\n[[oauth.issuers]]\nurl = \"https://other.example.com/\"\n[oauth.issuers.introspection]\nclient_id = \"rs\"\nclient_secret_env = \"S\"\n", "oauth.issuers[1].introspection"},
		{"oauth unknown key", "[upstream]\nurl = \"http://a/\"\n[oauth]\nresource = \"https://mcp.example.com/mcp\"\n[[oauth.issuers]]\nurl = \"https://idp.example.com/\"\naudience = \"x\"\n", "oauth.issuers.audience"},
		{"oauth path on metadata", "path = \"/.well-known/oauth-protected-resource\"\n[upstream]\nurl = \"http://a/\"\n[oauth]\nresource = \"https://mcp.example.com/mcp\"\n[[oauth.issuers]]\nurl = \"https://idp.example.com/\"\n", "path"},
		// A reload may switch oauth on: the metadata is mounted always.
		{"path on metadata without oauth", "path = \"/.well-known/oauth-protected-resource\"\n[upstream]\nurl = \"http://a/\"\n", "path"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := ReadConfig(strings.NewReader(c.toml))
			if err == nil {
				err = cfg.Validate()
			}
			require.Error(t, err)
			if c.field == "" {
				assert.Contains(t, err.Error(), "want a duration such as 30s")
				return
			}
			var fe *FieldError
			require.True(t, errors.As(err, &fe), "%v", err)
			assert.Equal(t, c.field, fe.Field, fe.Msg)
		})
	}
}

func TestOAuthConfig(t *testing.T) {
	c, err := ReadConfig(strings.NewReader(`
[upstream]
url = "http://127.0.0.1:3000/mcp"

[oauth]
resource = "https://mcp.example.com/mcp"
scopes_supported = ["tools:basic"]
clock_skew = "1m"

[[oauth.issuers]]
url = "https://example.eu.auth0.com/"
token_types = ["JWT"]
audiences = ["https://api.example.com"]
user_claim = "email"

[[oauth.issuers]]
url = "https://idp.example.com"
[oauth.issuers.introspection]
client_id = "mcp-gateway"
client_secret_file = "secret.txt"
cache_ttl = "5s"
`))
	require.NoError(t, err)
	require.NoError(t, c.Validate())
	require.Len(t, c.OAuth.Issuers, 2)
	assert.Equal(t, []string{"https://api.example.com"}, c.OAuth.Issuers[0].Audiences)
	assert.False(t, c.OAuth.Issuers[0].Introspection.enabled())
	assert.True(t, c.OAuth.Issuers[1].Introspection.enabled())

	// The client secret is read at start (and on each reload): a missing
	// file names the field, a present one builds the verifier.
	_, err = c.OAuth.verifier(nil, func(string) string { return "" }, nil)
	var fe *FieldError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "oauth.issuers[1].introspection.client_secret_file", fe.Field)
	c.OAuth.Issuers[1].Introspection.ClientSecretFile = filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(c.OAuth.Issuers[1].Introspection.ClientSecretFile, []byte("s3cret-value\n"), 0o600))
	rv, err := c.OAuth.verifier(nil, func(string) string { return "" }, nil)
	require.NoError(t, err)
	md := rv.v.ResourceMetadata()
	assert.Equal(t, "https://mcp.example.com/mcp", md.Resource)
	assert.Equal(t, []string{"https://example.eu.auth0.com/", "https://idp.example.com"}, md.AuthorizationServers)

	c.OAuth.Issuers[1].Introspection = IntrospectionConfig{ClientID: "x", ClientSecretEnv: "GW_SECRET"}
	_, err = c.OAuth.verifier(nil, func(string) string { return "" }, nil)
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "oauth.issuers[1].introspection.client_secret_env", fe.Field)

	// Without issuers oauth is off.
	off := &Config{Upstream: UpstreamConfig{URL: "http://a/"}}
	require.NoError(t, off.Validate())
	rv, err = off.OAuth.verifier(nil, nil, nil)
	require.NoError(t, err)
	assert.Nil(t, rv)
}

// oauth.http_timeout is the timeout of the verifier's client: 10s when
// unset (or 0), else as written, up to 1m. A reload applies it, as the
// whole oauth table. TestGatewayIntrospectionTimeout shows it bounding a
// call.
func TestOAuthHTTPTimeout(t *testing.T) {
	cases := []struct {
		name, line string // line: the http_timeout line, if any
		want       time.Duration
	}{
		{"unset", "", DefaultOAuthHTTPTimeout},
		{"zero", `http_timeout = "0s"`, DefaultOAuthHTTPTimeout},
		{"configured", `http_timeout = "2.5s"`, 2500 * time.Millisecond},
		{"the most", `http_timeout = "1m"`, time.Minute},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := ReadConfig(strings.NewReader(`
[upstream]
url = "http://127.0.0.1:3000/mcp"
[oauth]
resource = "https://mcp.example.com/mcp"
` + c.line + `
[[oauth.issuers]]
url = "https://idp.example.com/"
`))
			require.NoError(t, err)
			require.NoError(t, cfg.Validate())
			o := cfg.OAuth.options(nil)
			require.NotNil(t, o.HTTPClient)
			assert.Equal(t, c.want, o.HTTPClient.Timeout)
			assert.Nil(t, o.HTTPClient.Transport, "http.DefaultTransport, as oauth.New's own client")
			rv, err := cfg.OAuth.verifier(nil, func(string) string { return "" }, nil)
			require.NoError(t, err)
			require.NotNil(t, rv)
			assert.NotNil(t, rv.v)
		})
	}

	t.Run("reloadable", func(t *testing.T) {
		a := OAuthConfig{Resource: "https://mcp.example.com/mcp", Issuers: []OAuthIssuerConfig{{URL: "https://idp.example.com/"}}}
		b := a
		b.HTTPTimeout = Duration(30 * time.Second)
		_, listed := (&Config{OAuth: a}).restartOnly()["oauth"]
		assert.False(t, listed, "oauth is not restart-only")
		prev, err := a.verifier(nil, nil, nil)
		require.NoError(t, err)
		next, err := b.verifier(prev, nil, nil)
		require.NoError(t, err)
		assert.NotSame(t, prev, next, "a reload that changes http_timeout builds a new verifier")
	})
}

// A reload keeps the running verifier (its fetched keys and caches) only
// when neither the oauth table nor the client secret it reads changed;
// any other change builds a new one. TestGatewayReloadKeepsOAuthKeys and
// TestGatewayReloadRotatesIntrospectionSecret show both on a server.
func TestOAuthVerifierKept(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secretFile, []byte("secret-a\n"), 0o600))
	env := map[string]string{"GW_SECRET": "secret-a"}
	getenv := func(k string) string { return env[k] }
	base := func() OAuthConfig {
		return OAuthConfig{
			Resource: "https://mcp.example.com/mcp", ScopesSupported: []string{"files:read"},
			Issuers: []OAuthIssuerConfig{
				{URL: "https://idp.example.com/", Audiences: []string{"api"}},
				{URL: "https://opaque.example.com/", Introspection: IntrospectionConfig{ClientID: "rs", ClientSecretFile: secretFile}},
			},
		}
	}
	cases := []struct {
		name   string
		change func(c *OAuthConfig)
		kept   bool
	}{
		{"nothing", func(*OAuthConfig) {}, true},
		{"same secret, file rewritten", func(*OAuthConfig) {
			require.NoError(t, os.WriteFile(secretFile, []byte("secret-a"), 0o600)) // trimmed: the same secret
		}, true},
		{"secret rotated", func(*OAuthConfig) { require.NoError(t, os.WriteFile(secretFile, []byte("secret-b\n"), 0o600)) }, false},
		{"secret from a variable holding the same value", func(c *OAuthConfig) {
			c.Issuers[1].Introspection.ClientSecretFile, c.Issuers[1].Introspection.ClientSecretEnv = "", "GW_SECRET"
		}, false},
		{"audience added", func(c *OAuthConfig) { c.Issuers[0].Audiences = append(c.Issuers[0].Audiences, "api2") }, false},
		{"issuer added", func(c *OAuthConfig) {
			c.Issuers = append(c.Issuers, OAuthIssuerConfig{URL: "https://two.example.com/"})
		}, false},
		{"issuer removed", func(c *OAuthConfig) { c.Issuers = c.Issuers[1:] }, false},
		{"resource", func(c *OAuthConfig) { c.Resource = "https://mcp.example.com/v2" }, false},
		{"scopes_supported", func(c *OAuthConfig) { c.ScopesSupported = []string{"files:write"} }, false},
		{"resource_name", func(c *OAuthConfig) { c.ResourceName = "Files" }, false},
		{"clock_skew", func(c *OAuthConfig) { c.ClockSkew = Duration(time.Minute) }, false},
		{"http_timeout", func(c *OAuthConfig) { c.HTTPTimeout = Duration(time.Second) }, false},
		{"jwks_url", func(c *OAuthConfig) { c.Issuers[0].JWKSURL = "https://idp.example.com/keys" }, false},
		{"user_claim", func(c *OAuthConfig) { c.Issuers[0].UserClaim = "email" }, false},
		{"cache_ttl", func(c *OAuthConfig) { c.Issuers[1].Introspection.CacheTTL = Duration(time.Second) }, false},
		{"introspection endpoint", func(c *OAuthConfig) { c.Issuers[1].Introspection.Endpoint = "https://opaque.example.com/introspect" }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.NoError(t, os.WriteFile(secretFile, []byte("secret-a\n"), 0o600))
			running := base()
			prev, err := running.verifier(nil, getenv, nil)
			require.NoError(t, err)
			require.NotNil(t, prev)
			next := base()
			c.change(&next)
			require.NoError(t, (&Config{Upstream: UpstreamConfig{URL: "http://a/"}, OAuth: next}).Validate())
			got, err := next.verifier(prev, getenv, nil)
			require.NoError(t, err)
			if c.kept {
				assert.Same(t, prev, got)
			} else {
				assert.NotSame(t, prev, got)
				assert.NotSame(t, prev.v, got.v)
			}
		})
	}

	t.Run("the running table is a copy", func(t *testing.T) {
		running := base()
		prev, err := running.verifier(nil, getenv, nil)
		require.NoError(t, err)
		running.Issuers[0].Audiences[0] = "changed in place"
		got, err := running.verifier(prev, getenv, nil)
		require.NoError(t, err)
		assert.NotSame(t, prev, got)
	})

	t.Run("off", func(t *testing.T) {
		running := base()
		prev, err := running.verifier(nil, getenv, nil)
		require.NoError(t, err)
		got, err := (&OAuthConfig{}).verifier(prev, getenv, nil)
		require.NoError(t, err)
		assert.Nil(t, got)
	})

	t.Run("secret unreadable", func(t *testing.T) {
		running := base()
		prev, err := running.verifier(nil, getenv, nil)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(secretFile, nil, 0o600))
		got, err := running.verifier(prev, getenv, nil)
		var fe *FieldError
		require.ErrorAs(t, err, &fe)
		assert.Equal(t, "oauth.issuers[1].introspection.client_secret_file", fe.Field)
		assert.Nil(t, got, "an unchanged table does not keep a verifier whose secret is gone")
	})
}

func TestPeppers(t *testing.T) {
	env := map[string]string{"P": "2:a-pepper-of-sufficient-length-xx", "MCPAUTH_PEPPERS_RETIRED": "1:an-older-pepper-of-enough-length"}
	c := &Config{Keys: KeysConfig{PepperEnv: "P"}}
	ps, err := c.Peppers(func(k string) string { return env[k] })
	require.NoError(t, err)
	assert.Len(t, ps, 2)

	file := filepath.Join(t.TempDir(), "pepper")
	require.NoError(t, os.WriteFile(file, []byte("# current first\n2:a-pepper-of-sufficient-length-xx\n1:short\n"), 0o600))
	c = &Config{Keys: KeysConfig{PepperFile: file}}
	_, err = c.Peppers(func(string) string { return "" })
	require.Error(t, err)
	assert.Contains(t, err.Error(), "keys.pepper_file line 2")
	assert.NotContains(t, err.Error(), "short", "a secret in an error")

	c = &Config{Keys: KeysConfig{PepperEnv: "NONE"}}
	_, err = c.Peppers(func(k string) string { return map[string]string{"MCPAUTH_PEPPERS_RETIRED": "1:x"}[k] })
	require.Error(t, err, "retired peppers without a current one")
}
