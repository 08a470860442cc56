package mcpgo_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http/httptest"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/mcpauth/mcpgo"
	"github.com/mcpauth/mcpauth/scope"
	"github.com/mcpauth/mcpauth/store"
)

// An mcp-go server behind mcpauth, with the same policy at the HTTP layer
// and in mcp-go (ServerOptions), served by NewHandler, which binds sessions
// to users: a read-only key sees and calls only the read tool.
func ExampleNewHandler() {
	policy, err := scope.NewPolicy(scope.PolicyConfig{Tools: []scope.Rule{
		{Match: "search_documents", Scopes: []string{"documents:read"}},
		{Match: "delete_document", Scopes: []string{"documents:delete"}},
	}})
	if err != nil {
		log.Fatal(err)
	}
	ks := store.NewMemory()
	guard, err := mcpauth.New(ks, &mcpauth.Options{Policy: policy})
	if err != nil {
		log.Fatal(err)
	}
	defer guard.Close(context.Background())

	s := server.NewMCPServer("docs", "1.0.0", mcpgo.ServerOptions(policy, nil)...)
	for _, name := range []string{"search_documents", "delete_document"} {
		s.AddTool(mcp.NewTool(name), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			p, ok := mcpgo.PrincipalFrom(ctx)
			if !ok {
				return nil, errors.New("no principal")
			}
			return mcp.NewToolResultText(name + " for " + p.UserID + ": " + req.GetString("q", "")), nil
		})
	}
	h, err := mcpgo.NewHandler(s, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer h.Shutdown(context.Background())
	srv := httptest.NewServer(guard.Require(h))
	defer srv.Close()

	admin, err := keyadmin.New(ks, &keyadmin.Options{OnChange: guard.Forget})
	if err != nil {
		panic(err)
	}
	defer admin.Close(context.Background())
	key, err := admin.Create(context.Background(), "alice", keyadmin.CreateOptions{Scopes: []string{"documents:read"}})
	if err != nil {
		log.Fatal(err)
	}
	c, err := client.NewStreamableHttpClient(srv.URL, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + key.Raw}))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		log.Fatal(err)
	}
	if _, err := c.Initialize(ctx, mcp.InitializeRequest{Params: mcp.InitializeParams{ClientInfo: mcp.Implementation{Name: "agent", Version: "1"}}}); err != nil {
		log.Fatal(err)
	}
	tools, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		log.Fatal(err)
	}
	for _, t := range tools.Tools {
		fmt.Println("visible:", t.Name)
	}
	res, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "search_documents", Arguments: map[string]any{"q": "x"}}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Content[0].(mcp.TextContent).Text)
	_, err = c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "delete_document", Arguments: map[string]any{}}})
	fmt.Println(err)
	// Output:
	// visible: search_documents
	// search_documents for alice: x
	// tool "delete_document" requires scope documents:delete
}
