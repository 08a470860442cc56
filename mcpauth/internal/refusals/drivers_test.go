package refusals_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mgclient "github.com/mark3labs/mcp-go/client"
	mgtransport "github.com/mark3labs/mcp-go/client/transport"
	mgmcp "github.com/mark3labs/mcp-go/mcp"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	gomcp "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"
)

// step is one client action. Auth is the Authorization header of the
// step's POSTs ("" for none); GET and DELETE (the SSE stream, the session
// end) always carry the connect step's key, as a real client with one key
// would. The JSON form is what ts/client.mjs reads.
type step struct {
	Step   string         `json:"step"`
	Op     string         `json:"op"` // connect, callTool, readResource (client.mjs has more)
	Auth   string         `json:"auth,omitempty"`
	Params map[string]any `json:"params,omitempty"`
}

// outcome is what the client returned for one step.
type outcome struct {
	Step string `json:"step"`
	// OK: the call returned a result (no error).
	OK bool `json:"ok"`
	// IsError: a tools/call result with isError set.
	IsError bool `json:"isError,omitempty"`
	// Text: the result's text, or the error's message.
	Text string `json:"message,omitempty"`
	// ErrClass: the error's type as the client exposes it
	// ("*jsonrpc.Error", "StreamableHTTPError", ...).
	ErrClass string `json:"errorClass,omitempty"`
	// Code: the error's code as the client exposes it (JSON-RPC code, or
	// HTTP status for the TypeScript transport error); 0 when none.
	Code int `json:"code,omitempty"`
	// Closed: the go-sdk client reported mcp.ErrConnectionClosed.
	Closed bool `json:"closed,omitempty"`
	// Result is the TypeScript client's raw result.
	Result json.RawMessage `json:"result,omitempty"`
}

// authTransport sets each POST's Authorization header from the current
// step, and that of GET and DELETE from the connect step.
type authTransport struct {
	post, session atomic.Pointer[string]
}

func (a *authTransport) set(auth string, connect bool) {
	a.post.Store(&auth)
	if connect {
		a.session.Store(&auth)
	}
}

func (a *authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	auth := a.post.Load()
	if r.Method != http.MethodPost {
		auth = a.session.Load()
	}
	r = r.Clone(r.Context())
	r.Header.Del("Authorization")
	if auth != nil && *auth != "" {
		r.Header.Set("Authorization", *auth)
	}
	return http.DefaultTransport.RoundTrip(r)
}

func stepContext(t *testing.T) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), 15*time.Second)
}

func runGoSDK(t *testing.T, url, version string, steps []step) []outcome {
	auth := &authTransport{}
	c := gomcp.NewClient(&gomcp.Implementation{Name: "refusals-go-sdk", Version: "1.0.0"}, nil)
	var cs *gomcp.ClientSession
	defer func() {
		if cs != nil {
			_ = cs.Close()
		}
	}()
	out := make([]outcome, 0, len(steps))
	for _, s := range steps {
		auth.set(s.Auth, s.Op == "connect")
		ctx, cancel := stepContext(t)
		o := outcome{Step: s.Step}
		var err error
		switch s.Op {
		case "connect":
			tr := &gomcp.StreamableClientTransport{Endpoint: url, HTTPClient: &http.Client{Transport: auth}, MaxRetries: -1}
			cs, err = c.Connect(ctx, tr, &gomcp.ClientSessionOptions{ProtocolVersion: version})
			if err == nil {
				o.Text = "protocol " + cs.InitializeResult().ProtocolVersion
			}
		case "callTool":
			var res *gomcp.CallToolResult
			res, err = cs.CallTool(ctx, &gomcp.CallToolParams{Name: s.Params["name"].(string), Arguments: s.Params["arguments"]})
			if err == nil {
				o.IsError, o.Text = res.IsError, goSDKText(res.Content)
			}
		case "readResource":
			var res *gomcp.ReadResourceResult
			res, err = cs.ReadResource(ctx, &gomcp.ReadResourceParams{URI: s.Params["uri"].(string)})
			if err == nil && len(res.Contents) > 0 {
				o.Text = res.Contents[0].Text
			}
		default:
			t.Fatalf("unknown op %q", s.Op)
		}
		cancel()
		if err != nil {
			o.Text, o.Closed = err.Error(), errors.Is(err, gomcp.ErrConnectionClosed)
			var je *jsonrpc.Error
			if errors.As(err, &je) {
				o.ErrClass, o.Code = "*jsonrpc.Error", int(je.Code)
			} else {
				o.ErrClass = "error"
			}
		} else {
			o.OK = true
		}
		out = append(out, o)
		if s.Op == "connect" && err != nil {
			break
		}
	}
	return out
}

