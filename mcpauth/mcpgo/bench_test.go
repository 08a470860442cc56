package mcpgo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/mcpgo"
	"github.com/mcpauth/mcpauth/scope"
)

// benchPolicy has 50 tools: even ones need documents:read, odd ones
// documents:delete.
func benchPolicy(b *testing.B) (*scope.Policy, []mcp.Tool) {
	var rules []scope.Rule
	var tools []mcp.Tool
	for i := range 50 {
		name := fmt.Sprintf("tool_%02d", i)
		s := "documents:read"
		if i%2 == 1 {
			s = "documents:delete"
		}
		rules = append(rules, scope.Rule{Match: name, Scopes: []string{s}})
		tools = append(tools, mcp.NewTool(name, mcp.WithDescription("a tool")))
	}
	p, err := scope.NewPolicy(scope.PolicyConfig{Tools: rules})
	require.NoError(b, err)
	return p, tools
}

func BenchmarkAdapter(b *testing.B) {
	policy, tools := benchPolicy(b)
	r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	r = r.WithContext(mcpauth.WithPrincipal(r.Context(), mcpauth.Principal{KeyID: "k", UserID: "alice", Scopes: []string{"documents:read", "notes:read"}}))
	ctx := mcpgo.HTTPContextFunc(context.Background(), r)
	msg := json.RawMessage(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"tool_10","arguments":{"q":"` + strings.Repeat("x", 1024) + `"}}}`)
	hook := mcpgo.RequestHook(policy)
	filter := mcpgo.ToolFilter(policy)

	b.Run("HTTPContextFunc", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = mcpgo.HTTPContextFunc(context.Background(), r)
			}
		})
	})
	b.Run("tools/call-1KiB/hook", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := hook(ctx, 1, msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("tools/call/filter-1", func(b *testing.B) {
		one := tools[10:11]
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if len(filter(ctx, one)) != 1 {
					b.Fatal("filtered out")
				}
			}
		})
	})
	b.Run("tools/list-50/filter", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if len(filter(ctx, tools)) != 25 {
					b.Fatal("wrong count")
				}
			}
		})
	})
}
