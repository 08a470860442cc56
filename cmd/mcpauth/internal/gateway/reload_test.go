package gateway

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/audit"
)

// A reload swaps policy and limits for new requests, while a call in
// flight and the session's streams carry on; a bad reload changes nothing.
func TestReload(t *testing.T) {
	up := startHTTPFixture(t, false)
	cfg := httpConfig(up.url)
	g := startGateway(t, cfg)
	cfg.Policy.File = g.srv.cfg.Policy.File
	cs := g.connect(g.key("alice", "tools:basic"))

	_, err := call(t, cs, "secret", "")
	require.Error(t, err, "the first policy refuses secret")

	var wg sync.WaitGroup
	var slow string
	var slowErr error
	wg.Add(1)
	go func() { defer wg.Done(); slow, slowErr = call(t, cs, "sleep", "300ms") }()
	require.Eventually(t, func() bool { return up.ran("sleep") == 1 }, 10*time.Second, time.Millisecond)

	open := filepath.Join(t.TempDir(), "open.json")
	require.NoError(t, os.WriteFile(open, []byte(`{"tools": [{"match": "*", "scopes": ["tools:basic"]}]}`), 0o600))
	next := cfg
	next.Policy.File = open
	ignored, err := g.srv.Reload(&next)
	require.NoError(t, err)
	assert.Empty(t, ignored)

	assert.Equal(t, "the secret", mustCall(t, cs, "secret", ""), "the new policy applies on the same session")
	wg.Wait()
	require.NoError(t, slowErr, "the call in flight during the reload failed")
	assert.Equal(t, "slept", slow)

	bad := filepath.Join(t.TempDir(), "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"tools": [{"match": "*", "scopez": []}]}`), 0o600))
	for name, c := range map[string]func(*Config){
		"bad policy":    func(c *Config) { c.Policy.File = bad },
		"missing file":  func(c *Config) { c.Policy.File = filepath.Join(t.TempDir(), "none.json") },
		"bad limit":     func(c *Config) { c.RateLimit.Default = LimitConfig{Rate: -1, Per: Duration(time.Minute)} },
		"bad rate mode": func(c *Config) { c.RateLimit.By = "team" },
	} {
		t.Run(name, func(t *testing.T) {
			n := next
			c(&n)
			_, err := g.srv.Reload(&n)
			var fe *FieldError
			require.ErrorAs(t, err, &fe)
			assert.Contains(t, []string{"policy.file", "rate_limit.default.rate", "rate_limit.by"}, fe.Field)
			assert.Equal(t, "the secret", mustCall(t, cs, "secret", ""), "a bad reload changed the policy")
		})
	}

	t.Run("limits", func(t *testing.T) {
		n := next
		n.RateLimit.Default = LimitConfig{Rate: 1, Per: Duration(time.Hour)}
		_, err := g.srv.Reload(&n)
		require.NoError(t, err)
		fresh := g.connect(g.key("dave", "tools:basic")) // alice's spent units carry over
		mustCall(t, fresh, "echo", "one")
		_, err = call(t, fresh, "echo", "two")
		require.Error(t, err, "the reloaded limit does not apply")
	})

	t.Run("restart-only fields are reported, not applied", func(t *testing.T) {
		n := next
		n.Listen = "127.0.0.1:1"
		n.Upstream.URL = "http://127.0.0.1:1/mcp"
		ignored, err := g.srv.Reload(&n)
		require.NoError(t, err)
		assert.Equal(t, []string{"listen", "upstream"}, ignored)
		assert.Equal(t, up.url, g.srv.cfg.Upstream.URL)
	})
}

// Reloads racing with requests: every request is served by one whole
// generation, and retired Guards are closed.
func TestReloadUnderLoad(t *testing.T) {
	up := startHTTPFixture(t, true)
	cfg := httpConfig(up.url)
	cfg.RateLimit.Disabled = true
	g := startGateway(t, cfg)
	cfg.Policy.File = g.srv.cfg.Policy.File
	cs := g.connect(g.key("alice", "tools:basic"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if _, err := call(t, cs, "echo", "x"); err != nil && ctx.Err() == nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := 0; i < 20 && ctx.Err() == nil; i++ {
		_, err := g.srv.Reload(&cfg)
		require.NoError(t, err)
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	wg.Wait()
}

// Serve drains on shutdown: the call in flight finishes, then the
// session's GET stream is ended (Serve does not wait out the timeout for
// it), and audit events are flushed before Serve returns.
func TestServeGracefulShutdown(t *testing.T) {
	up := startHTTPFixture(t, false)
	cfg := httpConfig(up.url)
	cfg.ShutdownTimeout = Duration(20 * time.Second)
	cfg.Listen = "127.0.0.1:0"
	g := startGateway(t, cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- g.srv.Serve(ctx, ln) }()
	g.url = "http://" + ln.Addr().String() + "/mcp"

	cs := g.connect(g.key("alice", "tools:basic")) // opens a GET stream too
	require.Eventually(t, up.sawGET, 10*time.Second, time.Millisecond)
	done := make(chan error, 1)
	go func() {
		out, err := call(t, cs, "sleep", "300ms")
		if err == nil && out != "slept" {
			err = errors.New("unexpected " + out)
		}
		done <- err
	}()
	require.Eventually(t, func() bool { return up.ran("sleep") == 1 }, 10*time.Second, time.Millisecond, "the call did not reach the upstream")
	begin := time.Now()
	stop()
	require.NoError(t, <-done, "the call in flight was dropped by the shutdown")
	select {
	case err := <-served:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Serve waited for the GET stream")
	}
	assert.Less(t, time.Since(begin), 10*time.Second)

	var sleeps int
	var seen []string
	for _, e := range g.events.all() {
		seen = append(seen, e.Method+" "+e.Tool+" "+string(e.Outcome)+" "+e.Reason)
		if e.Tool == "sleep" && e.Outcome == audit.OutcomeAllowed {
			sleeps++
		}
	}
	assert.Equal(t, 1, sleeps, "the drained call's audit event was not flushed: %q\n%s", seen, g.log.String())

	res, err := http.Get("http://" + ln.Addr().String() + "/health")
	if err == nil {
		res.Body.Close()
		t.Fatal("still serving after shutdown")
	}
}

func TestReadyAndHealth(t *testing.T) {
	up := startHTTPFixture(t, true)
	g := startGateway(t, httpConfig(up.url))
	for _, path := range []string{"/health", "/ready"} {
		res, err := http.Get(g.base + path)
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, http.StatusOK, res.StatusCode, path)
	}
	g.srv.draining.Store(true)
	res, err := http.Get(g.base + "/ready")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
}

// On a loopback address, a request naming another host (DNS rebinding) or
// coming from another origin is refused before authentication.
func TestHostCheck(t *testing.T) {
	up := startHTTPFixture(t, true)
	g := startGateway(t, httpConfig(up.url))
	key := g.key("alice", "tools:basic")
	cases := []struct {
		name, host, origin string
		want               int
	}{
		{"localhost", "localhost:8080", "", http.StatusOK},
		{"127.0.0.1", "127.0.0.1:8080", "http://127.0.0.1:8080", http.StatusOK},
		{"ipv6 loopback", "[::1]:8080", "", http.StatusOK},
		{"rebound name", "evil.example:8080", "", http.StatusForbidden},
		{"foreign origin", "localhost:8080", "https://evil.example", http.StatusForbidden},
		{"lookalike", "localhost.evil.example", "", http.StatusForbidden},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, g.url, nil)
			req.Host = c.host
			req.Body = http.NoBody
			req.Header.Set("Authorization", "Bearer "+key)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			if c.origin != "" {
				req.Header.Set("Origin", c.origin)
			}
			req.Body = nopBody(`{"jsonrpc":"2.0","id":1,"method":"ping"}`)
			res, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			res.Body.Close()
			assert.Equal(t, c.want, res.StatusCode)
		})
	}
	hc := newHostCheck("0.0.0.0:8080", nil)
	assert.True(t, hc.any, "a public listener accepts every host unless allowed_hosts says otherwise")
}
