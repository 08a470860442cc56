package refusals_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mgmcp "github.com/mark3labs/mcp-go/mcp"
	mgserver "github.com/mark3labs/mcp-go/server"
	gomcp "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/ratelimit"
	"github.com/mcpauth/mcpauth/scope"
	"github.com/mcpauth/mcpauth/store"
)

// serverKind is the MCP server behind Require.
type serverKind string

const (
	goSDKServer serverKind = "go-sdk"
	// goSDKStateless is the go-sdk handler with Stateless set: the go-sdk
	// v1.8 client negotiates 2026-07-28 only with it (a stateful handler
	// does not answer server/discover, and the client falls back to
	// initialize at 2025-11-25).
	goSDKStateless serverKind = "go-sdk stateless"
	mcpGoServer    serverKind = "mcp-go"
)

// maxBody is the fixture's Options.MaxBodyBytes: initialize and the tool
// calls fit, bigArg does not.
const maxBody = 8 << 10

var bigArg = strings.Repeat("x", 2*maxBody)

// Fixture users: alice owns the session's key; bob is inactive.
const (
	alice = "alice"
	bob   = "bob"
)

// fixture is one MCP server behind one Guard, with a key for every
// refusal. Keys are per fixture, so fixtures never share budgets.
type fixture struct {
	url  string
	keys map[string]string // name -> "Bearer <raw key>"
	// echoRuns counts runs of the allowed tool; adminRuns of the tool no
	// fixture key may call (except "admin"); a refusal must leave it alone.
	echoRuns, adminRuns atomic.Int64
}

// failingStore is a KeyStore whose lookups of the IDs in down fail as a
// broken database would (an error that is not store.ErrNotFound).
type failingStore struct {
	*store.Memory
	down map[string]bool // written before the server starts, then read-only
}

func (s *failingStore) LookupKey(ctx context.Context, id string) (store.Key, error) {
	if s.down[id] {
		return store.Key{}, errors.New("connection refused (fake outage)")
	}
	return s.Memory.LookupKey(ctx, id)
}

// policy: echo needs a valid key, admin_tool needs admin:write, the
// file:///app/ resources need a valid key (file:///app/.env is blocked by
// the default blocklist).
func policy(t *testing.T) *scope.Policy {
	t.Helper()
	p, err := scope.NewPolicy(scope.PolicyConfig{
		Tools:     []scope.Rule{{Match: "echo"}, {Match: "admin_tool", Scopes: []string{"admin:write"}}},
		Resources: []scope.Rule{{Match: "file:///app/*"}},
	})
	require.NoError(t, err)
	return p
}

// epoch is the limiter's frozen clock: a spent budget never refills
// during a test.
var epoch = time.Date(2026, 7, 28, 0, 0, 0, 0, time.UTC)

func newFixture(t *testing.T, kind serverKind, mode mcpauth.RefusalMode) *fixture {
	t.Helper()
	f := &fixture{keys: map[string]string{}}
	st := &failingStore{Memory: store.NewMemory(), down: map[string]bool{}}
	limiter := ratelimit.NewMemory(&ratelimit.MemoryOptions{Now: func() time.Time { return epoch }})
	guard, err := mcpauth.New(st, &mcpauth.Options{
		Policy:       policy(t),
		RateLimiter:  limiter,
		Refusals:     mode,
		MaxBodyBytes: maxBody,
		Logger:       slog.New(slog.DiscardHandler), // the fake outage is logged as an error
		Users: store.UserCheckerFunc(func(_ context.Context, user string) (bool, error) {
			return user != bob, nil
		}),
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = guard.Close(ctx)
		_ = limiter.Close(ctx)
	})
	mgr, err := keyadmin.New(st, &keyadmin.Options{OnChange: guard.Forget})
	require.NoError(t, err)
	t.Cleanup(func() { _ = mgr.Close(context.Background()) })
	ctx := context.Background()
	create := func(name, user string, o keyadmin.CreateOptions) store.Key {
		o.Name = name
		k, err := mgr.Create(ctx, user, o)
		require.NoError(t, err, name)
		f.keys[name] = "Bearer " + k.Raw
		return k.Key
	}
	create("good", alice, keyadmin.CreateOptions{})
	create("admin", alice, keyadmin.CreateOptions{Scopes: []string{"admin:write"}})
	revoked := create("revoked", alice, keyadmin.CreateOptions{})
	require.NoError(t, mgr.Revoke(ctx, revoked.ID))
	create("inactive", bob, keyadmin.CreateOptions{})
	create("address", alice, keyadmin.CreateOptions{AllowedCIDRs: []string{"192.0.2.0/24"}})
	create("limited", alice, keyadmin.CreateOptions{RateLimit: 1})
	down := create("storedown", alice, keyadmin.CreateOptions{})
	st.down[down.ID] = true
	f.keys["invalid"] = "Bearer mcp_thisisnotakeyatall"

	var mcpHandler http.Handler
	switch kind {
	case goSDKServer:
		mcpHandler = f.goSDKHandler(false)
	case goSDKStateless:
		mcpHandler = f.goSDKHandler(true)
	case mcpGoServer:
		mcpHandler = f.mcpGoHandler()
	default:
		t.Fatalf("unknown server %q", kind)
	}
	srv := httptest.NewServer(guard.Require(mcpHandler))
	t.Cleanup(srv.Close)
	f.url = srv.URL
	f.spend(t, "limited")
	return f
}

