package gosdk_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/gosdk"
	"github.com/mcpauth/mcpauth/scope"
)

// benchPolicy has 50 tools: even ones need documents:read, odd ones
// documents:delete.
func benchPolicy(b *testing.B) (*scope.Policy, []*mcp.Tool) {
	var rules []scope.Rule
	var tools []*mcp.Tool
	for i := range 50 {
		name := fmt.Sprintf("tool_%02d", i)
		s := "documents:read"
		if i%2 == 1 {
			s = "documents:delete"
		}
		rules = append(rules, scope.Rule{Match: name, Scopes: []string{s}})
		tools = append(tools, &mcp.Tool{Name: name, Description: "a tool", InputSchema: map[string]any{"type": "object"}})
	}
	p, err := scope.NewPolicy(scope.PolicyConfig{Tools: rules})
	require.NoError(b, err)
	return p, tools
}

func benchArgs() json.RawMessage {
	return json.RawMessage(`{"q":"` + strings.Repeat("x", 1024) + `"}`)
}

func BenchmarkMiddleware(b *testing.B) {
	policy, tools := benchPolicy(b)
	extra := &mcp.RequestExtra{TokenInfo: gosdk.TokenInfo(mcpauth.Principal{KeyID: "k", UserID: "alice", Scopes: []string{"documents:read", "notes:read"}}, time.Now())}
	callResult := &mcp.CallToolResult{}
	listResult := &mcp.ListToolsResult{Tools: tools}
	next := func(_ context.Context, method string, _ mcp.Request) (mcp.Result, error) {
		if method == "tools/list" {
			return listResult, nil
		}
		return callResult, nil
	}
	call := &mcp.CallToolRequest{Params: &mcp.CallToolParamsRaw{Name: "tool_10", Arguments: benchArgs()}, Extra: extra}
	list := &mcp.ListToolsRequest{Params: &mcp.ListToolsParams{}, Extra: extra}
	for _, c := range []struct {
		name   string
		h      mcp.MethodHandler
		method string
		req    mcp.Request
	}{
		{"tools/call/none", next, "tools/call", call},
		{"tools/call/middleware", gosdk.Middleware(policy)(next), "tools/call", call},
		{"tools/list-50/none", next, "tools/list", list},
		{"tools/list-50/middleware", gosdk.Middleware(policy)(next), "tools/list", list},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := c.h(ctx, c.method, c.req); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkTokenInfo is Bridge's per-HTTP-request cost: the TokenInfo with
// the parsed scopes.
func BenchmarkTokenInfo(b *testing.B) {
	p := mcpauth.Principal{KeyID: "k", UserID: "alice", Scopes: []string{"documents:read", "notes:read"}}
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = gosdk.TokenInfo(p, now)
		}
	})
}
