package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/store"
)

// withHeader is an http.RoundTripper that adds one header to every request,
// the way MCP clients send a configured API key.
type withHeader struct {
	name, value string
	base        http.RoundTripper
}

func (h withHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(h.name, h.value)
	return h.base.RoundTrip(r)
}

func startApp(t *testing.T) (*app, *httptest.Server) {
	t.Helper()
	a, err := newApp(store.NewMemory(), nil)
	require.NoError(t, err)
	srv := httptest.NewServer(a.handler)
	t.Cleanup(func() {
		srv.Close()
		_ = a.close(context.Background())
	})
	return a, srv
}

func connect(t *testing.T, srv *httptest.Server, header, value string) (*mcp.ClientSession, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	hc := &http.Client{Transport: withHeader{header, value, http.DefaultTransport}}
	client := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: srv.URL + "/mcp", HTTPClient: hc, MaxRetries: -1}, nil)
	if err == nil {
		t.Cleanup(func() { _ = cs.Close() })
	}
	return cs, err
}

func callJSON(t *testing.T, cs *mcp.ClientSession, tool string, args any, out any) *mcp.CallToolResult {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tool, Arguments: args})
	require.NoError(t, err)
	if out != nil && !res.IsError {
		b, err := json.Marshal(res.StructuredContent)
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(b, out))
	}
	return res
}

func TestEndToEndWithOfficialClient(t *testing.T) {
	a, srv := startApp(t)
	ctx := context.Background()
	alice, err := a.keys.Create(ctx, "alice", keyadmin.CreateOptions{Scopes: []string{"notes:read", "notes:write"}})
	require.NoError(t, err)
	bob, err := a.keys.Create(ctx, "bob", keyadmin.CreateOptions{Scopes: []string{"notes:read"}})
	require.NoError(t, err)

	cs, err := connect(t, srv, "Authorization", "Bearer "+alice.Raw)
	require.NoError(t, err)
	tools, err := cs.ListTools(ctx, nil)
	require.NoError(t, err)
	var names []string
	for _, tool := range tools.Tools {
		names = append(names, tool.Name)
	}
	assert.ElementsMatch(t, []string{"whoami", "save_note", "list_notes"}, names)

	var who whoamiOut
	callJSON(t, cs, "whoami", map[string]any{}, &who)
	assert.Equal(t, whoamiOut{UserID: "alice", KeyID: alice.Key.ID, Scopes: []string{"notes:read", "notes:write"}}, who)
	var notes notesOut
	callJSON(t, cs, "save_note", map[string]any{"text": "buy milk"}, &notes)
	assert.Equal(t, []string{"buy milk"}, notes.Notes)

	// Bob, through X-API-Key, sees only his own (empty) notes and may not write.
	bs, err := connect(t, srv, "X-API-Key", bob.Raw)
	require.NoError(t, err)
	bobTools, err := bs.ListTools(ctx, nil)
	require.NoError(t, err)
	var bobNames []string
	for _, tool := range bobTools.Tools {
		bobNames = append(bobNames, tool.Name)
	}
	assert.ElementsMatch(t, []string{"whoami", "list_notes"}, bobNames, "a read-only key does not see save_note")
	callJSON(t, bs, "whoami", map[string]any{}, &who)
	assert.Equal(t, "bob", who.UserID)
	notes = notesOut{}
	callJSON(t, bs, "list_notes", map[string]any{}, &notes)
	assert.Empty(t, notes.Notes)
	_, err = bs.CallTool(ctx, &mcp.CallToolParams{Name: "save_note", Arguments: map[string]any{"text": "x"}})
	require.Error(t, err, "the policy refuses the write before the server sees it")
	assert.Contains(t, err.Error(), "notes:write", "the refusal says which scope is missing")

	// Revoking Alice's key ends her access at once, on the open session too.
	require.NoError(t, a.keys.Revoke(ctx, alice.Key.ID))
	_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "list_notes", Arguments: map[string]any{}})
	require.Error(t, err)
	_, err = connect(t, srv, "Authorization", "Bearer "+alice.Raw)
	require.Error(t, err)
}

func TestEndToEndRejections(t *testing.T) {
	a, srv := startApp(t)
	_, err := connect(t, srv, "X-Unrelated", "1")
	require.Error(t, err, "no key")
	_, err = connect(t, srv, "Authorization", "Bearer mcp_notakey")
	require.Error(t, err, "malformed key")

	// Raw HTTP: the statuses behind those errors.
	init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}`
	post := func(key string) *http.Response {
		req, err := http.NewRequest("POST", srv.URL+"/mcp", strings.NewReader(init))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	assert.Equal(t, 401, post("").StatusCode)
	k, err := a.keys.Create(context.Background(), "carol", keyadmin.CreateOptions{})
	require.NoError(t, err)
	assert.Equal(t, 200, post(k.Raw).StatusCode)
	require.NoError(t, a.keys.Revoke(context.Background(), k.Key.ID))
	resp := post(k.Raw)
	assert.Equal(t, 401, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`)
}

func TestSessionIsBoundToItsUser(t *testing.T) {
	a, srv := startApp(t)
	ctx := context.Background()
	alice, err := a.keys.Create(ctx, "alice", keyadmin.CreateOptions{})
	require.NoError(t, err)
	mallory, err := a.keys.Create(ctx, "mallory", keyadmin.CreateOptions{})
	require.NoError(t, err)
	cs, err := connect(t, srv, "Authorization", "Bearer "+alice.Raw)
	require.NoError(t, err)
	sid := cs.ID()
	require.NotEmpty(t, sid)

	req, err := http.NewRequest("POST", srv.URL+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"list_notes","arguments":{}}}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set("Authorization", "Bearer "+mallory.Raw)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "another user's key must not use alice's session")
}

