package mcpgo_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/adaptertest"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/mcpauth/mcpgo"
	"github.com/mcpauth/mcpauth/scope"
	"github.com/mcpauth/mcpauth/store"
)

// testPolicy is the docsearch policy of docs/scopes.md, trimmed.
func testPolicy(t testing.TB) *scope.Policy {
	t.Helper()
	p, err := scope.NewPolicy(scope.PolicyConfig{
		Tools: []scope.Rule{
			{Match: "search_documents", Scopes: []string{"documents:read"}},
			{Match: "get_document", Scopes: []string{"documents:read"}},
			{Match: "create_document", Scopes: []string{"documents:write"}},
			{Match: "delete_document", Scopes: []string{"documents:delete"}},
		},
		Resources:     []scope.Rule{{Match: "docs://*", Scopes: []string{"documents:read"}}},
		Prompts:       []scope.Rule{{Match: "summarize", Scopes: []string{"documents:read"}}},
		UnlistedTools: scope.Unlisted{Scopes: []string{"admin"}},
		Blocked:       scope.Blocklist{Resources: []string{"re:^docs://users/[^/]+/api_keys"}},
	})
	require.NoError(t, err)
	return p
}

// docServer is an mcp-go server with read, write and delete tools, a
// document resource and template, a blocked resource and two prompts. It
// counts the tool calls that reach handlers.
type docServer struct {
	server *server.MCPServer
	calls  map[string]*atomic.Int32
	reads  atomic.Int32 // resource reads that reached a handler
}

func newDocServer(policy *scope.Policy) *docServer {
	opts := append(mcpgo.ServerOptions(policy, nil),
		server.WithToolCapabilities(true), server.WithResourceCapabilities(true, true), server.WithPromptCapabilities(true))
	d := &docServer{server: server.NewMCPServer("docs", "1", opts...), calls: map[string]*atomic.Int32{}}
	for _, name := range []string{"search_documents", "get_document", "create_document", "delete_document", "rename_all"} {
		n := new(atomic.Int32)
		d.calls[name] = n
		d.server.AddTool(mcp.NewTool(name), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			n.Add(1)
			p, _ := mcpgo.PrincipalFrom(ctx)
			return mcp.NewToolResultText(name + " for " + p.UserID), nil
		})
	}
	read := func(_ context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		d.reads.Add(1)
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: req.Params.URI, Text: "secret-or-not"}}, nil
	}
	d.server.AddResource(mcp.NewResource("docs://documents/1", "doc1"), read)
	d.server.AddResource(mcp.NewResource("docs://users/alice/api_keys", "keys"), read)
	d.server.AddResourceTemplate(mcp.NewResourceTemplate("docs://documents/{id}", "doc"), read)
	d.server.AddResourceTemplate(mcp.NewResourceTemplate("docs://users/{user}/api_keys", "keys"), read)
	prompt := func(context.Context, mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		return mcp.NewGetPromptResult("p", []mcp.PromptMessage{mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent("hi"))}), nil
	}
	d.server.AddPrompt(mcp.NewPrompt("summarize"), prompt)
	d.server.AddPrompt(mcp.NewPrompt("admin_report"), prompt)
	return d
}

type fixture struct {
	srv  *httptest.Server
	docs *docServer
	keys *keyadmin.Manager
}

// start serves a docServer behind guard.Require. httpPolicy false runs the
// guard for authentication only, so that only the adapter enforces the
// policy. bind true wires mcp-go with NewHandler (sessions bound to users);
// false wires it by hand with HTTPContextFunc and no Sessions (to show what
// mcp-go alone does).
func start(t *testing.T, stateful, httpPolicy, bind bool) *fixture {
	t.Helper()
	policy := testPolicy(t)
	opts := &mcpauth.Options{}
	if httpPolicy {
		opts.Policy = policy
	}
	var manager server.SessionIdManager = &server.StatelessSessionIdManager{}
	if stateful {
		manager = &server.InsecureStatefulSessionIdManager{}
	}
	return serve(t, opts, newDocServer(policy), func(s *server.MCPServer) http.Handler {
		if !bind {
			return server.NewStreamableHTTPServer(s, server.WithHTTPContextFunc(mcpgo.HTTPContextFunc), server.WithSessionIdManager(manager))
		}
		h, err := mcpgo.NewHandler(s, &mcpgo.HandlerOptions{Sessions: &mcpgo.SessionOptions{Manager: manager}})
		require.NoError(t, err)
		t.Cleanup(func() { _ = h.Shutdown(context.Background()) })
		return h
	})
}

// serve serves docs, wired by wire, behind the Require of a guard with
// opts.
func serve(t *testing.T, opts *mcpauth.Options, docs *docServer, wire func(*server.MCPServer) http.Handler) *fixture {
	t.Helper()
	ks := store.NewMemory()
	guard, err := mcpauth.New(ks, opts)
	require.NoError(t, err)
	srv := httptest.NewServer(guard.Require(wire(docs.server)))
	t.Cleanup(func() {
		srv.Close()
		_ = guard.Close(context.Background())
	})
	// The tests issue admin keys: the default ceiling refuses them.
	keys, err := adaptertest.NewManager(t, ks, guard, &keyadmin.Options{ScopeCeiling: keyadmin.FixedScopeCeiling("admin")})
	require.NoError(t, err)
	return &fixture{srv: srv, docs: docs, keys: keys}
}

