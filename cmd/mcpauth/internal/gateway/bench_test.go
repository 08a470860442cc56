package gateway

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
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

// The gateway's performance against the same upstream reached directly,
// with one load generator (load below) for both, interleaved round by
// round. docs/BENCHMARKS.md has the figures and the command:
//
//	MCPAUTH_GATEWAY_BENCH=1 go test ./cmd/mcpauth/internal/gateway -run TestGatewayThroughput -v -count=1
//
// It is skipped otherwise: it takes about a minute and wants an idle
// machine.

const benchCall = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}`

// load sends benchCall from conc goroutines for d and returns the
// requests completed and their latencies.
func load(t testing.TB, url, key string, conc int, d time.Duration) (int, []time.Duration) {
	tr := &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var mu sync.Mutex
	var lat []time.Duration
	var failed atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, 4096)
			for time.Now().Before(deadline) {
				req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(benchCall))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", "application/json, text/event-stream")
				req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
				if key != "" {
					req.Header.Set("Authorization", "Bearer "+key)
				}
				start := time.Now()
				res, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK || !strings.Contains(string(b), "hello") {
					failed.Add(1)
					continue
				}
				mine = append(mine, time.Since(start))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Errorf("%d requests failed", n)
	}
	return len(lat), lat
}

func percentile(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), lat...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(float64(len(s)-1)*p)]
}

// benchUpstreams are the upstreams measured: the go-sdk's stateless
// streamable server with one tool that returns at once (CPU only), the same
// with a tool that waits 2ms as a database or API call would, and a handler
// answering a fixed JSON body (the gateway's worst case: an upstream that
// costs nothing, so the proxy hop is all there is).
func benchUpstreams(t testing.TB) map[string]string {
	s := mcp.NewServer(&mcp.Implementation{Name: "bench", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "echo"}, func(_ context.Context, _ *mcp.CallToolRequest, in textIn) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
	})
	sdk := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true}))
	slow := mcp.NewServer(&mcp.Implementation{Name: "bench-io", Version: "1"}, nil)
	mcp.AddTool(slow, &mcp.Tool{Name: "echo"}, func(_ context.Context, _ *mcp.CallToolRequest, in textIn) (*mcp.CallToolResult, any, error) {
		time.Sleep(2 * time.Millisecond) // a database or API call
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
	})
	io2 := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return slow }, &mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true}))
	fixed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hello"}]}}`)
	}))
	t.Cleanup(sdk.Close)
	t.Cleanup(fixed.Close)
	t.Cleanup(io2.Close)
	return map[string]string{"go-sdk": sdk.URL + "/mcp", "fixed": fixed.URL + "/mcp", "go-sdk+2ms": io2.URL + "/mcp"}
}

// benchGateway is a gateway in front of upstream as an operator would run
// it: the test policy, the default rate limit raised out of the way,
// best-effort audit into a sink that keeps nothing, and the access log
// formatted as JSON (to io.Discard).
func benchGateway(t testing.TB, upstream string) (url, key string) {
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.json")
	require.NoError(t, os.WriteFile(policy, []byte(testPolicy), 0o600))
	cfg := Config{Upstream: UpstreamConfig{URL: upstream, PrincipalHeaders: PrincipalHeaders{UserID: "X-MCP-User"}}, Policy: PolicyConfig{File: policy}}
	cfg.RateLimit.Default = LimitConfig{Rate: 1 << 30, Per: Duration(time.Minute)}
	require.NoError(t, cfg.Validate())
	keys := store.NewMemory()
	discard := audit.SinkFunc(func(context.Context, audit.Event) error { return nil })
	env := map[string]string{"MCPAUTH_PEPPER": "1:gateway-bench-pepper-0123456789"}
	srv, err := New(&cfg, Deps{Keys: keys, AuditSink: discard, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Getenv: func(k string) string { return env[k] }})
	require.NoError(t, err)
	peppers, _ := cfg.Peppers(func(k string) string { return env[k] })
	mgr, err := keyadmin.New(keys, &keyadmin.Options{Peppers: peppers})
	require.NoError(t, err)
	k, err := mgr.Create(context.Background(), "bench", keyadmin.CreateOptions{Scopes: []string{"tools:basic"}, ExpiresIn: time.Hour})
	require.NoError(t, err)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		_ = srv.Close(context.Background())
		_ = mgr.Close(context.Background())
	})
	return hs.URL + "/mcp", k.Raw
}

