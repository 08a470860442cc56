package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSplitCommand(t *testing.T) {
	cases := []struct {
		in   string
		want []string
		err  bool
	}{
		{"node server.js stdio", []string{"node", "server.js", "stdio"}, false},
		{`npx -y "@scope/pkg" '--root=/a b'`, []string{"npx", "-y", "@scope/pkg", "--root=/a b"}, false},
		{`a\ b "c\"d" ''`, []string{"a b", `c"d`, ""}, false},
		{`  spaced   out  `, []string{"spaced", "out"}, false},
		{`"open`, nil, true},
		{`'open`, nil, true},
		{"   ", nil, true},
	}
	for _, c := range cases {
		got, err := splitCommand(c.in)
		if c.err {
			assert.Error(t, err, c.in)
			continue
		}
		require.NoError(t, err, c.in)
		assert.Equal(t, c.want, got, c.in)
	}
}

func TestGatewayConfigErrors(t *testing.T) {
	h := newHarness(t)
	require.Equal(t, exitOK, h.run("migrate").code)
	cfg := filepath.Join(h.dir, "gw.toml")
	require.NoError(t, os.WriteFile(cfg, []byte("[upstream]\nurl = \"http://127.0.0.1:1/mcp\"\n[rate_limit]\nby = \"team\"\n"), 0o600))
	redisCfg := filepath.Join(h.dir, "gw-redis.toml")
	require.NoError(t, os.WriteFile(redisCfg, []byte("[upstream]\nurl = \"http://127.0.0.1:1/mcp\"\n[rate_limit]\nredis_url_env = \"GW_REDIS_URL\"\n"), 0o600))
	urlCfg := filepath.Join(h.dir, "gw-url.toml")
	require.NoError(t, os.WriteFile(urlCfg, []byte("[upstream]\nurl = \"http://127.0.0.1:1/mcp\"\n[rate_limit]\nredis_url_env = \"redis://:hunter2-secret@cache:6379/0\"\n"), 0o600))
	const badURL = "redis://:hunter2-secret@127.0.0.1:port/0"
	cases := []struct {
		name string
		args []string
		want string
		env  map[string]string
	}{
		{"no upstream", []string{"gateway"}, "gateway config: upstream.url: no upstream", nil},
		{"file field", []string{"gateway", "--config", cfg}, "gateway config: rate_limit.by: want key or user", nil},
		{"flag", []string{"gateway", "--upstream", "http://a/", "--listen", "nope"}, "gateway config: listen: want host:port", nil},
		{"stdio quote", []string{"gateway", "--stdio", `node "x`}, "--stdio: unterminated double quote", nil},
		{"missing file", []string{"gateway", "--config", filepath.Join(h.dir, "none.toml")}, "no such file", nil},
		{"both", []string{"gateway", "--upstream", "http://a/", "--stdio", "node x"}, "name one upstream", nil},
		{"redis variable unset", []string{"gateway", "--config", redisCfg}, "gateway config: rate_limit.redis_url_env: $GW_REDIS_URL is not set", nil},
		{"the file's variable wins", []string{"gateway", "--config", redisCfg}, "$GW_REDIS_URL is not set", map[string]string{"MCPAUTH_GATEWAY_REDIS": "redis://127.0.0.1:1/0"}},
		{"redis URL in the file", []string{"gateway", "--config", urlCfg}, "gateway config: rate_limit.redis_url_env: want the name of an environment variable", nil},
		{"bad MCPAUTH_GATEWAY_REDIS", []string{"gateway", "--upstream", "http://a/"}, "gateway config: rate_limit.redis_url_env: $MCPAUTH_GATEWAY_REDIS is not a valid redis:// or rediss:// URL", map[string]string{"MCPAUTH_GATEWAY_REDIS": badURL}},
		{"bad URL in the file's variable", []string{"gateway", "--config", redisCfg}, "$GW_REDIS_URL is not a valid", map[string]string{"GW_REDIS_URL": badURL}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				h.env[k] = v
			}
			defer func() {
				for k := range c.env {
					delete(h.env, k)
				}
			}()
			r := h.run(c.args...)
			assert.Equal(t, exitUsage, r.code, r.stderr)
			assert.Contains(t, r.stderr, c.want)
			assert.NotContains(t, r.stderr+r.stdout, "hunter2-secret")
		})
	}
}

