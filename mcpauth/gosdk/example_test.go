package gosdk_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/gosdk"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/scope"
	"github.com/mcpauth/mcpauth/store"
)

type searchIn struct {
	Q string `json:"q"`
}

// An official-SDK server behind mcpauth, with the same policy at the HTTP
// layer and in the SDK: a read-only key sees and calls only the read tool.
func ExampleMiddleware() {
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

	server := mcp.NewServer(&mcp.Implementation{Name: "docs", Version: "1.0.0"}, nil)
	server.AddReceivingMiddleware(gosdk.Middleware(policy))
	for _, name := range []string{"search_documents", "delete_document"} {
		mcp.AddTool(server, &mcp.Tool{Name: name}, func(_ context.Context, req *mcp.CallToolRequest, in searchIn) (*mcp.CallToolResult, any, error) {
			p, ok := gosdk.Principal(req.Extra)
			if !ok {
				return nil, nil, errors.New("no principal")
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: name + " for " + p.UserID}}}, nil, nil
		})
	}
	handler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)
	srv := httptest.NewServer(guard.Require(gosdk.Bridge(handler)))
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
	hc := &http.Client{Transport: withHeader{"Authorization", "Bearer " + key.Raw, http.DefaultTransport}}
	client := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, nil)
	cs, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: srv.URL, HTTPClient: hc}, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer cs.Close()

	tools, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		log.Fatal(err)
	}
	for _, t := range tools.Tools {
		fmt.Println("visible:", t.Name)
	}
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "search_documents", Arguments: map[string]any{"q": "x"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Content[0].(*mcp.TextContent).Text)
	_, err = cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "delete_document", Arguments: map[string]any{}})
	// The go-sdk client wraps the 403's JSON-RPC message in its own text.
	fmt.Println(strings.Contains(err.Error(), `tool "delete_document" requires scope documents:delete`))
	// The session survives the refusal.
	_, err = cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "search_documents", Arguments: map[string]any{"q": "y"}})
	fmt.Println(err)
	// Output:
	// visible: search_documents
	// search_documents for alice
	// true
	// <nil>
}
