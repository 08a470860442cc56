package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/store"
)

// The test binary is also the stdio MCP server of the stdio tests: with
// GATEWAY_TEST_STDIO_SERVER=1 it serves fixtureServer on stdin/stdout.
func TestMain(m *testing.M) {
	if os.Getenv("GATEWAY_TEST_STDIO_SERVER") == "1" {
		err := fixtureServer(nil).Run(context.Background(), &mcp.StdioTransport{})
		if err != nil {
			fmt.Fprintln(os.Stderr, "fixture:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type textIn struct {
	Text string `json:"text,omitempty"`
}

// fixtureServer has tools that show what process and state a caller
// reaches: pid, remember/recall (state kept in the process), getenv, crash
// (exits with status 3), sleep (waits text milliseconds) and echo. Every
// call that reaches a handler is appended, with the PID, to the file
// $GATEWAY_TEST_RUNLOG (if set) and counted in runs (if not nil).
func fixtureServer(runs *sync.Map) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "fixture", Version: "1"}, nil)
	var mu sync.Mutex
	var memory string
	ran := func(name string) {
		if runs != nil {
			n, _ := runs.LoadOrStore(name, new(atomic.Int32))
			n.(*atomic.Int32).Add(1)
		}
		if path := os.Getenv("GATEWAY_TEST_RUNLOG"); path != "" {
			f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
			if err == nil {
				fmt.Fprintf(f, "%s %d\n", name, os.Getpid())
				f.Close()
			}
		}
	}
	text := func(s string) *mcp.CallToolResult {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
	}
	tool := func(name string, h func(ctx context.Context, req *mcp.CallToolRequest, in textIn) string) {
		mcp.AddTool(s, &mcp.Tool{Name: name}, func(ctx context.Context, req *mcp.CallToolRequest, in textIn) (*mcp.CallToolResult, any, error) {
			ran(name)
			return text(h(ctx, req, in)), nil, nil
		})
	}
	tool("pid", func(context.Context, *mcp.CallToolRequest, textIn) string { return fmt.Sprint(os.Getpid()) })
	tool("remember", func(_ context.Context, _ *mcp.CallToolRequest, in textIn) string {
		mu.Lock()
		defer mu.Unlock()
		memory = in.Text
		return "ok"
	})
	tool("recall", func(context.Context, *mcp.CallToolRequest, textIn) string {
		mu.Lock()
		defer mu.Unlock()
		return memory
	})
	tool("getenv", func(_ context.Context, _ *mcp.CallToolRequest, in textIn) string { return os.Getenv(in.Text) })
	tool("crash", func(context.Context, *mcp.CallToolRequest, textIn) string { os.Exit(3); return "" })
	tool("echo", func(_ context.Context, _ *mcp.CallToolRequest, in textIn) string { return in.Text })
	tool("secret", func(context.Context, *mcp.CallToolRequest, textIn) string { return "the secret" })
	tool("sleep", func(ctx context.Context, _ *mcp.CallToolRequest, in textIn) string {
		d, _ := time.ParseDuration(in.Text)
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
		return "slept"
	})
	return s
}

// testPolicy lets "tools:basic" call every fixture tool but "secret",
// which needs "tools:secret".
const testPolicy = `{"tools": [
	{"match": "secret", "scopes": ["tools:secret"]},
	{"match": "*", "scopes": ["tools:basic"]}
]}`

// gw is a gateway under test with its key store, audit events and log.
type gw struct {
	t      testing.TB
	srv    *Server
	url    string // the MCP endpoint
	base   string
	keys   *store.Memory
	mgr    *keyadmin.Manager
	events *eventLog
	log    *syncBuffer
	dir    string
}

type eventLog struct {
	mu     sync.Mutex
	events []audit.Event
}

func (l *eventLog) Record(_ context.Context, e audit.Event) error {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
	return nil
}

func (l *eventLog) all() []audit.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]audit.Event(nil), l.events...)
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// stdioConfig runs this test binary as the stdio server.
func stdioConfig(t *testing.T) StdioConfig {
	exe, err := os.Executable()
	require.NoError(t, err)
	return StdioConfig{
		Command: []string{exe, "-test.run=^$"},
		Env:     map[string]string{"GATEWAY_TEST_STDIO_SERVER": "1", "GATEWAY_TEST_RUNLOG": filepath.Join(t.TempDir(), "runs")},
	}
}

