package mcpauth_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/store"
)

// Wrap an MCP handler so that only requests with a valid key reach it, and
// read the caller inside.
func ExampleGuard_Require() {
	guard, err := mcpauth.New(store.NewMemory(), &mcpauth.Options{
		Peppers: []mcpauth.Pepper{{Version: 1, Secret: []byte("load-me-from-a-secret-manager")}},
	})
	if err != nil {
		panic(err)
	}
	defer guard.Close(context.Background())

	mcpHandler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := mcpauth.PrincipalFrom(r.Context())
		fmt.Fprintf(w, "hello %s", p.UserID)
	})
	mux := http.NewServeMux()
	mux.Handle("/mcp", guard.Require(mcpHandler))

	key, err := guard.Manager().Create(context.Background(), "user-42", mcpauth.CreateOptions{Scopes: []string{"documents:read"}})
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

// Create a key: the raw key is returned once; the store keeps only its hash.
func ExampleManager_Create() {
	// Tests inject a deterministic source; production uses crypto/rand (the default).
	seeded := rand.NewChaCha8([32]byte{1})
	guard, _ := mcpauth.New(store.NewMemory(), &mcpauth.Options{Rand: seeded})
	key, err := guard.Manager().Create(context.Background(), "user-42", mcpauth.CreateOptions{Name: "laptop"})
	if err != nil {
		panic(err)
	}
	parsed, _ := mcpauth.ParseKey(key.Raw, "")
	fmt.Println(len(key.Raw), parsed.ID == key.Key.ID, len(key.Key.Hash))
	fmt.Println(key) // printing the result never shows the raw key
	// Output:
	// 46 true 32
	// mcpauth.CreatedKey{ID:iiw1H3lRmyFr}
}

// Check a string with the key format's checksum, without any store.
func ExampleParseKey() {
	_, err := mcpauth.ParseKey("mcp_0000000000000000000000000000000000000000aa", "")
	fmt.Println(err)
	// Output:
	// mcpauth: malformed key: bad checksum
}

// The expression secret scanners use to find leaked keys.
func ExampleScannerRegexp() {
	fmt.Println(mcpauth.ScannerRegexp(""))
	re := regexp.MustCompile(mcpauth.ScannerRegexp("acme"))
	fmt.Println(re.MatchString("token=acme_0000000000000000000000000000000000000000aa"))
	// Output:
	// \bmcp_[0-9A-Za-z]{42}\b
	// true
}
