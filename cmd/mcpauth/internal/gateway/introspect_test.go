package gateway

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/mcpauth/apikey"
)

// The introspection client of the tests. The secret has characters that
// RFC 6749 §2.3.1 form-encodes in the Basic credentials.
const (
	introspectionClient    = "mcp-gateway"
	introspectionSecret    = "gw-introspect s3cret:+/%"
	introspectionSecretEnv = "GW_TEST_INTROSPECTION_SECRET"
)

// introspectionServer is an authorization server that answers RFC 7662
// introspection from a table of tokens (a token not in it is inactive),
// and only to introspectionClient with its secret (introspectionSecret
// unless acceptOnly says otherwise). It counts the calls, by token and by
// the client secret presented, and those with other credentials; discovery
// names the endpoint.
type introspectionServer struct {
	srv      *httptest.Server
	total    atomic.Int32
	badAuth  atomic.Int32
	mu       sync.Mutex
	secret   string // the one client secret accepted
	answers  map[string]map[string]any
	calls    map[string]int
	bySecret map[string]int
}

func newIntrospectionServer(t *testing.T) *introspectionServer {
	t.Helper()
	as := &introspectionServer{secret: introspectionSecret, answers: map[string]map[string]any{}, calls: map[string]int{}, bySecret: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": as.srv.URL, "introspection_endpoint": as.srv.URL + "/introspect"})
	})
	mux.HandleFunc("POST /introspect", func(w http.ResponseWriter, r *http.Request) {
		as.total.Add(1)
		id, secret, ok := r.BasicAuth()
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
		as.mu.Lock()
		as.bySecret[secret]++
		accepted := as.secret
		as.mu.Unlock()
		if !ok || id != introspectionClient || secret != accepted {
			as.badAuth.Add(1)
			w.Header().Set("WWW-Authenticate", `Basic realm="introspection"`)
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		if r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || r.ParseForm() != nil {
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		token := r.PostForm.Get("token")
		as.mu.Lock()
		as.calls[token]++
		answer, known := as.answers[token]
		as.mu.Unlock()
		if !known {
			answer = map[string]any{"active": false}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(answer)
	})
	as.srv = httptest.NewServer(mux)
	t.Cleanup(as.srv.Close)
	return as
}

// answer sets what introspecting token says.
func (as *introspectionServer) answer(token string, a map[string]any) {
	as.mu.Lock()
	defer as.mu.Unlock()
	as.answers[token] = a
}

// acceptOnly makes secret the one client secret accepted from now on.
func (as *introspectionServer) acceptOnly(secret string) {
	as.mu.Lock()
	defer as.mu.Unlock()
	as.secret = secret
}

// callsWith is how many calls presented secret as the client secret,
// accepted or not.
func (as *introspectionServer) callsWith(secret string) int {
	as.mu.Lock()
	defer as.mu.Unlock()
	return as.bySecret[secret]
}

// callsFor is how many times token was introspected.
func (as *introspectionServer) callsFor(token string) int {
	as.mu.Lock()
	defer as.mu.Unlock()
	return as.calls[token]
}

// active is the introspection answer of a live token of user for aud,
// expiring an hour after now.
func active(user, aud, scope string, now time.Time) map[string]any {
	return map[string]any{
		"active": true, "sub": user, "aud": aud, "client_id": "agent-7", "scope": scope,
		"token_type": "Bearer", "iat": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

// manualClock is the gateway's clock in the introspection tests: time
// moves only when the test says so.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// introspectionConfig is a gateway in front of up whose one issuer, as,
// verifies opaque tokens by introspection, with the secret in $secretEnv.
func introspectionConfig(t *testing.T, up *httpFixture, as *introspectionServer, in IntrospectionConfig) Config {
	t.Helper()
	cfg := httpConfig(up.url)
	cfg.Policy.File = filepath.Join(t.TempDir(), "policy.json")
	require.NoError(t, os.WriteFile(cfg.Policy.File, []byte(testPolicy), 0o600))
	in.ClientID = introspectionClient
	cfg.OAuth = OAuthConfig{
		Resource: oauthResource, ScopesSupported: []string{"tools:basic"},
		Issuers: []OAuthIssuerConfig{{URL: as.srv.URL, Introspection: in}},
	}
	return cfg
}

// withSecretAndClock gives the gateway $GW_TEST_INTROSPECTION_SECRET and
// clock (when not nil).
func withSecretAndClock(clock *manualClock) func(*Deps) {
	return func(d *Deps) {
		base := d.Getenv
		d.Getenv = func(k string) string {
			if k == introspectionSecretEnv {
				return introspectionSecret
			}
			return base(k)
		}
		if clock != nil {
			d.Now = clock.Now
		}
	}
}

const callEcho = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}`

// An opaque access token is verified by introspection at the issuer: an
// active one for this resource reaches the upstream as its principal
// (never as itself) under the policy; an inactive, foreign or expired one
// is refused before the upstream hears of it; API keys are never sent to
// the issuer; an active verdict is reused for cache_ttl.
func TestGatewayIntrospectsOpaqueTokens(t *testing.T) {
	up := startHTTPFixture(t, true)
	as := newIntrospectionServer(t)
	clock := &manualClock{t: time.Now()}
	t0 := clock.Now()
	cfg := introspectionConfig(t, up, as, IntrospectionConfig{
		Endpoint: as.srv.URL + "/introspect", ClientSecretEnv: introspectionSecretEnv, CacheTTL: Duration(4 * time.Second), // not the default (10s)
	})
	g := startGateway(t, cfg, withSecretAndClock(clock))

	const token = "opaque-carol-7d1e0c5b9a4f"
	as.answer(token, active("carol", oauthResource, "tools:basic", t0))
	cs := g.connect(token)

	t.Run("active token", func(t *testing.T) {
		before := len(up.headers())
		assert.Equal(t, "hi", mustCall(t, cs, "echo", "hi"))
		assert.EqualValues(t, 1, up.ran("echo"))
		seen := up.headers()[before:]
		require.NotEmpty(t, seen)
		assertTokenPrincipal(t, seen, "carol", "tools:basic", token)
		assert.Equal(t, 1, as.callsFor(token), "one introspection for the whole session")
		assert.Zero(t, as.badAuth.Load(), "the gateway authenticates as the configured client")

		// The policy applies to introspected tokens as to keys.
		_, err := call(t, cs, "secret", "")
		require.Error(t, err)
		assert.EqualValues(t, 0, up.ran("secret"))
	})

	t.Run("verdict cached for cache_ttl", func(t *testing.T) {
		calls := as.callsFor(token)
		clock.Advance(3 * time.Second)
		assert.Equal(t, "within", mustCall(t, cs, "echo", "within"))
		assert.Equal(t, calls, as.callsFor(token), "no introspection within cache_ttl")
		clock.Advance(2 * time.Second)
		assert.Equal(t, "past", mustCall(t, cs, "echo", "past"))
		assert.Equal(t, calls+1, as.callsFor(token), "introspected again past cache_ttl")
	})

	// What the issuer says of these is refused, before the upstream runs.
	now := clock.Now()
	refused := []struct {
		name, token string
		answer      map[string]any // nil: unknown to the issuer
	}{
		{"inactive", "opaque-revoked-1", map[string]any{"active": false}},
		{"unknown to the issuer", "opaque-never-issued-2", nil},
		{"wrong audience", "opaque-other-aud-3", active("carol", "https://other.example.com/mcp", "tools:basic", now)},
		{"no audience", "opaque-no-aud-4", func() map[string]any {
			a := active("carol", "", "tools:basic", now)
			delete(a, "aud")
			return a
		}()},
		{"expired", "opaque-expired-5", func() map[string]any {
			a := active("carol", oauthResource, "tools:basic", now)
			a["exp"] = now.Add(-2 * time.Minute).Unix() // past the 30s skew
			return a
		}()},
		{"not yet valid", "opaque-nbf-6", func() map[string]any {
			a := active("carol", oauthResource, "tools:basic", now)
			a["nbf"] = now.Add(10 * time.Minute).Unix()
			return a
		}()},
		{"another issuer", "opaque-foreign-iss-7", func() map[string]any {
			a := active("carol", oauthResource, "tools:basic", now)
			a["iss"] = "https://idp.example.com/"
			return a
		}()},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			if c.answer != nil {
				as.answer(c.token, c.answer)
			}
			before, echoes := len(up.headers()), up.ran("echo")
			status, h, body := post(t, g.url, c.token, "", callEcho)
			assert.Equal(t, http.StatusUnauthorized, status, body)
			assert.Contains(t, h.Get("WWW-Authenticate"), `resource_metadata="http://localhost/.well-known/oauth-protected-resource/mcp"`)
			assert.Equal(t, 1, as.callsFor(c.token), "the refusal is the issuer's answer")
			assert.Len(t, up.headers(), before, "no request reached the upstream")
			assert.Equal(t, echoes, up.ran("echo"))
		})
	}

	// negative_cache_ttl (default 5s): a dead token retried at once is not
	// introspected again.
	t.Run("inactive remembered", func(t *testing.T) {
		status, _, _ := post(t, g.url, "opaque-revoked-1", "", callEcho)
		assert.Equal(t, http.StatusUnauthorized, status)
		assert.Equal(t, 1, as.callsFor("opaque-revoked-1"))
	})

	// A credential shaped like an API key is a key, valid or not: the
	// issuer never sees it.
	t.Run("api keys are not introspected", func(t *testing.T) {
		total := as.total.Load()
		key := g.key("dave", "tools:basic")
		keyCS := g.connect(key)
		assert.Equal(t, "k", mustCall(t, keyCS, "echo", "k"))

		i := len(key) - 1 // a checksum character: the shape stays
		flip := byte('a')
		if key[i] == flip {
			flip = 'b'
		}
		forged := key[:i] + string(flip) + key[i+1:]
		unknown, err := apikey.Build("", "000000unknwn", "abcdefghijklmnopqrstuvwx")
		require.NoError(t, err)
		for _, bad := range []string{forged, unknown} {
			require.True(t, apikey.HasKeyShape(bad, ""), bad)
			before, echoes := len(up.headers()), up.ran("echo")
			status, h, _ := post(t, g.url, bad, "", callEcho)
			assert.Equal(t, http.StatusUnauthorized, status)
			assert.Contains(t, h.Get("WWW-Authenticate"), "resource_metadata")
			assert.Len(t, up.headers(), before)
			assert.Equal(t, echoes, up.ran("echo"))
		}
		assert.Equal(t, total, as.total.Load(), "no key reached the introspection endpoint")
		for _, k := range []string{key, forged, unknown} {
			assert.Zero(t, as.callsFor(k))
		}
	})

	t.Run("secret and tokens not logged", func(t *testing.T) {
		logs := g.log.String()
		require.NotEmpty(t, logs)
		assert.NotContains(t, logs, introspectionSecret)
		assert.NotContains(t, logs, url.QueryEscape(introspectionSecret))
		assert.NotContains(t, logs, token)
		for _, c := range refused {
			assert.NotContains(t, logs, c.token)
		}
	})
}

// The client secret comes from a variable or a file named in the TOML,
// never from the TOML itself; with client_secret_file and no endpoint the
// gateway finds the endpoint by discovery and authenticates with the
// file's secret.
func TestGatewayIntrospectionClientSecret(t *testing.T) {
	t.Run("from file, endpoint from discovery", func(t *testing.T) {
		up := startHTTPFixture(t, true)
		as := newIntrospectionServer(t)
		file := filepath.Join(t.TempDir(), "introspection-secret")
		require.NoError(t, os.WriteFile(file, []byte(introspectionSecret+"\n"), 0o600))
		g := startGateway(t, introspectionConfig(t, up, as, IntrospectionConfig{ClientSecretFile: file}))

		const token = "opaque-erin-44a0"
		as.answer(token, active("erin", oauthResource, "tools:basic", time.Now()))
		cs := g.connect(token)
		assert.Equal(t, "f", mustCall(t, cs, "echo", "f"))
		assert.EqualValues(t, 1, up.ran("echo"))
		assert.Equal(t, 1, as.callsFor(token))
		assert.Zero(t, as.badAuth.Load())
		assert.NotContains(t, g.log.String(), introspectionSecret)
	})

	t.Run("not in the TOML", func(t *testing.T) {
		_, err := ReadConfig(strings.NewReader(`
[upstream]
url = "http://127.0.0.1:3000/mcp"
[oauth]
resource = "https://mcp.example.com/mcp"
[[oauth.issuers]]
url = "https://idp.example.com/"
[oauth.issuers.introspection]
client_id = "mcp-gateway"
client_secret = "` + introspectionSecret + `"
`))
		var fe *FieldError
		require.ErrorAs(t, err, &fe)
		assert.Equal(t, "oauth.issuers.introspection.client_secret", fe.Field)
		assert.NotContains(t, err.Error(), introspectionSecret)
	})
}

// When the issuer cannot answer, an opaque token gets 503 (try again), not
// 401 (the token is bad), and the upstream does not run; the log says why
// without the secret.
func TestGatewayIntrospectionUnavailable(t *testing.T) {
	closed := func(t *testing.T) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		require.NoError(t, ln.Close())
		return "http://" + addr + "/introspect"
	}
	failing := func(status int) func(t *testing.T) string {
		return func(t *testing.T) string {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				http.Error(w, "down", status)
			}))
			t.Cleanup(srv.Close)
			return srv.URL + "/introspect"
		}
	}
	cases := []struct {
		name     string
		endpoint func(t *testing.T) string
	}{
		{"connection refused", closed},
		{"server error", failing(http.StatusInternalServerError)},
		{"client credentials refused", failing(http.StatusUnauthorized)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up := startHTTPFixture(t, true)
			as := newIntrospectionServer(t) // the issuer; its endpoint is not used
			cfg := introspectionConfig(t, up, as, IntrospectionConfig{Endpoint: c.endpoint(t), ClientSecretEnv: introspectionSecretEnv})
			g := startGateway(t, cfg, withSecretAndClock(nil))

			const token = "opaque-frank-90bc"
			as.answer(token, active("frank", oauthResource, "tools:basic", time.Now()))
			status, h, body := post(t, g.url, token, "", callEcho)
			assert.Equal(t, http.StatusServiceUnavailable, status, body)
			assert.NotContains(t, h.Get("WWW-Authenticate"), "invalid_token")
			assert.NotContains(t, body, "127.0.0.1", "no internal error text")
			assert.Empty(t, up.headers(), "no request reached the upstream")
			assert.EqualValues(t, 0, up.ran("echo"))
			assert.Zero(t, as.total.Load())

			logs := g.log.String()
			assert.Contains(t, logs, "introspection failed")
			assert.NotContains(t, logs, introspectionSecret)
			assert.NotContains(t, logs, url.QueryEscape(introspectionSecret))
			assert.NotContains(t, logs, token)
		})
	}
}

// stallingEndpoint is an introspection endpoint that never answers: each
// call is counted, then held until its caller hangs up or the test ends.
type stallingEndpoint struct {
	url     string
	calls   atomic.Int32
	entered chan struct{} // a value per call, once its body is read
	gone    chan struct{} // a value per call whose caller hung up
}

func newStallingEndpoint(t *testing.T) *stallingEndpoint {
	t.Helper()
	e := &stallingEndpoint{entered: make(chan struct{}, 16), gone: make(chan struct{}, 16)}
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.calls.Add(1)
		// The body is read first: net/http watches an HTTP/1.1 connection,
		// and so cancels r.Context() when the caller hangs up, only once the
		// request's body has been read to its end.
		_ = r.ParseForm()
		e.entered <- struct{}{}
		select {
		case <-r.Context().Done():
			e.gone <- struct{}{}
		case <-release:
		}
	}))
	// Cleanups run last first: the handlers are released before Close,
	// which waits for them.
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	e.url = srv.URL + "/introspect"
	return e
}

// An introspection endpoint that never answers is given up on after
// oauth.http_timeout: the request gets the 503 of an unreachable issuer,
// long before the default 10s, and the upstream does not run.
func TestGatewayIntrospectionTimeout(t *testing.T) {
	up := startHTTPFixture(t, true)
	as := newIntrospectionServer(t) // the issuer; its endpoint is not used
	stall := newStallingEndpoint(t)
	cfg := introspectionConfig(t, up, as, IntrospectionConfig{Endpoint: stall.url, ClientSecretEnv: introspectionSecretEnv})
	const timeout = 300 * time.Millisecond
	cfg.OAuth.HTTPTimeout = Duration(timeout)
	g := startGateway(t, cfg, withSecretAndClock(nil))

	const token = "opaque-grace-51f2"
	as.answer(token, active("grace", oauthResource, "tools:basic", time.Now()))
	start := time.Now()
	status, h, body := post(t, g.url, token, "", callEcho)
	took := time.Since(start)
	assert.Equal(t, http.StatusServiceUnavailable, status, body)
	assert.NotContains(t, h.Get("WWW-Authenticate"), "invalid_token")
	assert.NotContains(t, body, "127.0.0.1", "no internal error text")
	assert.Equal(t, int32(1), stall.calls.Load(), "the endpoint was called, once")
	assert.GreaterOrEqual(t, took, timeout, "answered only once the call timed out")
	assert.Less(t, took, 5*time.Second, "http_timeout, not the default 10s, bounded the call")
	select {
	case <-stall.gone:
	case <-time.After(5 * time.Second):
		t.Error("the gateway did not hang up on the endpoint")
	}
	assert.Empty(t, up.headers(), "no request reached the upstream")
	assert.EqualValues(t, 0, up.ran("echo"))
	assert.Zero(t, as.total.Load())

	logs := g.log.String()
	assert.Contains(t, logs, "introspection failed")
	assert.Contains(t, logs, "Client.Timeout exceeded", "the client's timeout ended the call")
	assert.NotContains(t, logs, introspectionSecret)
	assert.NotContains(t, logs, token)
}

// A client that goes away ends the introspection its request started,
// well within a long oauth.http_timeout: the call is made with the
// request's context.
//
// The request is a GET: the gateway authenticates before it reads a body,
// and over HTTP/1.1 net/http notices a client hanging up (and cancels the
// request's context) only once the request's body has been read to its
// end, at once for a request without one. A POST whose client hangs up
// during introspection is therefore not noticed: its call runs until
// http_timeout (tried: this test with a POST waits the full minute).
func TestGatewayIntrospectionEndsWithTheRequest(t *testing.T) {
	up := startHTTPFixture(t, true)
	as := newIntrospectionServer(t) // the issuer; its endpoint is not used
	stall := newStallingEndpoint(t)
	cfg := introspectionConfig(t, up, as, IntrospectionConfig{Endpoint: stall.url, ClientSecretEnv: introspectionSecretEnv})
	cfg.OAuth.HTTPTimeout = Duration(time.Minute)
	g := startGateway(t, cfg, withSecretAndClock(nil))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.url, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer opaque-heidi-0e6d")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
	done := make(chan error, 1)
	go func() {
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			res.Body.Close()
		}
		done <- err
	}()

	select {
	case <-stall.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the introspection endpoint was not called")
	}
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	select {
	case <-stall.gone:
	case <-time.After(5 * time.Second):
		t.Fatal("the introspection call outlived its request")
	}
	assert.Equal(t, int32(1), stall.calls.Load(), "the endpoint was called, once")
	assert.Empty(t, up.headers(), "no request reached the upstream")
}
