// Package adaptertest is the conformance suite every MCP SDK adapter of
// mcpauth runs (as store/storetest is for key stores): a real server of the
// SDK, wired as the adapter documents, behind guard.Require, driven over
// real HTTP with raw JSON-RPC, so that every adapter is held to the same
// behaviour.
//
// The suite checks, with the HTTP-layer policy off (the Guard only
// authenticates, so the adapter's own MCP-layer enforcement is what is
// tested): tools/list shows a key only the tools its scopes allow; an
// allowed tools/call runs, with the caller's user; a refused one is a
// JSON-RPC error (Server.RefusalCode) naming the missing scope and does
// not run; another
// user's key cannot use a session (403), and that call does not run.
package adaptertest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/scope"
	"github.com/mcpauth/mcpauth/store"
)

// Tools are the tools the adapter's server must register. Each must count
// its calls (Server.Calls) and answer with a text content that contains
// the caller's Principal.UserID.
var Tools = []string{"search_documents", "delete_document"}

// Policy is the policy the adapter's server must apply at the MCP layer:
// search_documents needs documents:read, delete_document needs
// documents:delete.
func Policy(t testing.TB) *scope.Policy {
	t.Helper()
	p, err := scope.NewPolicy(scope.PolicyConfig{Tools: []scope.Rule{
		{Match: "search_documents", Scopes: []string{"documents:read"}},
		{Match: "delete_document", Scopes: []string{"documents:delete"}},
	}})
	require.NoError(t, err)
	return p
}

// Server is an SDK server behind an adapter.
type Server struct {
	// Handler goes inside guard.Require: the adapter's documented wiring
	// of a stateful streamable HTTP server with Tools and Policy.
	Handler http.Handler
	// Calls reports how often a tool's handler ran.
	Calls func(tool string) int
	// RefusalCode is the JSON-RPC code of the adapter's policy refusals.
	// Default mcpauth.RPCCodeForbidden; an SDK that fixes the code of
	// refusals made in its hooks (mcp-go: -32600) gives that one.
	RefusalCode int64
}

// Run runs the suite. newServer is called once per subtest.
func Run(t *testing.T, newServer func(t *testing.T) Server) {
	t.Helper()
	t.Run("ListShowsOnlyAllowedTools", func(t *testing.T) { testList(t, start(t, newServer)) })
	t.Run("AllowedCallRunsAsTheCaller", func(t *testing.T) { testAllowed(t, start(t, newServer)) })
	t.Run("RefusedCallDoesNotRun", func(t *testing.T) { testRefused(t, start(t, newServer)) })
	t.Run("SessionBoundToItsUser", func(t *testing.T) { testSession(t, start(t, newServer)) })
}

type fixture struct {
	srv    *httptest.Server
	server Server
	mgr    *keyadmin.Manager
}

func start(t *testing.T, newServer func(t *testing.T) Server) *fixture {
	t.Helper()
	keys := store.NewMemory()
	guard, err := mcpauth.New(keys, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = guard.Close(context.Background()) })
	mgr, err := keyadmin.New(keys, &keyadmin.Options{OnChange: guard.Forget})
	require.NoError(t, err)
	t.Cleanup(func() { _ = mgr.Close(context.Background()) })
	s := newServer(t)
	srv := httptest.NewServer(guard.Require(s.Handler))
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, server: s, mgr: mgr}
}

func (f *fixture) key(t *testing.T, user string, scopes ...string) string {
	t.Helper()
	k, err := f.mgr.Create(context.Background(), user, keyadmin.CreateOptions{Scopes: scopes})
	require.NoError(t, err)
	return k.Raw
}

// reply is one HTTP answer, with the JSON-RPC response it carried (from a
// JSON body or the first SSE data line).
type reply struct {
	status  int
	session string
	rpc     struct {
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Code    int64  `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	raw string
}

func (f *fixture) post(t *testing.T, key, session, body string) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.srv.URL, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
	}
	resp, err := f.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	r := reply{status: resp.StatusCode, session: resp.Header.Get("Mcp-Session-Id"), raw: string(b)}
	data := b
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		data = nil
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data:"); ok {
				data = []byte(strings.TrimSpace(d))
				break
			}
		}
	}
	if len(data) > 0 {
		_ = json.Unmarshal(data, &r.rpc)
	}
	return r
}

// open initializes a session with key and returns its ID.
func (f *fixture) open(t *testing.T, key string) string {
	t.Helper()
	r := f.post(t, key, "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"adaptertest","version":"1"}}}`)
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.NotEmpty(t, r.session, "a stateful server issues a session")
	n := f.post(t, key, r.session, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	require.Less(t, n.status, 300, n.raw)
	return r.session
}

func call(tool string) string {
	return `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"` + tool + `","arguments":{}}}`
}

func testList(t *testing.T, f *fixture) {
	key := f.key(t, "alice", "documents:read")
	s := f.open(t, key)
	r := f.post(t, key, s, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
	require.Equal(t, http.StatusOK, r.status, r.raw)
	var list struct {
		Tools []struct {
			Name string `json:"name"`
		} `json:"tools"`
	}
	require.NoError(t, json.Unmarshal(r.rpc.Result, &list), r.raw)
	var names []string
	for _, tool := range list.Tools {
		names = append(names, tool.Name)
	}
	assert.Equal(t, []string{"search_documents"}, names, "a documents:read key sees only what it may call")
}

func testAllowed(t *testing.T, f *fixture) {
	key := f.key(t, "alice", "documents:read")
	s := f.open(t, key)
	r := f.post(t, key, s, call("search_documents"))
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Nil(t, r.rpc.Error, r.raw)
	assert.Contains(t, string(r.rpc.Result), "alice", "the tool ran as the key's user")
	assert.Equal(t, 1, f.server.Calls("search_documents"))
}

func testRefused(t *testing.T, f *fixture) {
	key := f.key(t, "alice", "documents:read")
	s := f.open(t, key)
	r := f.post(t, key, s, call("delete_document"))
	require.NotNil(t, r.rpc.Error, "a refused call is a JSON-RPC error: %s", r.raw)
	want := f.server.RefusalCode
	if want == 0 {
		want = mcpauth.RPCCodeForbidden
	}
	assert.Equal(t, want, r.rpc.Error.Code)
	assert.Contains(t, r.rpc.Error.Message, "documents:delete", "the reason names the scope")
	assert.Zero(t, f.server.Calls("delete_document"), "the refused tool did not run")
}

func testSession(t *testing.T, f *fixture) {
	alice := f.key(t, "alice", "documents:read")
	bob := f.key(t, "bob", "documents:read", "documents:delete")
	s := f.open(t, alice)
	r := f.post(t, bob, s, call("delete_document"))
	assert.Equal(t, http.StatusForbidden, r.status, "another user's key on a session: %s", r.raw)
	assert.Zero(t, f.server.Calls("delete_document"), "bob's call did not run on alice's session")
	ok := f.post(t, alice, s, call("search_documents"))
	assert.Equal(t, http.StatusOK, ok.status, "alice's session still works: %s", ok.raw)
}
