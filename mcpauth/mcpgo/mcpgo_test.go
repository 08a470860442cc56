package mcpgo_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/adaptertest"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/mcpauth/mcpgo"
	"github.com/mcpauth/mcpauth/store"
)

func ctxFor(scopes ...string) context.Context {
	return mcpauth.WithPrincipal(context.Background(), mcpauth.Principal{KeyID: "k", UserID: "alice", Scopes: scopes})
}

func TestHTTPContextFunc(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	ctx := mcpgo.HTTPContextFunc(context.Background(), r)
	_, ok := mcpgo.PrincipalFrom(ctx)
	assert.False(t, ok, "no principal in, none out")
	assert.NotPanics(t, func() { _ = mcpgo.HTTPContextFunc(context.Background(), nil) })

	r = r.WithContext(ctxFor("documents:read"))
	ctx = mcpgo.HTTPContextFunc(context.Background(), r)
	p, ok := mcpgo.PrincipalFrom(ctx)
	require.True(t, ok)
	assert.Equal(t, "alice", p.UserID)

	// The parsed scopes travel too: the tool filter sees them.
	tools := mcpgo.ToolFilter(testPolicy(t))(ctx, []mcp.Tool{mcp.NewTool("search_documents"), mcp.NewTool("delete_document")})
	require.Len(t, tools, 1)
	assert.Equal(t, "search_documents", tools[0].Name)
}

