package mcpauth_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/scope"
)

func docsPolicy(t *testing.T) *scope.Policy {
	t.Helper()
	p, err := scope.NewPolicy(scope.PolicyConfig{
		Tools: []scope.Rule{
			{Match: "search_documents", Scopes: []string{"documents:read"}},
			{Match: "delete_document", Scopes: []string{"documents:delete"}},
		},
		Resources: []scope.Rule{{Match: "file:///reports/*", Scopes: []string{"documents:read"}}},
		Blocked:   scope.Blocklist{Resources: []string{"payment:*"}},
	})
	require.NoError(t, err)
	return p
}

// echo answers with the body it received, proving it was restored.
type echo struct{ calls atomic.Int64 }

func (e *echo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.calls.Add(1)
	b, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

func post(t *testing.T, srv *httptest.Server, key, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("POST", srv.URL, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

func toolCall(name, id string) string {
	return `{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":{"name":"` + name + `","arguments":{"q":"x"}}}`
}

func TestPolicyThroughMiddleware(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &mcpauth.Options{Policy: docsPolicy(t)})
	reader := f.create(t, "alice", keyadmin.CreateOptions{Scopes: []string{"documents:read"}})
	admin, err := f.manager(t, &keyadmin.Options{ScopeCeiling: keyadmin.FixedScopeCeiling("admin")}).
		Create(t.Context(), "root", keyadmin.CreateOptions{Scopes: []string{"admin"}})
	require.NoError(t, err)
	h := &echo{}
	srv := httptest.NewServer(f.guard.Require(h))
	t.Cleanup(srv.Close)

	// Allowed: the handler gets the body byte for byte.
	body := toolCall("search_documents", "1") + "\n  "
	resp, got := post(t, srv, reader.Raw, body)
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, body, got)

	// Refused: readable JSON-RPC error with the id, and the challenge.
	resp, got = post(t, srv, reader.Raw, toolCall("delete_document", `"req-7"`))
	assert.Equal(t, 403, resp.StatusCode)
	assert.Equal(t, `Bearer realm="mcp", error="insufficient_scope", error_description="tool 'delete_document' requires scope documents:delete", scope="documents:delete"`, resp.Header.Get("WWW-Authenticate"))
	var rpc struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
			Data    struct {
				Error string `json:"error"`
			} `json:"data"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal([]byte(got), &rpc))
	assert.Equal(t, "2.0", rpc.JSONRPC)
	assert.Equal(t, `"req-7"`, string(rpc.ID))
	assert.Equal(t, mcpauth.RPCCodeForbidden, rpc.Error.Code)
	assert.Contains(t, rpc.Error.Message, "delete_document")
	assert.Contains(t, rpc.Error.Message, "documents:delete")
	assert.Equal(t, "insufficient_scope", rpc.Error.Data.Error)

	// A batch with one forbidden call is refused whole.
	calls := h.calls.Load()
	resp, got = post(t, srv, reader.Raw, "["+toolCall("search_documents", "1")+","+toolCall("delete_document", "2")+"]")
	assert.Equal(t, 403, resp.StatusCode)
	assert.Contains(t, got, `"id":2`)
	assert.Equal(t, calls, h.calls.Load(), "the handler never sees a refused batch")

	// Blocked resources are unreachable even for admin.
	resp, got = post(t, srv, admin.Raw, `{"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"payment:card/4242"}}`)
	assert.Equal(t, 403, resp.StatusCode)
	assert.Contains(t, got, `"blocked"`)
	resp, _ = post(t, srv, admin.Raw, toolCall("delete_document", "4"))
	assert.Equal(t, 200, resp.StatusCode, "admin may delete")

	// Unlisted tools are denied by default; listing and pings need only a key.
	resp, _ = post(t, srv, admin.Raw, toolCall("format_disk", "5"))
	assert.Equal(t, 403, resp.StatusCode)
	assert.Empty(t, resp.Header.Get("WWW-Authenticate"), "no scope would help: no insufficient_scope challenge")
	for _, b := range []string{
		`{"jsonrpc":"2.0","id":6,"method":"tools/list"}`,
		`{"jsonrpc":"2.0","id":7,"method":"ping"}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"jsonrpc":"2.0","id":8,"result":{}}`,
	} {
		resp, _ = post(t, srv, reader.Raw, b)
		assert.Equal(t, 200, resp.StatusCode, b)
	}

	// Bad bodies.
	resp, got = post(t, srv, reader.Raw, `{"jsonrpc":"2.0","id":9,"method":`)
	assert.Equal(t, 400, resp.StatusCode)
	assert.JSONEq(t, `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error: the request body is not valid JSON.","data":{"error":"parse_error"}}}`, got)
	resp, _ = post(t, srv, reader.Raw, `[]`)
	assert.Equal(t, 400, resp.StatusCode)

	// Authentication still comes first.
	resp, _ = post(t, srv, "", toolCall("search_documents", "1"))
	assert.Equal(t, 401, resp.StatusCode)

	// GET (the SSE stream) has no body to inspect and passes with a key.
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("Authorization", "Bearer "+reader.Raw)
	gr, err := srv.Client().Do(req)
	require.NoError(t, err)
	gr.Body.Close()
	assert.Equal(t, 200, gr.StatusCode)
}

func TestRefusalModes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		mode   mcpauth.RefusalMode
		body   string
		status int
		want   string
	}{
		{"http tools/call", mcpauth.RefusalHTTP, toolCall("delete_document", "1"), 403,
			`{"jsonrpc":"2.0","id":1,"error":{"code":-32011,"message":"tool \"delete_document\" requires scope documents:delete","data":{"error":"insufficient_scope","scope":"documents:delete"}}}`},
		{"jsonrpc tools/call", mcpauth.RefusalJSONRPC, toolCall("delete_document", "1"), 200,
			`{"jsonrpc":"2.0","id":1,"error":{"code":-32011,"message":"tool \"delete_document\" requires scope documents:delete","data":{"error":"insufficient_scope","scope":"documents:delete"}}}`},
		{"tool result tools/call", mcpauth.RefusalToolResult, toolCall("delete_document", "1"), 200,
			`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"tool \"delete_document\" requires scope documents:delete"}],"isError":true}}`},
		{"tool result batch", mcpauth.RefusalToolResult, `[{"jsonrpc":"2.0","id":1,"method":"ping"},` + toolCall("delete_document", "2") + `]`, 200,
			`[{"jsonrpc":"2.0","id":1,"error":{"code":-32011,"message":"Not executed: another message in this batch was refused (tool \"delete_document\" requires scope documents:delete)","data":{"error":"insufficient_scope","scope":"documents:delete"}}},` +
				`{"jsonrpc":"2.0","id":2,"error":{"code":-32011,"message":"tool \"delete_document\" requires scope documents:delete","data":{"error":"insufficient_scope","scope":"documents:delete"}}}]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, &mcpauth.Options{Policy: docsPolicy(t), Refusals: tc.mode})
			reader := f.create(t, "alice", keyadmin.CreateOptions{Scopes: []string{"documents:read"}})
			h := &echo{}
			srv := httptest.NewServer(f.guard.Require(h))
			t.Cleanup(srv.Close)
			resp, got := post(t, srv, reader.Raw, tc.body)
			assert.Equal(t, tc.status, resp.StatusCode)
			if tc.status == 200 {
				assert.Empty(t, resp.Header.Get("WWW-Authenticate"))
			}
			assert.JSONEq(t, tc.want, got)
			assert.NotEmpty(t, resp.Header.Get("X-Request-Id"))
			assert.Zero(t, h.calls.Load(), "the handler must not run")
		})
	}
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &mcpauth.Options{Policy: docsPolicy(t), MaxBodyBytes: 1024})
	reader := f.create(t, "alice", keyadmin.CreateOptions{Scopes: []string{"documents:read"}})
	srv := httptest.NewServer(f.guard.Require(&echo{}))
	t.Cleanup(srv.Close)
	big := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_documents","arguments":{"q":"` + strings.Repeat("x", 2000) + `"}}}`
	// The answer carries the request's id (read from the body's start), so
	// that clients keep the session.
	want := `{"jsonrpc":"2.0","id":1,"error":{"code":-32600,"message":"The request body is too large.","data":{"error":"request_too_large"}}}`
	resp, got := post(t, srv, reader.Raw, big)
	assert.Equal(t, 413, resp.StatusCode)
	assert.JSONEq(t, want, got)
	// Without Content-Length (chunked), the limit still holds.
	req, _ := http.NewRequest("POST", srv.URL, io.MultiReader(strings.NewReader(big)))
	req.ContentLength = -1
	req.Header.Set("Authorization", "Bearer "+reader.Raw)
	cr, err := srv.Client().Do(req)
	require.NoError(t, err)
	cb, _ := io.ReadAll(cr.Body)
	cr.Body.Close()
	assert.Equal(t, 413, cr.StatusCode)
	assert.JSONEq(t, want, string(cb))
	resp, _ = post(t, srv, reader.Raw, toolCall("search_documents", "1"))
	assert.Equal(t, 200, resp.StatusCode)
}

// TestSubscriptionsListenIsChecked: SEP-2575's subscriptions/listen
// subscribes by URI without resources/subscribe; each URI is checked like
// one, whatever the letter case or duplication of the key.
func TestSubscriptionsListenIsChecked(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &mcpauth.Options{Policy: docsPolicy(t)})
	reader := f.create(t, "alice", keyadmin.CreateOptions{Scopes: []string{"documents:read"}})
	nobody := f.create(t, "bob", keyadmin.CreateOptions{})
	srv := httptest.NewServer(f.guard.Require(&echo{}))
	t.Cleanup(srv.Close)
	listen := func(notifications string) string {
		return `{"jsonrpc":"2.0","id":1,"method":"subscriptions/listen","params":{"notifications":` + notifications + `}}`
	}
	tests := []struct {
		name   string
		key    string
		body   string
		status int
	}{
		{"allowed report", reader.Raw, listen(`{"resourceSubscriptions":["file:///reports/q1.pdf"]}`), 200},
		{"no scope for it", nobody.Raw, listen(`{"resourceSubscriptions":["file:///reports/q1.pdf"]}`), 403},
		{"blocked", reader.Raw, listen(`{"resourceSubscriptions":["file:///reports/q1.pdf","payment:card/1"]}`), 403},
		{"other letter case", reader.Raw, listen(`{"resourceSubscriptions":["file:///reports/q1.pdf"],"ResourceSubscriptions":["payment:card/1"]}`), 403},
		{"duplicate key", reader.Raw, listen(`{"resourceSubscriptions":["payment:card/1"],"resourceSubscriptions":["file:///reports/q1.pdf"]}`), 403},
		{"list changes only", nobody.Raw, listen(`{"toolsListChanged":true}`), 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := post(t, srv, tt.key, tt.body)
			assert.Equal(t, tt.status, resp.StatusCode, body)
		})
	}
}
