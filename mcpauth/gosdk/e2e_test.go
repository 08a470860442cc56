package gosdk_test

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

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/adaptertest"
	"github.com/mcpauth/mcpauth/mcpauth/gosdk"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
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

// withHeader adds one header to every request, the way MCP clients send a
// configured API key.
type withHeader struct {
	name, value string
	base        http.RoundTripper
}

func (h withHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(h.name, h.value)
	return h.base.RoundTrip(r)
}

type empty struct{}

// docServer is an SDK server with read, write and delete tools, a
// document resource, a blocked resource and two prompts. It counts the
// tool calls that reach handlers.
type docServer struct {
	server *mcp.Server
	calls  map[string]*atomic.Int32
	reads  atomic.Int32 // resource reads that reached a handler
}

func newDocServer(policy *scope.Policy) *docServer {
	d := &docServer{server: mcp.NewServer(&mcp.Implementation{Name: "docs", Version: "1"}, nil), calls: map[string]*atomic.Int32{}}
	for _, name := range []string{"search_documents", "get_document", "create_document", "delete_document", "rename_all"} {
		n := new(atomic.Int32)
		d.calls[name] = n
		mcp.AddTool(d.server, &mcp.Tool{Name: name}, func(_ context.Context, req *mcp.CallToolRequest, _ empty) (*mcp.CallToolResult, empty, error) {
			n.Add(1)
			p, _ := gosdk.Principal(req.Extra)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: name + " for " + p.UserID}}}, empty{}, nil
		})
	}
	read := func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		d.reads.Add(1)
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: "secret-or-not"}}}, nil
	}
	d.server.AddResource(&mcp.Resource{URI: "docs://documents/1", Name: "doc1"}, read)
	d.server.AddResource(&mcp.Resource{URI: "docs://users/alice/api_keys", Name: "keys"}, read)
	d.server.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: "docs://documents/{id}", Name: "doc"}, read)
	prompt := func(context.Context, *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		return &mcp.GetPromptResult{Messages: []*mcp.PromptMessage{{Role: "user", Content: &mcp.TextContent{Text: "hi"}}}}, nil
	}
	d.server.AddPrompt(&mcp.Prompt{Name: "summarize"}, prompt)
	d.server.AddPrompt(&mcp.Prompt{Name: "admin_report"}, prompt)
	d.server.AddReceivingMiddleware(gosdk.Middleware(policy))
	return d
}

type fixture struct {
	srv  *httptest.Server
	docs *docServer
	keys *keyadmin.Manager
}

// start serves a docServer behind guard.Require and Bridge. httpPolicy
// false runs the guard for authentication only, so that only the SDK
// middleware enforces the policy.
func start(t *testing.T, stateless, httpPolicy bool) *fixture {
	t.Helper()
	policy := testPolicy(t)
	opts := &mcpauth.Options{}
	if httpPolicy {
		opts.Policy = policy
	}
	ks := store.NewMemory()
	guard, err := mcpauth.New(ks, opts)
	require.NoError(t, err)
	docs := newDocServer(policy)
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return docs.server }, &mcp.StreamableHTTPOptions{Stateless: stateless})
	srv := httptest.NewServer(guard.Require(gosdk.Bridge(h)))
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

func (f *fixture) connect(t *testing.T, key string) *mcp.ClientSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hc := &http.Client{Transport: withHeader{"Authorization", "Bearer " + key, http.DefaultTransport}}
	client := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: f.srv.URL, HTTPClient: hc, MaxRetries: -1}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

// post sends a raw JSON-RPC body and returns the status and body.
func (f *fixture) post(t *testing.T, key, session, body string) (int, string) {
	t.Helper()
	return f.postVersion(t, key, session, "2025-06-18", body)
}

func (f *fixture) postVersion(t *testing.T, key, session, version, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.srv.URL, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", version)
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

func toolNames(t *testing.T, cs *mcp.ClientSession) []string {
	t.Helper()
	res, err := cs.ListTools(context.Background(), nil)
	require.NoError(t, err)
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	return names
}

var modes = []struct {
	name                  string
	stateless, httpPolicy bool
}{
	{"stateful/http+mcp policy", false, true},
	{"stateless/http+mcp policy", true, true},
	{"stateful/mcp policy only", false, false},
	{"stateless/mcp policy only", true, false},
}

func TestEndToEndReadOnlyKey(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			f := start(t, m.stateless, m.httpPolicy)
			cs := f.connect(t, f.key(t, "alice", "documents:read"))
			ctx := context.Background()

			assert.Equal(t, []string{"get_document", "search_documents"}, toolNames(t, cs))

			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "search_documents", Arguments: map[string]any{}})
			require.NoError(t, err)
			require.False(t, res.IsError)
			assert.Equal(t, "search_documents for alice", res.Content[0].(*mcp.TextContent).Text)

			_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "delete_document", Arguments: map[string]any{}})
			require.Error(t, err)
			assert.Contains(t, err.Error(), `tool "delete_document" requires scope documents:delete`)
			_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "rename_all", Arguments: map[string]any{}})
			require.Error(t, err)
			assert.Contains(t, err.Error(), "requires scope admin")
			assert.Zero(t, f.docs.calls["delete_document"].Load())
			assert.Zero(t, f.docs.calls["rename_all"].Load())

			prompts, err := cs.ListPrompts(ctx, nil)
			require.NoError(t, err)
			require.Len(t, prompts.Prompts, 1)
			assert.Equal(t, "summarize", prompts.Prompts[0].Name)
			_, err = cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "summarize"})
			require.NoError(t, err)
			_, err = cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "admin_report"})
			require.Error(t, err)
			assert.Contains(t, err.Error(), `prompt "admin_report" is not allowed`)

			_, err = cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "docs://documents/1"})
			require.NoError(t, err)
		})
	}
}

