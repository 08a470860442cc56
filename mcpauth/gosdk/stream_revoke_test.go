package gosdk_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/adaptertest"
	"github.com/mcpauth/mcpauth/mcpauth/gosdk"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/store"
)

// streamProtocol is the newest protocol version with the standalone GET
// event stream (from 2026-07-28 on, SEP-2575 replaces it with
// subscriptions/listen, which the SDK client opens only for list-changed
// handlers).
const streamProtocol = "2025-11-25"

// streamServer is a stateful SDK server behind guard.Require and Bridge,
// over real HTTP, counting the GET requests its handler is serving and the
// GETs refused in front of it.
type streamServer struct {
	srv     *httptest.Server
	server  *mcp.Server
	keys    *keyadmin.Manager
	gets    atomic.Int32 // GET requests inside the SDK handler
	refused atomic.Int32 // GETs answered 401
	tools   atomic.Int32 // tools added by announce
}

func startStreamServer(t *testing.T) *streamServer {
	t.Helper()
	s := &streamServer{server: mcp.NewServer(&mcp.Implementation{Name: "streams", Version: "1"}, nil)}
	mcp.AddTool(s.server, &mcp.Tool{Name: "echo"}, func(context.Context, *mcp.CallToolRequest, empty) (*mcp.CallToolResult, empty, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "ok"}}}, empty{}, nil
	})
	ks := store.NewMemory()
	guard, err := mcpauth.New(ks, nil)
	require.NoError(t, err)
	sdk := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s.server }, nil)
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			s.gets.Add(1)
			defer s.gets.Add(-1)
		}
		sdk.ServeHTTP(w, r)
	})
	inner := guard.Require(gosdk.Bridge(counted))
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		inner.ServeHTTP(sw, r)
		if r.Method == http.MethodGet && sw.status == http.StatusUnauthorized {
			s.refused.Add(1)
		}
	}))
	t.Cleanup(func() {
		s.srv.Close()
		_ = guard.Close(context.Background())
	})
	s.keys = adaptertest.MustManager(t, ks, guard, nil)
	return s
}

// statusWriter remembers the status written; it passes Flush on (the SDK
// flushes its event stream).
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// listener is a connected SDK client that hears the server's
// notifications/tools/list_changed.
type listener struct {
	cs      *mcp.ClientSession
	changes chan struct{}
}

// connect connects an SDK client with raw, which opens its standalone GET
// stream after initialize.
func (s *streamServer) connect(t *testing.T, raw string) *listener {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l := &listener{changes: make(chan struct{}, 16)}
	client := mcp.NewClient(&mcp.Implementation{Name: "listener", Version: "1"}, &mcp.ClientOptions{
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) { l.changes <- struct{}{} },
	})
	hc := &http.Client{Transport: withHeader{"Authorization", "Bearer " + raw, http.DefaultTransport}}
	// MaxRetries 0: the SDK's default, which reconnects an ended stream.
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: s.srv.URL, HTTPClient: hc}, &mcp.ClientSessionOptions{ProtocolVersion: streamProtocol})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cs.Close() })
	l.cs = cs
	return l
}

// announce adds a tool, which makes the server send every session
// notifications/tools/list_changed: a message not tied to any request, so
// it goes out on each session's standalone GET stream.
func (s *streamServer) announce() {
	n := s.tools.Add(1)
	mcp.AddTool(s.server, &mcp.Tool{Name: fmt.Sprintf("tool_%d", n)}, func(context.Context, *mcp.CallToolRequest, empty) (*mcp.CallToolResult, empty, error) {
		return &mcp.CallToolResult{}, empty{}, nil
	})
}

// hears reports whether the client received a notification within d.
func (l *listener) hears(d time.Duration) bool {
	select {
	case <-l.changes:
		return true
	case <-time.After(d):
		return false
	}
}

// getStream opens a raw GET event stream on a session and returns the
// status.
func (s *streamServer) getStream(t *testing.T, raw, session string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.srv.URL, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+raw)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Session-Id", session)
	req.Header.Set("Mcp-Protocol-Version", streamProtocol)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return resp.StatusCode // a stream: do not read it to its end
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// The attack: a client holding a key keeps its event stream open, and the
// server's messages keep reaching it after the key is revoked or expires.
// The Guard ends the stream at the revocation (or expiry): the server's
// next message does not reach the client, the SDK's GET handler returns,
// and the stream cannot be reopened with the key (the SDK client's own
// reconnect is refused too).
func TestEndToEndEventStreamEndsWithItsKey(t *testing.T) {
	cases := []struct {
		name string
		key  keyadmin.CreateOptions
		end  func(t *testing.T, s *streamServer, id string)
	}{
		{"revoked", keyadmin.CreateOptions{}, func(t *testing.T, s *streamServer, id string) {
			require.NoError(t, s.keys.Revoke(context.Background(), id))
		}},
		{"expired", keyadmin.CreateOptions{ExpiresIn: 2 * time.Second}, func(*testing.T, *streamServer, string) {}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startStreamServer(t)
			k, err := s.keys.Create(context.Background(), "alice", tc.key)
			require.NoError(t, err)
			l := s.connect(t, k.Raw)
			require.Eventually(t, func() bool { return s.gets.Load() == 1 }, 10*time.Second, 5*time.Millisecond, "the client opened its GET stream")
			s.announce()
			require.True(t, l.hears(10*time.Second), "the stream delivers server messages")

			tc.end(t, s, k.Key.ID)
			require.Eventually(t, func() bool { return s.gets.Load() == 0 }, 10*time.Second, 5*time.Millisecond, "the SDK's GET handler outlived the key")
			s.announce()
			assert.False(t, l.hears(time.Second), "a server message reached the client after its key ended")

			assert.Equal(t, http.StatusUnauthorized, s.getStream(t, k.Raw, l.cs.ID()), "reopening the stream")
			assert.Eventually(t, func() bool { return s.refused.Load() >= 2 }, 15*time.Second, 10*time.Millisecond,
				"the SDK client's own reconnect is refused too")
			assert.Zero(t, s.gets.Load(), "no GET reached the SDK handler again")
			_, err = l.cs.ListTools(context.Background(), nil)
			assert.Error(t, err, "and its POSTs are refused")
		})
	}
}

// Revoking one key ends only its streams: another key's client, of another
// user, keeps its stream and its requests.
func TestEndToEndEventStreamOfAnotherKeyStays(t *testing.T) {
	t.Parallel()
	s := startStreamServer(t)
	a, err := s.keys.Create(context.Background(), "alice", keyadmin.CreateOptions{})
	require.NoError(t, err)
	b, err := s.keys.Create(context.Background(), "bob", keyadmin.CreateOptions{})
	require.NoError(t, err)
	la := s.connect(t, a.Raw)
	lb := s.connect(t, b.Raw)
	require.Eventually(t, func() bool { return s.gets.Load() == 2 }, 10*time.Second, 5*time.Millisecond, "both clients opened their GET streams")

	require.NoError(t, s.keys.Revoke(context.Background(), b.Key.ID))
	require.Eventually(t, func() bool { return s.gets.Load() == 1 }, 10*time.Second, 5*time.Millisecond, "the revoked key's stream ended")
	s.announce()
	assert.True(t, la.hears(10*time.Second), "the other key's stream was ended: collateral")
	assert.False(t, lb.hears(time.Second), "the revoked key's client heard the server")
	assert.Equal(t, int32(1), s.gets.Load())
	res, err := la.cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{}})
	require.NoError(t, err, "the other key's POSTs work")
	assert.False(t, res.IsError)
}
