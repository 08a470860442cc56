package gateway

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/audit"
)

func httpConfig(url string) Config {
	return Config{Upstream: UpstreamConfig{URL: url, PrincipalHeaders: PrincipalHeaders{UserID: "X-MCP-User", KeyID: "X-MCP-Key-Id", Scopes: "X-MCP-Scopes"}}}
}

func TestHTTPUpstreamCallsThrough(t *testing.T) {
	for _, stateless := range []bool{true, false} {
		t.Run(fmt.Sprintf("stateless=%v", stateless), func(t *testing.T) {
			up := startHTTPFixture(t, stateless)
			g := startGateway(t, httpConfig(up.url))
			cs := g.connect(g.key("alice", "tools:basic"))
			assert.Equal(t, "hello", mustCall(t, cs, "echo", "hello"))
			assert.EqualValues(t, 1, up.ran("echo"))
		})
	}
}

// The principal reaches the upstream only in the operator's headers, with
// the values the Guard found; what the client sent under those names, and
// its credential, never do.
func TestHTTPUpstreamPrincipalHeaders(t *testing.T) {
	up := startHTTPFixture(t, true)
	g := startGateway(t, httpConfig(up.url))
	key := g.key("alice", "tools:basic")
	forged := []string{"X-MCP-User: admin", "X-Mcp-Key-Id: forged", "X-MCP-Scopes: tools:secret admin", "X-API-Key: " + key}
	cs := g.connect(key, forged...)
	mustCall(t, cs, "echo", "x")

	seen := up.headers()
	require.NotEmpty(t, seen)
	for _, h := range seen {
		assert.Equal(t, []string{"alice"}, h.Values("X-MCP-User"))
		assert.Len(t, h.Values("X-MCP-Key-Id"), 1)
		assert.NotEqual(t, "forged", h.Get("X-MCP-Key-Id"))
		assert.True(t, strings.HasPrefix(key, "mcp_"+h.Get("X-MCP-Key-Id")), "key ID of the key used")
		assert.Equal(t, []string{"tools:basic"}, h.Values("X-MCP-Scopes"))
		assert.Empty(t, h.Get("Authorization"), "the gateway's credential is not forwarded")
		assert.Empty(t, h.Get("X-Api-Key"))
		assert.NotContains(t, fmt.Sprint(h), key)
	}
}

// Refusals through the gateway are those of Require, and the upstream never
// hears of a refused call.
func TestHTTPUpstreamRefusals(t *testing.T) {
	up := startHTTPFixture(t, true)
	cfg := httpConfig(up.url)
	cfg.RateLimit.Default = LimitConfig{Rate: 3, Per: Duration(time.Hour)}
	g := startGateway(t, cfg)

	t.Run("no key", func(t *testing.T) {
		status, h, _ := post(t, g.url, "", "", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}`)
		assert.Equal(t, http.StatusUnauthorized, status)
		assert.Contains(t, h.Get("WWW-Authenticate"), "Bearer")
	})
	t.Run("bad key", func(t *testing.T) {
		status, _, _ := post(t, g.url, "mcp_000000000000aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}`)
		assert.Equal(t, http.StatusUnauthorized, status)
	})
	t.Run("insufficient scope", func(t *testing.T) {
		cs := g.connect(g.key("bob", "tools:basic"))
		_, err := call(t, cs, "secret", "")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "tools:secret")
	})
	t.Run("rate limited", func(t *testing.T) {
		cs := g.connect(g.key("carol", "tools:basic", "tools:secret"))
		for i := range 3 {
			assert.Equal(t, "ok", mustCall(t, cs, "echo", "ok"), "call %d", i)
		}
		_, err := call(t, cs, "echo", "over")
		require.Error(t, err)
	})
	assert.EqualValues(t, 0, up.ran("secret"), "a refused tool never ran")
	assert.EqualValues(t, 3, up.ran("echo"), "the call over the limit never ran")
	for _, h := range up.headers() {
		assert.NotEqual(t, "", h.Get("X-MCP-User"), "no unauthenticated request reached the upstream")
	}

	// The refusals are audited as through Require: the events reach the
	// sink once the writer flushes.
	require.NoError(t, g.srv.audit.Flush(context.Background()))
	reasons := map[string]int{}
	for _, e := range g.events.all() {
		if e.Outcome != audit.OutcomeAllowed {
			reasons[e.Reason]++
		}
	}
	assert.Positive(t, reasons["insufficient_scope"], "%v", reasons)
	assert.Positive(t, reasons["rate_limited"], "%v", reasons)
	assert.Positive(t, reasons["no_credential"]+reasons["missing_credential"], "%v", reasons)
}

