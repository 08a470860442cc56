package mcpgo_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/mcpgo"
)

// send sends method to the fixture's server with key on session and returns
// the response with its body read (a GET stream: its headers only).
func (f *fixture) send(t *testing.T, method, key, session, body string) (*http.Response, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, f.srv.URL, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Mcp-Protocol-Version", mcp.ProtocolVersion20251125)
	req.Header.Set("Mcp-Session-Id", session)
	if method == http.MethodGet {
		req.Header.Set("Accept", "text/event-stream")
	} else {
		req.Header.Set("Accept", "application/json, text/event-stream")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") == "text/event-stream" && method == http.MethodGet {
		return resp, "" // an open stream: reading it would block
	}
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

// sessionAttacks are what Bob's key tries on Alice's session. exposed
// checks that the attack worked (on a server without Sessions).
var sessionAttacks = []struct {
	name, method, body string
	exposed            func(t *testing.T, f *fixture, resp *http.Response, alice func() error)
}{
	{
		name: "POST a tool call on her session", method: http.MethodPost,
		body: `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"delete_document","arguments":{}}}`,
		exposed: func(t *testing.T, f *fixture, resp *http.Response, _ func() error) {
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, int32(1), f.docs.calls["delete_document"].Load(), "Bob's call ran on Alice's session")
		},
	},
	{
		name: "GET her session's stream", method: http.MethodGet,
		exposed: func(t *testing.T, _ *fixture, resp *http.Response, _ func() error) {
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"), "Bob holds Alice's notification stream")
		},
	},
	{
		name: "DELETE her session", method: http.MethodDelete,
		exposed: func(t *testing.T, _ *fixture, resp *http.Response, alice func() error) {
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Error(t, alice(), "Bob ended Alice's session")
		},
	},
}

// TestNewHandlerBindsSessionsToUsers: on the default wiring, Bob's key
// cannot use, stream or delete Alice's session; his call does not run and
// her session keeps working.
func TestNewHandlerBindsSessionsToUsers(t *testing.T) {
	for _, a := range sessionAttacks {
		t.Run(a.name, func(t *testing.T) {
			t.Parallel()
			f := start(t, true, false, true)
			alice, err := f.connect(t, f.key(t, "alice", "documents:read"), mcp.ProtocolVersion20251125, "")
			require.NoError(t, err)
			session := alice.GetSessionId()
			require.NotEmpty(t, session)

			resp, body := f.send(t, a.method, f.key(t, "bob", "admin"), session, a.body)
			assert.Equal(t, http.StatusForbidden, resp.StatusCode)
			assert.Contains(t, body, "session_user_mismatch")
			assert.Zero(t, f.docs.calls["delete_document"].Load())

			res, err := call(alice, "search_documents")
			require.NoError(t, err, "Alice's session still works")
			assert.Equal(t, "search_documents for alice", res.Content[0].(mcp.TextContent).Text)
		})
	}
}

// TestManualWiringWithoutSessionsIsExposed documents the exposure of the
// hand-wired path (HTTPContextFunc without Sessions) that NewHandler
// closes: every attack of sessionAttacks succeeds there. If this fails,
// mcp-go changed and docs/adapters.md needs updating.
func TestManualWiringWithoutSessionsIsExposed(t *testing.T) {
	for _, a := range sessionAttacks {
		t.Run(a.name, func(t *testing.T) {
			t.Parallel()
			f := start(t, true, false, false)
			alice, err := f.connect(t, f.key(t, "alice", "documents:read"), mcp.ProtocolVersion20251125, "")
			require.NoError(t, err)
			session := alice.GetSessionId()
			require.NotEmpty(t, session)

			resp, _ := f.send(t, a.method, f.key(t, "bob", "admin"), session, a.body)
			a.exposed(t, f, resp, func() error { _, err := call(alice, "search_documents"); return err })
		})
	}
}

// TestNewHandlerRefusalsUseTheErrorHandler: the session refusal is answered
// by the Guard's Options.ErrorHandler, with mcpauth.ErrSessionUserMismatch.
func TestNewHandlerRefusalsUseTheErrorHandler(t *testing.T) {
	t.Parallel()
	errs := make(chan error, 1)
	opts := &mcpauth.Options{ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
		errs <- err
		w.WriteHeader(http.StatusTeapot)
	}}
	f := serve(t, opts, newDocServer(testPolicy(t)), func(s *server.MCPServer) http.Handler {
		h, err := mcpgo.NewHandler(s, &mcpgo.HandlerOptions{Sessions: &mcpgo.SessionOptions{Manager: &server.InsecureStatefulSessionIdManager{}}})
		require.NoError(t, err)
		return h
	})
	alice, err := f.connect(t, f.key(t, "alice", "documents:read"), mcp.ProtocolVersion20251125, "")
	require.NoError(t, err)

	resp, _ := f.send(t, http.MethodPost, f.key(t, "bob", "documents:read"), alice.GetSessionId(), `{"jsonrpc":"2.0","id":1,"method":"ping"}`)
	assert.Equal(t, http.StatusTeapot, resp.StatusCode)
	require.Len(t, errs, 1)
	assert.ErrorIs(t, <-errs, mcpauth.ErrSessionUserMismatch)
}

// TestNewHandlerOptions covers construction and the options.
func TestNewHandlerOptions(t *testing.T) {
	t.Parallel()
	t.Run("a nil server is refused", func(t *testing.T) {
		_, err := mcpgo.NewHandler(nil, nil)
		assert.Error(t, err)
	})
	t.Run("a short session key is refused", func(t *testing.T) {
		_, err := mcpgo.NewHandler(server.NewMCPServer("x", "1"), &mcpgo.HandlerOptions{Sessions: &mcpgo.SessionOptions{Key: []byte("short")}})
		assert.ErrorContains(t, err, "SessionOptions.Key")
	})
	t.Run("without a principal every request is refused", func(t *testing.T) {
		h, err := mcpgo.NewHandler(server.NewMCPServer("x", "1"), nil)
		require.NoError(t, err)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}`)))
		assert.Equal(t, http.StatusUnauthorized, rec.Code)
	})
	t.Run("ContextFunc runs after HTTPContextFunc", func(t *testing.T) {
		type tenantKey struct{}
		docs := newDocServer(nil)
		docs.server.AddTool(mcp.NewTool("whoami"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			p, ok := mcpgo.PrincipalFrom(ctx)
			tenant, _ := ctx.Value(tenantKey{}).(string)
			if !ok {
				return nil, errors.New("no principal")
			}
			return mcp.NewToolResultText(p.UserID + "@" + tenant), nil
		})
		f := serve(t, &mcpauth.Options{}, docs, func(s *server.MCPServer) http.Handler {
			h, err := mcpgo.NewHandler(s, &mcpgo.HandlerOptions{ContextFunc: func(ctx context.Context, r *http.Request) context.Context {
				_, ok := mcpgo.PrincipalFrom(ctx)
				require.True(t, ok, "the principal is in the context ContextFunc gets")
				return context.WithValue(ctx, tenantKey{}, "acme")
			}})
			require.NoError(t, err)
			return h
		})
		c, err := f.connect(t, f.key(t, "alice", "documents:read"), mcp.ProtocolVersion20251125, "")
		require.NoError(t, err)
		res, err := call(c, "whoami")
		require.NoError(t, err)
		assert.Equal(t, "alice@acme", res.Content[0].(mcp.TextContent).Text)
	})
}