// startGateway serves cfg (Validate is called here) with a memory key
// store and an in-memory audit sink behind an httptest server. The
// environment it reads has MCPAUTH_PEPPER and PATH.
func startGateway(t testing.TB, cfg Config, mutate ...func(*Deps)) *gw {
	t.Helper()
	g := &gw{t: t, keys: store.NewMemory(), events: &eventLog{}, log: &syncBuffer{}, dir: t.TempDir()}
	if cfg.Policy.File == "" {
		cfg.Policy.File = filepath.Join(g.dir, "policy.json")
		require.NoError(t, os.WriteFile(cfg.Policy.File, []byte(testPolicy), 0o600))
	}
	require.NoError(t, cfg.Validate())
	env := map[string]string{"MCPAUTH_PEPPER": "1:gateway-test-pepper-0123456789", "PATH": os.Getenv("PATH")}
	d := Deps{
		Keys: g.keys, AuditSink: g.events,
		Logger: slog.New(slog.NewJSONHandler(g.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Getenv: func(k string) string { return env[k] },
	}
	for _, m := range mutate {
		m(&d)
	}
	srv, err := New(&cfg, d)
	require.NoError(t, err)
	peppers, err := cfg.Peppers(d.Getenv)
	require.NoError(t, err)
	g.mgr, err = keyadmin.New(g.keys, &keyadmin.Options{Peppers: peppers})
	require.NoError(t, err)
	g.srv = srv
	hs := httptest.NewServer(srv.Handler())
	g.base, g.url = hs.URL, hs.URL+cfg.Path
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		require.NoError(t, srv.Close(ctx))
		_ = g.mgr.Close(ctx)
	})
	return g
}

// key issues a key for user with scopes.
func (g *gw) key(user string, scopes ...string) string {
	k, err := g.mgr.Create(context.Background(), user, keyadmin.CreateOptions{Scopes: scopes, ExpiresIn: time.Hour})
	require.NoError(g.t, err)
	return k.Raw
}

// withHeaders adds headers to every request.
type withHeaders struct {
	h    http.Header
	base http.RoundTripper
}

func (w withHeaders) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range w.h {
		r.Header[k] = v
	}
	return w.base.RoundTrip(r)
}

// connect opens an MCP session through the gateway with key (and extra
// headers: "Name: value").
func (g *gw) connect(key string, extra ...string) *mcp.ClientSession {
	g.t.Helper()
	h := http.Header{"Authorization": {"Bearer " + key}}
	for _, e := range extra {
		name, value, _ := strings.Cut(e, ": ")
		h.Add(name, value)
	}
	c := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "1"}, nil)
	tr := &mcp.StreamableClientTransport{Endpoint: g.url, HTTPClient: &http.Client{Transport: withHeaders{h, http.DefaultTransport}}, MaxRetries: -1}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs, err := c.Connect(ctx, tr, nil)
	require.NoError(g.t, err)
	g.t.Cleanup(func() { _ = cs.Close() })
	return cs
}

// call calls a tool and returns its text, or the error.
func call(t *testing.T, cs *mcp.ClientSession, tool, text string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: map[string]any{"text": text}})
	if err != nil {
		return "", err
	}
	if res.IsError {
		var b strings.Builder
		for _, c := range res.Content {
			if tc, ok := c.(*mcp.TextContent); ok {
				b.WriteString(tc.Text)
			}
		}
		return "", fmt.Errorf("tool error: %s", b.String())
	}
	return res.Content[0].(*mcp.TextContent).Text, nil
}

// mustCall is call that fails the test on error.
func mustCall(t *testing.T, cs *mcp.ClientSession, tool, text string) string {
	t.Helper()
	out, err := call(t, cs, tool, text)
	require.NoError(t, err)
	return out
}

// runLog reads the stdio fixture's record of the calls that reached it.
func runLog(t *testing.T, cfg StdioConfig) string {
	b, err := os.ReadFile(cfg.Env["GATEWAY_TEST_RUNLOG"])
	if os.IsNotExist(err) {
		return ""
	}
	require.NoError(t, err)
	return string(b)
}

// httpFixture is fixtureServer over streamable HTTP, recording the headers
// of every request that reaches it.
type httpFixture struct {
	url     string
	runs    *sync.Map
	mu      sync.Mutex
	seen    []http.Header
	methods []string
}

func startHTTPFixture(t *testing.T, stateless bool) *httpFixture {
	f := &httpFixture{runs: &sync.Map{}}
	s := fixtureServer(f.runs)
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{Stateless: stateless})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.seen = append(f.seen, r.Header.Clone())
		f.methods = append(f.methods, r.Method)
		f.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	f.url = hs.URL + "/mcp"
	return f
}

func (f *httpFixture) ran(tool string) int32 {
	n, ok := f.runs.Load(tool)
	if !ok {
		return 0
	}
	return n.(*atomic.Int32).Load()
}

func (f *httpFixture) headers() []http.Header {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]http.Header(nil), f.seen...)
}

// post sends one raw JSON-RPC POST and returns status and body.
func post(t testing.TB, url, key, sid, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, string(b)
}

func nopBody(s string) io.ReadCloser { return io.NopCloser(strings.NewReader(s)) }

// sawGET reports whether a GET (an event stream) reached the fixture.
func (f *httpFixture) sawGET() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.methods {
		if m == http.MethodGet {
			return true
		}
	}
	return false
}