// A session ID is bound to the user who opened it: another user's key with
// it gets 404 and the upstream sees nothing.
func TestHTTPUpstreamSessionBoundToUser(t *testing.T) {
	up := startHTTPFixture(t, false)
	g := startGateway(t, httpConfig(up.url))
	alice, mallory := g.key("alice", "tools:basic"), g.key("mallory", "tools:basic")

	status, h, _ := post(t, g.url, alice, "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	require.Equal(t, http.StatusOK, status)
	sealed := h.Get("Mcp-Session-Id")
	require.NotEmpty(t, sealed)
	upstreamID, _, _ := strings.Cut(sealed, ".")
	before := len(up.headers())

	attacks := []struct{ name, key, sid string }{
		{"another user's key", mallory, sealed},
		{"the bare upstream ID", alice, upstreamID},
		{"a forged seal", alice, upstreamID + ".AAAAAAAAAAAAAAAAAAAAAAAA"},
		{"the bare upstream ID, another user", mallory, upstreamID},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			status, _, _ := post(t, g.url, a.key, a.sid, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}`)
			assert.Equal(t, http.StatusNotFound, status)
		})
	}
	assert.Equal(t, before, len(up.headers()), "no refused request reached the upstream")
	assert.EqualValues(t, 0, up.ran("echo"))

	// The owner's requests pass, with the upstream's own ID.
	status, _, _ = post(t, g.url, alice, sealed, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	assert.Equal(t, http.StatusAccepted, status)
	last := up.headers()[len(up.headers())-1]
	assert.Equal(t, upstreamID, last.Get("Mcp-Session-Id"))
}

// An event stream is passed on event by event: the client reads the first
// event while the upstream still holds the second.
func TestHTTPUpstreamStreamsUnbuffered(t *testing.T) {
	release := make(chan struct{})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":1,\"progress\":1}}\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		fmt.Fprint(w, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n")
	}))
	defer upstream.Close()
	g := startGateway(t, httpConfig(upstream.URL))
	key := g.key("alice", "tools:basic")

	req, _ := http.NewRequest(http.MethodPost, g.url, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","_meta":{"progressToken":1}}}`))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	got := make(chan string, 1)
	go func() {
		for {
			line, err := br.ReadString('\n')
			if err != nil || strings.HasPrefix(line, "data: ") {
				got <- line
				return
			}
		}
	}()
	select {
	case line := <-got:
		assert.Contains(t, line, "notifications/progress")
	case <-time.After(10 * time.Second):
		t.Fatal("the first event did not arrive while the upstream held the second: the gateway buffers")
	}
	close(release)
}

func TestHTTPUpstreamDown(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	url := dead.URL
	dead.Close()
	g := startGateway(t, httpConfig(url))
	status, _, body := post(t, g.url, g.key("alice", "tools:basic"), "", `{"jsonrpc":"2.0","id":1,"method":"ping"}`)
	assert.Equal(t, http.StatusBadGateway, status)
	assert.Contains(t, body, "upstream MCP server is unavailable")
	assert.NotContains(t, body, "127.0.0.1", "the upstream's address is not shown to clients")

	res, err := http.Get(g.base + "/ready")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	res, err = http.Get(g.base + "/health")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode, "liveness does not depend on the upstream")
}

func TestLogNamesKeysByIDOnly(t *testing.T) {
	up := startHTTPFixture(t, true)
	g := startGateway(t, httpConfig(up.url))
	key := g.key("alice", "tools:basic")
	cs := g.connect(key)
	mustCall(t, cs, "echo", "x")
	_, _, _ = post(t, g.url, key+"x", "", `{"jsonrpc":"2.0","id":1,"method":"ping"}`)
	log := g.log.String()
	id := strings.TrimPrefix(key, "mcp_")[:12]
	assert.Contains(t, log, `"key_id":"`+id+`"`)
	assert.NotContains(t, log, key)
	assert.NotContains(t, log, strings.TrimPrefix(key, "mcp_"))
}
