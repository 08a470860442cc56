package gosdk_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpauth/mcpauth/mcpauth/adaptertest"
	"github.com/mcpauth/mcpauth/mcpauth/gosdk"
)

// TestAdapterConformance runs the suite every adapter runs, on a go-sdk
// server wired as the package documents (Middleware and Bridge).
func TestAdapterConformance(t *testing.T) {
	adaptertest.Run(t, func(t *testing.T) adaptertest.Server {
		s := mcp.NewServer(&mcp.Implementation{Name: "conformance", Version: "1"}, nil)
		s.AddReceivingMiddleware(gosdk.Middleware(adaptertest.Policy(t)))
		calls := map[string]*atomic.Int32{}
		for _, name := range adaptertest.Tools {
			n := new(atomic.Int32)
			calls[name] = n
			mcp.AddTool(s, &mcp.Tool{Name: name}, func(_ context.Context, req *mcp.CallToolRequest, _ empty) (*mcp.CallToolResult, empty, error) {
				n.Add(1)
				p, _ := gosdk.Principal(req.Extra)
				return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: name + " for " + p.UserID}}}, empty{}, nil
			})
		}
		h := gosdk.Bridge(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
		return adaptertest.Server{Handler: h, Calls: func(tool string) int { return int(calls[tool].Load()) }}
	})
}