// lockedBuffer is a bytes.Buffer for a gateway's stderr, read while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type bearer struct{ key string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.key)
	return http.DefaultTransport.RoundTrip(r)
}

// The gateway command end to end: a key from "keys create" works through
// it, the policy file's refusal holds, SIGHUP applies a changed policy and
// refuses a broken one (keeping the old), and SIGTERM stops it cleanly.
func TestGatewayCommand(t *testing.T) {
	h := newHarness(t)
	require.Equal(t, exitOK, h.run("migrate").code)
	r := h.run("--json", "keys", "create", "--user", "alice", "--scope", "tools:basic", "--expires", "never")
	require.Equal(t, exitOK, r.code, r.stderr)
	var created struct {
		Raw string `json:"raw_key"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &created))

	var calls sync.Map
	srv := mcp.NewServer(&mcp.Implementation{Name: "up", Version: "1"}, nil)
	for _, name := range []string{"echo", "secret"} {
		mcp.AddTool(srv, &mcp.Tool{Name: name}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
			calls.Store(name, true)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: name}}}, nil, nil
		})
	}
	up := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, &mcp.StreamableHTTPOptions{Stateless: true}))
	defer up.Close()

	policy := filepath.Join(h.dir, "policy.json")
	writePolicy := func(s string) { require.NoError(t, os.WriteFile(policy, []byte(s), 0o600)) }
	writePolicy(`{"tools": [{"match": "secret", "scopes": ["tools:secret"]}, {"match": "*", "scopes": ["tools:basic"]}]}`)
	cfg := filepath.Join(h.dir, "gw.toml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf("listen = \"127.0.0.1:0\"\n[policy]\nfile = %q\n[log]\nformat = \"json\"\n", policy)), 0o600))

	hup := make(chan os.Signal, 1)
	old := gatewayReload
	gatewayReload = func(context.Context) <-chan os.Signal { return hup }
	defer func() { gatewayReload = old }()

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var stderr lockedBuffer
	var stdout strings.Builder
	code := make(chan int, 1)
	go func() {
		code <- runWith(ctx, []string{"--db", h.db, "gateway", "--config", cfg, "--upstream", up.URL}, &stdout, &stderr,
			func(k string) string { return h.env[k] }, deps{now: time.Now, rand: h.rnd, sleep: sleepCtx})
	}()
	addrRE := regexp.MustCompile(`"msg":"gateway serving","addr":"([^"]+)"`)
	var addr string
	require.Eventually(t, func() bool {
		m := addrRE.FindStringSubmatch(stderr.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	}, 10*time.Second, 10*time.Millisecond, stderr.String())

	client := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: "http://" + addr + "/mcp", HTTPClient: &http.Client{Transport: bearer{created.Raw}}}, nil)
	require.NoError(t, err)
	defer cs.Close()
	callTool := func(name string) error {
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name})
		return err
	}
	require.NoError(t, callTool("echo"))
	require.Error(t, callTool("secret"))
	_, ran := calls.Load("secret")
	assert.False(t, ran, "the refused tool ran")

	writePolicy(`{"tools": [{"match": "*", "scopez": []}]}`)
	hup <- os.Interrupt // any value: the command only waits for one
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "configuration reload refused") }, 10*time.Second, 10*time.Millisecond)
	require.Error(t, callTool("secret"), "a broken reload changed the policy")

	writePolicy(`{"tools": [{"match": "*", "scopes": ["tools:basic"]}]}`)
	hup <- os.Interrupt
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), `"msg":"configuration reloaded"`) }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, callTool("secret"))

	stop()
	select {
	case c := <-code:
		assert.Equal(t, exitOK, c, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("the gateway did not stop")
	}
	assert.Contains(t, stderr.String(), `"msg":"gateway stopped"`)
	assert.NotContains(t, stderr.String(), created.Raw)

	// Its audit events are in the database, chained.
	r = h.run("audit", "verify")
	assert.Equal(t, exitOK, r.code, r.stderr)
	r = h.run("--json", "audit", "query", "--user", "alice")
	assert.Contains(t, r.stdout, "secret")
}