// spend uses up the named key's rate-limit budget (1 per minute, and the
// limiter's clock is frozen) with one tools/call of admin_tool: the rate
// limit is charged before the policy refuses the call, so no tool runs.
func (f *fixture) spend(t *testing.T, key string) {
	t.Helper()
	resp := rawPost(t, f.url, f.keys[key], nil, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin_tool","arguments":{}}}`)
	require.Contains(t, []int{http.StatusForbidden, http.StatusOK}, resp.status, "spending %s: %s", key, resp.body)
	require.NotContains(t, resp.body, "Too many requests", "spending %s: the budget was already spent", key)
	require.Zero(t, f.adminRuns.Load())
}

type echoIn struct {
	Text string `json:"text"`
}

func (f *fixture) goSDKHandler(stateless bool) http.Handler {
	s := gomcp.NewServer(&gomcp.Implementation{Name: "refusals", Version: "1.0.0"}, nil)
	gomcp.AddTool(s, &gomcp.Tool{Name: "echo", Description: "Echoes its text."},
		func(_ context.Context, _ *gomcp.CallToolRequest, in echoIn) (*gomcp.CallToolResult, any, error) {
			f.echoRuns.Add(1)
			return &gomcp.CallToolResult{Content: []gomcp.Content{&gomcp.TextContent{Text: "echo: " + in.Text}}}, nil, nil
		})
	gomcp.AddTool(s, &gomcp.Tool{Name: "admin_tool", Description: "Needs admin:write."},
		func(_ context.Context, _ *gomcp.CallToolRequest, _ struct{}) (*gomcp.CallToolResult, any, error) {
			f.adminRuns.Add(1)
			return &gomcp.CallToolResult{Content: []gomcp.Content{&gomcp.TextContent{Text: "admin done"}}}, nil, nil
		})
	s.AddResource(&gomcp.Resource{URI: "file:///app/.env", Name: "env"},
		func(context.Context, *gomcp.ReadResourceRequest) (*gomcp.ReadResourceResult, error) {
			f.adminRuns.Add(1)
			return &gomcp.ReadResourceResult{Contents: []*gomcp.ResourceContents{{URI: "file:///app/.env", Text: "SECRET=1"}}}, nil
		})
	return gomcp.NewStreamableHTTPHandler(func(*http.Request) *gomcp.Server { return s },
		&gomcp.StreamableHTTPOptions{Stateless: stateless})
}

func (f *fixture) mcpGoHandler() http.Handler {
	s := mgserver.NewMCPServer("refusals", "1.0.0", mgserver.WithToolCapabilities(false), mgserver.WithResourceCapabilities(false, false))
	s.AddTool(mgmcp.NewTool("echo", mgmcp.WithDescription("Echoes its text."), mgmcp.WithString("text")),
		func(_ context.Context, req mgmcp.CallToolRequest) (*mgmcp.CallToolResult, error) {
			f.echoRuns.Add(1)
			return mgmcp.NewToolResultText("echo: " + req.GetString("text", "")), nil
		})
	s.AddTool(mgmcp.NewTool("admin_tool", mgmcp.WithDescription("Needs admin:write.")),
		func(context.Context, mgmcp.CallToolRequest) (*mgmcp.CallToolResult, error) {
			f.adminRuns.Add(1)
			return mgmcp.NewToolResultText("admin done"), nil
		})
	s.AddResource(mgmcp.NewResource("file:///app/.env", "env"),
		func(context.Context, mgmcp.ReadResourceRequest) ([]mgmcp.ResourceContents, error) {
			f.adminRuns.Add(1)
			return []mgmcp.ResourceContents{mgmcp.TextResourceContents{URI: "file:///app/.env", Text: "SECRET=1"}}, nil
		})
	return mgserver.NewStreamableHTTPServer(s)
}