func TestGatewayThroughput(t *testing.T) {
	if os.Getenv("MCPAUTH_GATEWAY_BENCH") == "" {
		t.Skip("set MCPAUTH_GATEWAY_BENCH=1 to measure (about a minute)")
	}
	const rounds, conc, per = 5, 16, 2 * time.Second
	ups := benchUpstreams(t)
	for _, name := range []string{"go-sdk+2ms", "go-sdk", "fixed"} {
		gwURL, key := benchGateway(t, ups[name])
		load(t, ups[name], "", conc, 300*time.Millisecond) // warm up both
		load(t, gwURL, key, conc, 300*time.Millisecond)
		var dn, gn int
		var dlat, glat []time.Duration
		for r := range rounds {
			n, l := load(t, ups[name], "", conc, per)
			dn, dlat = dn+n, append(dlat, l...)
			m, l2 := load(t, gwURL, key, conc, per)
			gn, glat = gn+m, append(glat, l2...)
			t.Logf("%s round %d: direct %.0f req/s, gateway %.0f req/s, ratio %.3f", name, r+1, float64(n)/per.Seconds(), float64(m)/per.Seconds(), float64(m)/float64(n))
		}
		secs := float64(rounds) * per.Seconds()
		t.Logf("%s upstream, %d connections: direct %.0f req/s (p50 %v, p99 %v); gateway %.0f req/s (p50 %v, p99 %v); ratio %.3f; added p50 %v, p99 %v",
			name, conc, float64(dn)/secs, percentile(dlat, .5), percentile(dlat, .99), float64(gn)/secs, percentile(glat, .5), percentile(glat, .99),
			float64(gn)/float64(dn), percentile(glat, .5)-percentile(dlat, .5), percentile(glat, .99)-percentile(dlat, .99))
	}
}

// BenchmarkStdioRequest is one tools/call through the gateway to a stdio
// server on an open session: the gateway's per-request cost plus the pipe
// round trip and the fixture's own work.
func BenchmarkStdioRequest(b *testing.B) {
	exe, err := os.Executable()
	require.NoError(b, err)
	g := startBenchStdio(b, exe)
	cs := g.connect(g.key("bench", "tools:basic"))
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "x"}}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStdioSessionStart is a new session: initialize through the
// gateway, which starts a process, and the first answer.
func BenchmarkStdioSessionStart(b *testing.B) {
	exe, err := os.Executable()
	require.NoError(b, err)
	g := startBenchStdio(b, exe)
	key := g.key("bench", "tools:basic")
	for b.Loop() {
		status, h, _ := post(b, g.url, key, "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"b","version":"1"}}}`)
		if status != http.StatusOK {
			b.Fatal(status)
		}
		req, _ := http.NewRequest(http.MethodDelete, g.url, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Mcp-Session-Id", h.Get("Mcp-Session-Id"))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		res.Body.Close()
	}
}

func startBenchStdio(b *testing.B, exe string) *gw {
	sc := StdioConfig{Command: []string{exe, "-test.run=^$"}, Env: map[string]string{"GATEWAY_TEST_STDIO_SERVER": "1"}, MaxProcessesPerUser: 32}
	cfg := Config{Stdio: sc}
	cfg.RateLimit.Disabled = true
	cfg.Log.Requests = new(bool)
	return startGateway(b, cfg)
}

// BenchmarkStdioDirect is BenchmarkStdioRequest's peer: the same client
// call to the same stdio server, started by the client itself (the go-sdk's
// CommandTransport), with no gateway.
func BenchmarkStdioDirect(b *testing.B) {
	exe, err := os.Executable()
	require.NoError(b, err)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = []string{"GATEWAY_TEST_STDIO_SERVER=1"}
	c := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil)
	ctx := context.Background()
	cs, err := c.Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
	require.NoError(b, err)
	defer cs.Close()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "x"}}); err != nil {
			b.Fatal(err)
		}
	}
}