func (f *fixture) key(t *testing.T, user string, scopes ...string) string {
	t.Helper()
	k, err := f.keys.Create(context.Background(), user, keyadmin.CreateOptions{Scopes: scopes})
	require.NoError(t, err)
	return k.Raw
}

// connect starts an mcp-go client with the key, speaking protocol version
// (a legacy one has sessions; 2026-07-28 has none), optionally on an
// existing session.
func (f *fixture) connect(t *testing.T, key, version, session string) (*client.Client, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts := []transport.StreamableHTTPCOption{transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + key})}
	if session != "" {
		opts = append(opts, transport.WithSession(session))
	}
	c, err := client.NewStreamableHttpClient(f.srv.URL, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.Start(ctx))
	if session != "" {
		return c, nil // already initialized by its owner
	}
	_, err = c.Initialize(ctx, mcp.InitializeRequest{Params: mcp.InitializeParams{
		ProtocolVersion: version, ClientInfo: mcp.Implementation{Name: "e2e", Version: "1"},
	}})
	return c, err
}

// post sends a raw JSON-RPC body and returns the status and body.
func (f *fixture) post(t *testing.T, key, session, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.srv.URL, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", mcp.ProtocolVersion20251125)
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func toolNames(t *testing.T, c *client.Client) []string {
	t.Helper()
	res, err := c.ListTools(context.Background(), mcp.ListToolsRequest{})
	require.NoError(t, err)
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	return names
}

func call(c *client.Client, name string) (*mcp.CallToolResult, error) {
	return c.CallTool(context.Background(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: name, Arguments: map[string]any{}}})
}

var modes = []struct {
	name                 string
	stateful, httpPolicy bool
	version              string
}{
	{"stateful/http+mcp policy", true, true, mcp.ProtocolVersion20251125},
	{"stateless/http+mcp policy", false, true, mcp.ProtocolVersion20251125},
	{"stateful/mcp policy only", true, false, mcp.ProtocolVersion20251125},
	{"stateless/mcp policy only", false, false, mcp.ProtocolVersion20251125},
	{"2026-07-28 (no sessions)/http+mcp policy", false, true, mcp.ProtocolVersion20260728},
	{"2026-07-28 (no sessions)/mcp policy only", false, false, mcp.ProtocolVersion20260728},
}

func TestEndToEndReadOnlyKey(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			f := start(t, m.stateful, m.httpPolicy, true)
			c, err := f.connect(t, f.key(t, "alice", "documents:read"), m.version, "")
			require.NoError(t, err)
			if m.stateful {
				require.NotEmpty(t, c.GetSessionId())
			}
			ctx := context.Background()

			assert.Equal(t, []string{"get_document", "search_documents"}, toolNames(t, c))

			res, err := call(c, "search_documents")
			require.NoError(t, err)
			require.False(t, res.IsError)
			assert.Equal(t, "search_documents for alice", res.Content[0].(mcp.TextContent).Text)

			_, err = call(c, "delete_document")
			require.Error(t, err)
			assert.Contains(t, err.Error(), `tool "delete_document" requires scope documents:delete`)
			_, err = call(c, "rename_all")
			require.Error(t, err)
			assert.Contains(t, err.Error(), "requires scope admin")
			assert.Zero(t, f.docs.calls["delete_document"].Load())
			assert.Zero(t, f.docs.calls["rename_all"].Load())

			prompts, err := c.ListPrompts(ctx, mcp.ListPromptsRequest{})
			require.NoError(t, err)
			require.Len(t, prompts.Prompts, 1)
			assert.Equal(t, "summarize", prompts.Prompts[0].Name)
			_, err = c.GetPrompt(ctx, mcp.GetPromptRequest{Params: mcp.GetPromptParams{Name: "summarize"}})
			require.NoError(t, err)
			_, err = c.GetPrompt(ctx, mcp.GetPromptRequest{Params: mcp.GetPromptParams{Name: "admin_report"}})
			require.Error(t, err)
			assert.Contains(t, err.Error(), `prompt "admin_report" is not allowed`)

			_, err = c.ReadResource(ctx, mcp.ReadResourceRequest{Params: mcp.ReadResourceParams{URI: "docs://documents/1"}})
			require.NoError(t, err)
		})
	}
}