func TestWelcomeMessage(t *testing.T) {
	var buf bytes.Buffer
	printWelcome(&buf, "http://127.0.0.1:8080", "mcp_KEY")
	out := buf.String()
	assert.Contains(t, out, `claude mcp add --transport http notes http://127.0.0.1:8080/mcp --header "Authorization: Bearer mcp_KEY"`)
	assert.Contains(t, out, `"headers": {"Authorization": "Bearer mcp_KEY"}`)
	assert.Contains(t, out, "curl -s http://127.0.0.1:8080/mcp -H 'Authorization: Bearer mcp_KEY'")
}

func TestKeysSurviveRestartOnSQLite(t *testing.T) {
	ctx := context.Background()
	path := t.TempDir() + "/mcpauth.db"
	peppers := []apikey.Pepper{{Version: 1, Secret: []byte("quickstart-test-pepper")}}

	keys, closeDB, err := openStore(ctx, path)
	require.NoError(t, err)
	a, err := newApp(keys, &mcpauth.Options{Peppers: peppers})
	require.NoError(t, err)
	raw, err := demoKey(ctx, a.keys, false)
	require.NoError(t, err)
	require.NotEmpty(t, raw)
	again, err := demoKey(ctx, a.keys, false)
	require.NoError(t, err)
	assert.Empty(t, again, "an active demo key is not reissued")
	require.NoError(t, a.close(ctx))
	closeDB()

	keys, closeDB, err = openStore(ctx, path)
	require.NoError(t, err)
	t.Cleanup(closeDB)
	a, err = newApp(keys, &mcpauth.Options{Peppers: peppers})
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.close(ctx) })
	srv := httptest.NewServer(a.handler)
	t.Cleanup(srv.Close)
	cs, err := connect(t, srv, "Authorization", "Bearer "+raw)
	require.NoError(t, err, "the key from before the restart works")
	var who whoamiOut
	callJSON(t, cs, "whoami", map[string]any{}, &who)
	assert.Equal(t, demoUser, who.UserID)
}

func TestWelcomeWithoutNewKey(t *testing.T) {
	var buf bytes.Buffer
	printWelcome(&buf, "http://127.0.0.1:8080", "")
	assert.Contains(t, buf.String(), "still valid")
	assert.NotContains(t, buf.String(), "Bearer")
}

func TestAuditLandsInSQLite(t *testing.T) {
	ctx := context.Background()
	b, err := openBackend(ctx, t.TempDir()+"/mcpauth.db")
	require.NoError(t, err)
	t.Cleanup(b.close)
	events, err := audit.NewWriter(b.audit, nil)
	require.NoError(t, err)
	a, err := newApp(b.keys, &mcpauth.Options{Audit: events})
	require.NoError(t, err)
	srv := httptest.NewServer(a.handler)
	t.Cleanup(srv.Close)
	k, err := a.keys.Create(ctx, "alice", keyadmin.CreateOptions{Scopes: []string{"notes:read"}})
	require.NoError(t, err)
	cs, err := connect(t, srv, "Authorization", "Bearer "+k.Raw)
	require.NoError(t, err)
	callJSON(t, cs, "list_notes", map[string]any{}, nil)
	_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "save_note", Arguments: map[string]any{"text": "x"}})
	require.Error(t, err)
	require.NoError(t, cs.Close())
	require.NoError(t, a.close(ctx))
	require.NoError(t, events.Close(ctx))

	q := b.audit.(audit.Querier)
	page, err := q.Query(ctx, audit.Filter{UserID: "alice", Tool: "list_notes"})
	require.NoError(t, err)
	require.Len(t, page.Events, 1)
	assert.Equal(t, audit.OutcomeAllowed, page.Events[0].Outcome)
	page, err = q.Query(ctx, audit.Filter{UserID: "alice", Outcome: audit.OutcomeDenied})
	require.NoError(t, err)
	require.Len(t, page.Events, 1)
	assert.Equal(t, "save_note", page.Events[0].Tool)
	assert.Equal(t, "insufficient_scope", page.Events[0].Reason)
}

// TestBusyPortKeepsTheDemoKey: a start that fails because the port is taken
// says so and issues no key, so the next run still shows one.
func TestBusyPortKeepsTheDemoKey(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	path := t.TempDir() + "/mcpauth.db"
	var out bytes.Buffer
	err = run(ln.Addr().String(), path, false, &out)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "-addr")
	assert.Empty(t, out.String(), "nothing printed for a start that failed")

	ctx := context.Background()
	keys, closeDB, err := openStore(ctx, path)
	require.NoError(t, err)
	t.Cleanup(closeDB)
	a, err := newApp(keys, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.close(ctx) })
	raw, err := demoKey(ctx, a.keys, false)
	require.NoError(t, err)
	assert.NotEmpty(t, raw, "no key was used up by the failed start: the next run issues one")
}

func TestWelcomeWithoutNewKeySaysHowToGetOne(t *testing.T) {
	var buf bytes.Buffer
	printWelcome(&buf, "http://127.0.0.1:8080", "")
	assert.Contains(t, buf.String(), "-new-key")
	assert.Contains(t, buf.String(), "-db memory")
}
