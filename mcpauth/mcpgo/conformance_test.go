package mcpgo_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/mcpauth/adaptertest"
	"github.com/mcpauth/mcpauth/mcpauth/mcpgo"
)

// TestAdapterConformance runs the suite every adapter runs, on an mcp-go
// server wired as the package documents (ServerOptions and NewHandler).
func TestAdapterConformance(t *testing.T) {
	adaptertest.Run(t, func(t *testing.T) adaptertest.Server {
		s := server.NewMCPServer("conformance", "1", append(mcpgo.ServerOptions(adaptertest.Policy(t), nil), server.WithToolCapabilities(true))...)
		calls := map[string]*atomic.Int32{}
		for _, name := range adaptertest.Tools {
			n := new(atomic.Int32)
			calls[name] = n
			s.AddTool(mcp.NewTool(name), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				n.Add(1)
				p, _ := mcpgo.PrincipalFrom(ctx)
				return mcp.NewToolResultText(name + " for " + p.UserID), nil
			})
		}
		h, err := mcpgo.NewHandler(s, &mcpgo.HandlerOptions{Sessions: &mcpgo.SessionOptions{Manager: &server.InsecureStatefulSessionIdManager{}}})
		require.NoError(t, err)
		t.Cleanup(func() { _ = h.Shutdown(context.Background()) })
		// mcp-go answers every refusal of a request hook with -32600.
		return adaptertest.Server{Handler: h, Calls: func(tool string) int { return int(calls[tool].Load()) }, RefusalCode: mcp.INVALID_REQUEST}
	})
}