func goSDKText(content []gomcp.Content) string {
	var b strings.Builder
	for _, c := range content {
		if tc, ok := c.(*gomcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// runMCPGo runs the mcp-go client; version "" is its default (2026-07-28,
// found with server/discover).
func runMCPGo(t *testing.T, url, version string, steps []step) []outcome {
	auth := &authTransport{}
	c, err := mgclient.NewStreamableHttpClient(url, mgtransport.WithHTTPBasicClient(&http.Client{Transport: auth}))
	require.NoError(t, err)
	defer func() { _ = c.Close() }()
	out := make([]outcome, 0, len(steps))
	for _, s := range steps {
		auth.set(s.Auth, s.Op == "connect")
		ctx, cancel := stepContext(t)
		o := outcome{Step: s.Step}
		var err error
		switch s.Op {
		case "connect":
			if err = c.Start(ctx); err == nil {
				var res *mgmcp.InitializeResult
				res, err = c.Initialize(ctx, mgmcp.InitializeRequest{Params: mgmcp.InitializeParams{
					ProtocolVersion: version,
					ClientInfo:      mgmcp.Implementation{Name: "refusals-mcp-go", Version: "1.0.0"},
				}})
				if err == nil {
					o.Text = "protocol " + res.ProtocolVersion
				}
			}
		case "callTool":
			var res *mgmcp.CallToolResult
			res, err = c.CallTool(ctx, mgmcp.CallToolRequest{Params: mgmcp.CallToolParams{Name: s.Params["name"].(string), Arguments: s.Params["arguments"]}})
			if err == nil {
				o.IsError, o.Text = res.IsError, mcpGoText(res.Content)
			}
		case "readResource":
			var res *mgmcp.ReadResourceResult
			res, err = c.ReadResource(ctx, mgmcp.ReadResourceRequest{Params: mgmcp.ReadResourceParams{URI: s.Params["uri"].(string)}})
			if err == nil && len(res.Contents) > 0 {
				if tc, ok := res.Contents[0].(mgmcp.TextResourceContents); ok {
					o.Text = tc.Text
				}
			}
		default:
			t.Fatalf("unknown op %q", s.Op)
		}
		cancel()
		if err != nil {
			o.Text, o.ErrClass = err.Error(), mcpGoErrClass(err)
		} else {
			o.OK = true
		}
		out = append(out, o)
		if s.Op == "connect" && err != nil {
			break
		}
	}
	return out
}

func mcpGoText(content []mgmcp.Content) string {
	var b strings.Builder
	for _, c := range content {
		if tc, ok := c.(mgmcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// mcpGoErrClass names the mcp-go error: its typed errors, or "error" for
// the errors.New(message) it makes of JSON-RPC codes it does not know.
func mcpGoErrClass(err error) string {
	var authErr *mgtransport.AuthorizationRequiredError
	var terr *mgtransport.Error
	switch {
	case errors.As(err, &authErr):
		return "*transport.AuthorizationRequiredError"
	case errors.As(err, &terr):
		return "*transport.Error"
	}
	return "error"
}

// tsDir is the node project of the TypeScript client.
const tsDir = "ts"

func runTS(t *testing.T, url string, steps []step) []outcome {
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(tsDir, "node_modules", "@modelcontextprotocol", "sdk", "package.json"))
	}
	if err != nil {
		if os.Getenv("MCPAUTH_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatalf("TypeScript client: node or ts/node_modules missing (run .ci/node.sh): %v", err)
		}
		t.Skipf("TypeScript client: node or ts/node_modules missing (source .ci/node.sh): %v", err)
	}
	scenario, err := json.Marshal(map[string]any{"url": url, "steps": steps})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "client.mjs", "-")
	cmd.Dir = tsDir
	cmd.Stdin = bytes.NewReader(scenario)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	require.NoError(t, err, "node client.mjs: %s", stderr.String())
	var out []outcome
	dec := json.NewDecoder(bytes.NewReader(stdout))
	for {
		var line struct {
			outcome
			Code any `json:"code"`
		}
		if err := dec.Decode(&line); err == io.EOF {
			break
		} else {
			require.NoError(t, err, "client.mjs output: %s", stdout)
		}
		o := line.outcome
		if n, ok := line.Code.(float64); ok {
			o.Code = int(n)
		}
		if o.OK {
			o.IsError, o.Text = tsResult(o.Result)
		}
		out = append(out, o)
	}
	return out
}

// tsResult reads isError and the text of a TypeScript client's result.
func tsResult(raw json.RawMessage) (bool, string) {
	var r struct {
		IsError bool `json:"isError"`
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
		Contents []struct {
			Text string `json:"text"`
		} `json:"contents"`
		ProtocolVersion string `json:"protocolVersion"`
	}
	if json.Unmarshal(raw, &r) != nil {
		return false, string(raw)
	}
	var b strings.Builder
	if r.ProtocolVersion != "" {
		fmt.Fprintf(&b, "protocol %s", r.ProtocolVersion)
	}
	for _, c := range r.Content {
		b.WriteString(c.Text)
	}
	for _, c := range r.Contents {
		b.WriteString(c.Text)
	}
	return r.IsError, b.String()
}