func TestEndToEndBlockedResourceEvenForAdmin(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			f := start(t, m.stateful, m.httpPolicy, true)
			c, err := f.connect(t, f.key(t, "alice", "admin"), m.version, "")
			require.NoError(t, err)
			ctx := context.Background()

			assert.Equal(t, []string{"create_document", "delete_document", "get_document", "rename_all", "search_documents"}, toolNames(t, c))
			list, err := c.ListResources(ctx, mcp.ListResourcesRequest{})
			require.NoError(t, err)
			require.Len(t, list.Resources, 1)
			assert.Equal(t, "docs://documents/1", list.Resources[0].URI)
			templates, err := c.ListResourceTemplates(ctx, mcp.ListResourceTemplatesRequest{})
			require.NoError(t, err)
			require.Len(t, templates.ResourceTemplates, 1)
			assert.Equal(t, "docs://documents/{id}", templates.ResourceTemplates[0].URITemplate.Raw())

			for _, uri := range []string{"docs://users/alice/api_keys", "docs://users/bob/api_keys", "docs://users/alice/../alice/api_keys"} {
				_, err = c.ReadResource(ctx, mcp.ReadResourceRequest{Params: mcp.ReadResourceParams{URI: uri}})
				require.Error(t, err, uri)
				assert.Contains(t, err.Error(), "is blocked by this server's policy", uri)
				assert.NotContains(t, err.Error(), "secret-or-not")
			}
		})
	}
}

func TestEndToEndSessionBoundToUser(t *testing.T) {
	for _, httpPolicy := range []bool{true, false} {
		t.Run(map[bool]string{true: "http+mcp policy", false: "mcp policy only"}[httpPolicy], func(t *testing.T) {
			t.Parallel()
			f := start(t, true, httpPolicy, true)
			alice, err := f.connect(t, f.key(t, "alice", "documents:read"), mcp.ProtocolVersion20251125, "")
			require.NoError(t, err)
			session := alice.GetSessionId()
			require.NotEmpty(t, session)
			bob := f.key(t, "bob", "admin")

			// Bob's client on Alice's session.
			c, err := f.connect(t, bob, "", session)
			require.NoError(t, err)
			_, err = call(c, "search_documents")
			require.Error(t, err)
			assert.Zero(t, f.docs.calls["search_documents"].Load())

			for _, method := range []string{http.MethodPost, http.MethodGet, http.MethodDelete} {
				req, err := http.NewRequest(method, f.srv.URL, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
				require.NoError(t, err)
				req.Header.Set("Authorization", "Bearer "+bob)
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", "application/json, text/event-stream")
				req.Header.Set("Mcp-Session-Id", session)
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				assert.Equal(t, http.StatusForbidden, resp.StatusCode, method)
				assert.Contains(t, string(b), "session user mismatch", method)
			}

			// A made-up or unbound session ID is refused too.
			code, _ := f.post(t, bob, "mcp-session-6f1c2d3e-0000-4000-8000-000000000000", `{"jsonrpc":"2.0","id":1,"method":"ping"}`)
			assert.Equal(t, http.StatusForbidden, code)

			// Alice's session survived Bob's DELETE and still works.
			res, err := call(alice, "search_documents")
			require.NoError(t, err)
			assert.False(t, res.IsError)
		})
	}
}

// TestMCPGoAloneDoesNotBindSessions records what mcp-go v1.2.1 does without
// Sessions: another user's key is served on the first user's session. If
// this test fails, mcp-go changed and docs/adapters.md needs updating.
func TestMCPGoAloneDoesNotBindSessions(t *testing.T) {
	t.Parallel()
	f := start(t, true, true, false)
	alice, err := f.connect(t, f.key(t, "alice", "documents:read"), mcp.ProtocolVersion20251125, "")
	require.NoError(t, err)
	session := alice.GetSessionId()
	require.NotEmpty(t, session)
	code, body := f.post(t, f.key(t, "bob", "documents:read"), session, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_documents","arguments":{}}}`)
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "search_documents for bob", "mcp-go serves bob on alice's session; the policy still uses bob's own key")
}

func TestEndToEndBatchWithForbiddenCall(t *testing.T) {
	batch := `[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_documents","arguments":{}}},` +
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"delete_document","arguments":{}}}]`
	t.Run("guard refuses the whole batch", func(t *testing.T) {
		t.Parallel()
		f := start(t, false, true, true)
		code, body := f.post(t, f.key(t, "alice", "documents:read"), "", batch)
		assert.Equal(t, http.StatusForbidden, code)
		// One error per element, in order: the refused one says why, the
		// other that it did not run.
		var rpc []struct {
			ID    json.RawMessage `json:"id"`
			Error struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &rpc), body)
		require.Len(t, rpc, 2)
		assert.Equal(t, "1", string(rpc[0].ID))
		assert.Contains(t, rpc[0].Error.Message, "Not executed")
		assert.Equal(t, "2", string(rpc[1].ID))
		assert.Equal(t, mcpauth.RPCCodeForbidden, rpc[1].Error.Code)
		assert.Contains(t, rpc[1].Error.Message, "documents:delete")
		assert.Zero(t, f.docs.calls["search_documents"].Load())
		assert.Zero(t, f.docs.calls["delete_document"].Load())
	})
	t.Run("without the HTTP policy mcp-go refuses batches", func(t *testing.T) {
		t.Parallel()
		f := start(t, false, false, true)
		code, body := f.post(t, f.key(t, "alice", "documents:read"), "", batch)
		assert.Equal(t, http.StatusBadRequest, code, body)
		assert.Zero(t, f.docs.calls["search_documents"].Load())
		assert.Zero(t, f.docs.calls["delete_document"].Load())
	})
}