func TestRequestHook(t *testing.T) {
	t.Parallel()
	hook := mcpgo.RequestHook(testPolicy(t))
	read, admin := ctxFor("documents:read"), ctxFor("admin")
	tests := []struct {
		name    string
		ctx     context.Context
		message any
		want    string // "" = allowed; else a substring of the refusal
		is      error
	}{
		{"allowed call", read, json.RawMessage(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_documents","arguments":{"q":[1,2,3]}}}`), "", nil},
		{"delete with read key", read, json.RawMessage(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_document"}}`), "requires scope documents:delete", mcpauth.ErrInsufficientScope},
		{"letter case read as mcp-go reads it", read, json.RawMessage(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"NAME":"delete_document"}}`), "requires scope documents:delete", mcpauth.ErrInsufficientScope},
		{"duplicate key: last wins, as in mcp-go", read, json.RawMessage(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_documents","name":"delete_document"}}`), "requires scope documents:delete", nil},
		{"no principal", context.Background(), json.RawMessage(`{"jsonrpc":"2.0","id":1,"method":"ping"}`), "no mcpauth principal", mcpgo.ErrNoPrincipal},
		{"ping", read, json.RawMessage(`{"jsonrpc":"2.0","id":1,"method":"ping"}`), "", nil},
		{"params not an object", admin, json.RawMessage(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":"x"}`), "could not be read", mcpgo.ErrUnreadable},
		{"message of an unknown type", admin, map[string]any{"method": "tools/call"}, "could not be read", mcpgo.ErrUnreadable},
		{"blocked read for admin", admin, json.RawMessage(`{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"docs://users/a/api_keys"}}`), "blocked", mcpauth.ErrBlocked},
		{"blocked subscribe", admin, json.RawMessage(`{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":"docs://users/a/api_keys"}}`), "blocked", mcpauth.ErrBlocked},
		{"subscriptions/listen with a blocked uri", admin, json.RawMessage(`{"jsonrpc":"2.0","id":1,"method":"subscriptions/listen","params":{"notifications":{"resourceSubscriptions":["docs://documents/1","docs://users/a/api_keys"]}}}`), "blocked", mcpauth.ErrBlocked},
		{"subscriptions/listen allowed", read, json.RawMessage(`{"jsonrpc":"2.0","id":1,"method":"subscriptions/listen","params":{"notifications":{"resourceSubscriptions":["docs://documents/1"],"toolsListChanged":true}}}`), "", nil},
		{"completion of a denied prompt", admin, json.RawMessage(`{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"admin_report"},"argument":{"name":"a","value":"b"}}}`), "not allowed", nil},
		{"completion of a blocked resource", admin, json.RawMessage(`{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":"docs://users/a/api_keys"}}}`), "blocked", nil},
		{"completion of an allowed prompt", read, json.RawMessage(`{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"summarize"}}}`), "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := hook(tt.ctx, 1, tt.message)
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			if tt.is != nil {
				assert.ErrorIs(t, err, tt.is)
			}
		})
	}
}

func TestFiltersWithoutPrincipalHideEverything(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	assert.Empty(t, mcpgo.ToolFilter(testPolicy(t))(ctx, []mcp.Tool{mcp.NewTool("search_documents")}))
	assert.Empty(t, mcpgo.PromptFilter(testPolicy(t))(ctx, []mcp.Prompt{mcp.NewPrompt("summarize")}))
	assert.Len(t, mcpgo.ToolFilter(nil)(ctxFor(), []mcp.Tool{mcp.NewTool("x")}), 1, "nil policy: a principal sees everything")

	hooks := &server.Hooks{}
	mcpgo.AddHooks(hooks, testPolicy(t))
	res := &mcp.ListResourcesResult{Resources: []mcp.Resource{mcp.NewResource("docs://documents/1", "d")}}
	for _, h := range hooks.OnAfterListResources {
		h(ctx, 1, &mcp.ListResourcesRequest{}, res)
	}
	assert.Empty(t, res.Resources)
	tpl := &mcp.ListResourceTemplatesResult{ResourceTemplates: []mcp.ResourceTemplate{mcp.NewResourceTemplate("docs://documents/{id}", "d"), {Name: "no template"}}}
	for _, h := range hooks.OnAfterListResourceTemplates {
		h(ctxFor("documents:read"), 1, &mcp.ListResourceTemplatesRequest{}, tpl)
	}
	require.Len(t, tpl.ResourceTemplates, 1, "a template without a URI template is dropped, not dereferenced")
}

func TestNewSessionsKey(t *testing.T) {
	t.Parallel()
	_, err := mcpgo.NewSessions(&mcpgo.SessionOptions{Key: make([]byte, 16)})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "\x00")
	_, err = mcpgo.NewSessions(nil)
	require.NoError(t, err)
}

func TestSessionManagerBinding(t *testing.T) {
	t.Parallel()
	key := []byte(strings.Repeat("k", 32))
	s, err := mcpgo.NewSessions(&mcpgo.SessionOptions{Key: key, Manager: &server.InsecureStatefulSessionIdManager{}})
	require.NoError(t, err)
	req := func(user string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
		return r.WithContext(mcpauth.WithPrincipal(r.Context(), mcpauth.Principal{UserID: user}))
	}
	alice, bob := s.ResolveSessionIdManager(req("alice")), s.ResolveSessionIdManager(req("bob"))
	id := alice.Generate()
	require.Contains(t, id, "mcp-session-")
	require.Contains(t, id, ".")

	terminated, err := alice.Validate(id)
	require.NoError(t, err)
	assert.False(t, terminated)
	_, err = bob.Validate(id)
	assert.ErrorIs(t, err, mcpgo.ErrSessionUser)
	_, err = alice.Validate(strings.Split(id, ".")[0])
	assert.ErrorIs(t, err, mcpgo.ErrSessionUser, "an unbound ID is refused")
	_, err = alice.Validate(id + ".x")
	assert.ErrorIs(t, err, mcpgo.ErrSessionUser)

	notAllowed, err := bob.Terminate(id)
	require.NoError(t, err)
	assert.True(t, notAllowed, "bob may not end alice's session")
	terminated, err = alice.Validate(id)
	require.NoError(t, err)
	assert.False(t, terminated)

	// Another Sessions with the same key accepts the ID (several instances).
	s2, err := mcpgo.NewSessions(&mcpgo.SessionOptions{Key: key})
	require.NoError(t, err)
	_, err = s2.ResolveSessionIdManager(req("alice")).Validate(id)
	require.NoError(t, err)
	s3, err := mcpgo.NewSessions(nil)
	require.NoError(t, err)
	_, err = s3.ResolveSessionIdManager(req("alice")).Validate(id)
	assert.ErrorIs(t, err, mcpgo.ErrSessionUser, "another key does not")

	// mcp-go's sweeper has no request: it may end any session.
	notAllowed, err = s.ResolveSessionIdManager(nil).Terminate(id)
	require.NoError(t, err)
	assert.False(t, notAllowed)
	terminated, err = alice.Validate(id)
	require.NoError(t, err)
	assert.True(t, terminated)

	// No principal: no ID issued, none accepted.
	anon := s.ResolveSessionIdManager(httptest.NewRequest(http.MethodPost, "/mcp", nil))
	assert.Empty(t, anon.Generate())
	_, err = anon.Validate(id)
	assert.True(t, errors.Is(err, mcpgo.ErrSessionUser))
}

func TestSessionsRequireWithoutPrincipal(t *testing.T) {
	t.Parallel()
	s, err := mcpgo.NewSessions(nil)
	require.NoError(t, err)
	called := false
	rec := httptest.NewRecorder()
	s.Require(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true })).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/mcp", nil))
	assert.Equal(t, http.StatusUnauthorized, rec.Code)
	assert.False(t, called)
}

// TestSessionRefusalsGoThroughErrorHandler: the adapter's own refusals are
// answered by the Guard's Options.ErrorHandler, like every other refusal.
func TestSessionRefusalsGoThroughErrorHandler(t *testing.T) {
	t.Parallel()
	var got error
	ks := store.NewMemory()
	guard, err := mcpauth.New(ks, &mcpauth.Options{ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
		got = err
		w.WriteHeader(http.StatusTeapot)
	}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = guard.Close(context.Background()) })
	key, err := adaptertest.MustManager(t, ks, guard, nil).Create(context.Background(), "alice", keyadmin.CreateOptions{})
	require.NoError(t, err)
	sessions, err := mcpgo.NewSessions(nil)
	require.NoError(t, err)
	ran := false
	h := guard.Require(sessions.Require(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { ran = true })))
	r := httptest.NewRequest(http.MethodGet, "/mcp", nil)
	r.Header.Set("Authorization", "Bearer "+key.Raw)
	r.Header.Set("Mcp-Session-Id", "not-issued-by-sessions")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	assert.Equal(t, http.StatusTeapot, w.Code)
	assert.ErrorIs(t, got, mcpauth.ErrSessionUserMismatch)
	assert.False(t, ran)
}