func TestEndToEndBlockedResourceEvenForAdmin(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			f := start(t, m.stateless, m.httpPolicy)
			cs := f.connect(t, f.key(t, "alice", "admin"))
			ctx := context.Background()

			assert.Equal(t, []string{"create_document", "delete_document", "get_document", "rename_all", "search_documents"}, toolNames(t, cs))
			list, err := cs.ListResources(ctx, nil)
			require.NoError(t, err)
			require.Len(t, list.Resources, 1)
			assert.Equal(t, "docs://documents/1", list.Resources[0].URI)
			assert.Equal(t, "private", list.CacheScope, "a per-key list must not be cached for others")
			templates, err := cs.ListResourceTemplates(ctx, nil)
			require.NoError(t, err)
			require.Len(t, templates.ResourceTemplates, 1)

			for _, uri := range []string{"docs://users/alice/api_keys", "docs://users/alice/../alice/api_keys"} {
				_, err = cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: uri})
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
			f := start(t, false, httpPolicy)
			cs := f.connect(t, f.key(t, "alice", "documents:read"))
			require.NotEmpty(t, cs.ID())
			bob := f.key(t, "bob", "admin")

			code, body := f.post(t, bob, cs.ID(), `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"search_documents","arguments":{}}}`)
			assert.Equal(t, http.StatusForbidden, code)
			assert.Contains(t, body, "session user mismatch")
			assert.Zero(t, f.docs.calls["search_documents"].Load())

			for _, method := range []string{http.MethodGet, http.MethodDelete} {
				req, err := http.NewRequest(method, f.srv.URL, nil)
				require.NoError(t, err)
				req.Header.Set("Authorization", "Bearer "+bob)
				req.Header.Set("Accept", "text/event-stream")
				req.Header.Set("Mcp-Session-Id", cs.ID())
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				assert.Equal(t, http.StatusForbidden, resp.StatusCode, method)
				assert.Contains(t, string(b), "session user mismatch", method)
			}

			// Alice's own key still works on her session.
			_, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "search_documents", Arguments: map[string]any{}})
			require.NoError(t, err)
		})
	}
}

func TestEndToEndBatchWithForbiddenCall(t *testing.T) {
	batch := `[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_documents","arguments":{}}},` +
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"delete_document","arguments":{}}}]`
	t.Run("guard refuses the whole batch", func(t *testing.T) {
		t.Parallel()
		f := start(t, true, true)
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
		assert.Zero(t, f.docs.calls["search_documents"].Load(), "no element of a refused batch runs")
		assert.Zero(t, f.docs.calls["delete_document"].Load())
	})
	t.Run("without the HTTP policy the SDK refuses batches (2025-06-18)", func(t *testing.T) {
		t.Parallel()
		f := start(t, true, false)
		code, body := f.post(t, f.key(t, "alice", "documents:read"), "", batch)
		assert.Equal(t, http.StatusBadRequest, code)
		assert.Contains(t, body, "batching is not supported")
		assert.Zero(t, f.docs.calls["search_documents"].Load())
		assert.Zero(t, f.docs.calls["delete_document"].Load())
	})
	t.Run("without the HTTP policy the middleware refuses the forbidden element (2025-03-26)", func(t *testing.T) {
		t.Parallel()
		f := start(t, true, false)
		code, body := f.postVersion(t, f.key(t, "alice", "documents:read"), "", "2025-03-26", batch)
		t.Logf("status %d body %s", code, body)
		assert.Equal(t, http.StatusOK, code)
		assert.Contains(t, body, `tool \"delete_document\" requires scope documents:delete`)
		assert.Zero(t, f.docs.calls["delete_document"].Load())
	})
}

func TestMiddlewareRefusesWithoutPrincipal(t *testing.T) {
	t.Parallel()
	// In-memory transport: no HTTP, no Bridge, so no TokenInfo.
	docs := newDocServer(testPolicy(t))
	ct, st := mcp.NewInMemoryTransports()
	ctx := context.Background()
	ss, err := docs.server.Connect(ctx, st, nil)
	require.NoError(t, err)
	defer ss.Close()
	client := mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, nil)
	_, err = client.Connect(ctx, ct, nil)
	require.Error(t, err, "initialize without a principal is refused")
	assert.Contains(t, err.Error(), "no mcpauth principal")
}
