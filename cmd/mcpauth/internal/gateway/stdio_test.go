package gateway

import (
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func stdioGateway(t *testing.T, mutate func(*StdioConfig)) (*gw, StdioConfig) {
	sc := stdioConfig(t)
	if mutate != nil {
		mutate(&sc)
	}
	g := startGateway(t, Config{Stdio: sc})
	return g, g.srv.up.(*stdioUpstream).cfg
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// Two users never share a process and never see each other's state; the
// process does not see the gateway's environment.
func TestStdioUsersIsolated(t *testing.T) {
	g, _ := stdioGateway(t, nil)
	alice := g.connect(g.key("alice", "tools:basic"))
	bob := g.connect(g.key("bob", "tools:basic"))

	pa, err := strconv.Atoi(mustCall(t, alice, "pid", ""))
	require.NoError(t, err)
	pb, err := strconv.Atoi(mustCall(t, bob, "pid", ""))
	require.NoError(t, err)
	assert.NotEqual(t, pa, pb, "two users on one process")
	assert.True(t, alive(pa) && alive(pb))

	assert.Equal(t, "ok", mustCall(t, alice, "remember", "alice's secret"))
	assert.Equal(t, "", mustCall(t, bob, "recall", ""), "bob sees alice's state")
	assert.Equal(t, "alice's secret", mustCall(t, alice, "recall", ""))
	assert.Equal(t, strconv.Itoa(pa), mustCall(t, alice, "pid", ""), "a session keeps its process")

	assert.Equal(t, "", mustCall(t, alice, "getenv", "MCPAUTH_PEPPER"), "the pepper reached the stdio server")
	assert.NotEqual(t, "", mustCall(t, alice, "getenv", "PATH"), "inherit_env passes PATH")
}

// Another user's key with a session's ID reaches no process.
func TestStdioSessionBoundToUser(t *testing.T) {
	g, sc := stdioGateway(t, nil)
	alice, mallory := g.key("alice", "tools:basic"), g.key("mallory", "tools:basic")
	status, h, _ := post(t, g.url, alice, "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	require.Equal(t, http.StatusOK, status)
	sid := h.Get("Mcp-Session-Id")
	require.NotEmpty(t, sid)
	status, _, _ = post(t, g.url, alice, sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	require.Equal(t, http.StatusAccepted, status)

	for _, method := range []string{http.MethodPost, http.MethodGet, http.MethodDelete} {
		t.Run(method, func(t *testing.T) {
			req, _ := http.NewRequest(method, g.url, strings.NewReader(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}`))
			req.Header.Set("Authorization", "Bearer "+mallory)
			req.Header.Set("Mcp-Session-Id", sid)
			req.Header.Set("Accept", "application/json, text/event-stream")
			res, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			res.Body.Close()
			assert.Equal(t, http.StatusNotFound, res.StatusCode)
		})
	}
	assert.Empty(t, runLog(t, sc), "a tool ran for another user's request")
	// Alice's session survived mallory's DELETE.
	status, _, body := post(t, g.url, alice, sid, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"still here"}}}`)
	assert.Equal(t, http.StatusOK, status)
	assert.Contains(t, body, "still here")
}

// Policy refusals through a stdio upstream: the tool did not run.
func TestStdioPolicyRefusal(t *testing.T) {
	g, sc := stdioGateway(t, nil)
	cs := g.connect(g.key("alice", "tools:basic"))
	_, err := call(t, cs, "secret", "")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "tools:secret")
	mustCall(t, cs, "echo", "allowed")
	assert.NotContains(t, runLog(t, sc), "secret")
	assert.Contains(t, runLog(t, sc), "echo")
}

// A crash fails the request in flight with an error naming the exit; the
// next request of the session gets a new process, initialized again by the
// gateway, without the client noticing.
func TestStdioCrashRestart(t *testing.T) {
	g, _ := stdioGateway(t, nil)
	cs := g.connect(g.key("alice", "tools:basic"))
	before, _ := strconv.Atoi(mustCall(t, cs, "pid", ""))

	_, err := call(t, cs, "crash", "")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "exited (exit status 3)")
	assert.Contains(t, err.Error(), "started again on this session's next request")

	after, err := strconv.Atoi(mustCall(t, cs, "pid", ""))
	require.NoError(t, err)
	assert.NotEqual(t, before, after)
	assert.Equal(t, "again", mustCall(t, cs, "echo", "again"))
	assert.Contains(t, g.log.String(), `"msg":"stdio server restarted"`)
	assert.Contains(t, g.log.String(), `"msg":"stdio server exited"`)
}

// A session idle for stdio.idle_timeout ends and its process stops; one
// with a request in flight does not.
func TestStdioIdleTimeout(t *testing.T) {
	g, _ := stdioGateway(t, func(c *StdioConfig) { c.IdleTimeout = Duration(time.Hour) })
	u := g.srv.up.(*stdioUpstream)
	cs := g.connect(g.key("alice", "tools:basic"))
	pid, _ := strconv.Atoi(mustCall(t, cs, "pid", ""))
	later := func(d time.Duration) time.Time { return time.Now().Add(d) }

	// A call in flight keeps its session, however long it has run.
	done := make(chan error, 1)
	go func() { _, err := call(t, cs, "sleep", "2s"); done <- err }()
	require.Eventually(t, func() bool { return inflight(u) == 1 }, 10*time.Second, time.Millisecond)
	assert.Equal(t, 0, u.sweep(later(61*time.Minute)))
	require.NoError(t, <-done)

	// The client has its answer a moment before the gateway's handler
	// returns; sweep once the session is quiet.
	require.Eventually(t, func() bool { return inflight(u) == 0 }, 10*time.Second, time.Millisecond)
	assert.Equal(t, 0, u.sweep(later(59*time.Minute)))
	assert.True(t, alive(pid))
	assert.Equal(t, 1, u.sweep(later(61*time.Minute)))
	assert.Eventually(t, func() bool { return !alive(pid) }, 15*time.Second, 10*time.Millisecond)
	_, err := call(t, cs, "pid", "")
	assert.Error(t, err, "the ended session is not found")
}

// inflight counts the requests in flight across u's sessions.
func inflight(u *stdioUpstream) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, s := range u.sessions {
		s.mu.Lock()
		n += s.inflight
		s.mu.Unlock()
	}
	return n
}

// stdio.max_processes caps processes across users; a user at
// max_processes_per_user gets the slot of their own least recently used
// idle session, never another user's.
func TestStdioProcessCaps(t *testing.T) {
	g, _ := stdioGateway(t, func(c *StdioConfig) { c.MaxProcesses, c.MaxProcessesPerUser = 2, 1 })
	aliceKey := g.key("alice", "tools:basic")
	a1 := g.connect(aliceKey)
	p1, _ := strconv.Atoi(mustCall(t, a1, "pid", ""))
	bob := g.connect(g.key("bob", "tools:basic"))
	pb, _ := strconv.Atoi(mustCall(t, bob, "pid", ""))

	// Only a quiet session gives up its slot; wait for the gateway's
	// handlers to return after the answers.
	u := g.srv.up.(*stdioUpstream)
	require.Eventually(t, func() bool { return inflight(u) == 0 }, 10*time.Second, time.Millisecond)
	a2 := g.connect(aliceKey) // alice's second session takes the slot of her first
	p2, _ := strconv.Atoi(mustCall(t, a2, "pid", ""))
	assert.NotEqual(t, p1, p2)
	assert.Eventually(t, func() bool { return !alive(p1) }, 15*time.Second, 10*time.Millisecond)
	assert.True(t, alive(pb), "another user's process was stopped")
	assert.Equal(t, strconv.Itoa(pb), mustCall(t, bob, "pid", ""))

	status, h, body := post(t, g.url, g.key("carol", "tools:basic"), "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	assert.Equal(t, http.StatusServiceUnavailable, status, body)
	assert.Equal(t, "30", h.Get("Retry-After"))
	assert.Contains(t, body, "too many stdio processes")
}

// A DELETE ends the session and stops its process; shutdown stops the rest.
func TestStdioDeleteAndShutdown(t *testing.T) {
	g, _ := stdioGateway(t, nil)
	key := g.key("alice", "tools:basic")
	cs := g.connect(key)
	pid, _ := strconv.Atoi(mustCall(t, cs, "pid", ""))
	require.NoError(t, cs.Close()) // the go-sdk client sends DELETE
	assert.Eventually(t, func() bool { return !alive(pid) }, 15*time.Second, 10*time.Millisecond)

	cs2 := g.connect(key)
	pid2, _ := strconv.Atoi(mustCall(t, cs2, "pid", ""))
	require.NoError(t, g.srv.up.Close(t.Context()))
	assert.False(t, alive(pid2), "Close returned with the process still running")
}

func TestStdioRefusesUnsessionedRequests(t *testing.T) {
	g, sc := stdioGateway(t, nil)
	key := g.key("alice", "tools:basic")
	status, _, _ := post(t, g.url, key, "", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}`)
	assert.Equal(t, http.StatusBadRequest, status)
	status, _, _ = post(t, g.url, key, "0123456789abcdef0123456789abcdef", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}`)
	assert.Equal(t, http.StatusNotFound, status)
	status, _, _ = post(t, g.url, key, "", `not json`)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Empty(t, runLog(t, sc))
}
