package mcpauth_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/store"
)

// Wrap an MCP handler so that only requests with a valid key reach it, and
// read the caller inside.
func ExampleGuard_Require() {
	keys := store.NewMemory()
	peppers := []apikey.Pepper{{Version: 1, Secret: []byte("load-me-from-a-secret-manager")}}
	guard, err := mcpauth.New(keys, &mcpauth.Options{Peppers: peppers})
	if err != nil {
		panic(err)
	}
	defer guard.Close(context.Background())
	// The host's key-management code issues keys with the same peppers.
	admin, err := keyadmin.New(keys, &keyadmin.Options{Peppers: peppers, OnChange: guard.Forget})
	if err != nil {
		panic(err)
	}
	defer admin.Close(context.Background())

	mcpHandler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := mcpauth.PrincipalFrom(r.Context())
		fmt.Fprintf(w, "hello %s", p.UserID)
	})
	mux := http.NewServeMux()
	mux.Handle("/mcp", guard.Require(mcpHandler))

	key, err := admin.Create(context.Background(), "user-42", keyadmin.CreateOptions{Scopes: []string{"documents:read"}})
	if err != nil {
		panic(err)
	}

	ping := `{"jsonrpc":"2.0","id":1,"method":"ping"}`
	req := httptest.NewRequest("POST", "/mcp", strings.NewReader(ping))
	req.Header.Set("Authorization", "Bearer "+key.Raw)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	fmt.Println(rec.Code, rec.Body.String())

	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("POST", "/mcp", strings.NewReader(ping)))
	fmt.Println(rec.Code, rec.Header().Get("WWW-Authenticate"))
	fmt.Print(rec.Body.String())
	// Output:
	// 200 hello user-42
	// 401 Bearer realm="mcp"
	// {"jsonrpc":"2.0","id":1,"error":{"code":-32010,"message":"An API key is required. Send it as 'Authorization: Bearer \u003ckey\u003e'.","data":{"error":"unauthorized"}}}
}
