package mcpauth_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
)

// TestBodyReadAfterTheHandlerReturned: the Guard gives the handler the
// inspected body from a pooled buffer. A reader that outlives the handler
// (a reverse proxy's transport writes the request body from its own
// goroutine, and may still be at it when the handler returns) must get
// net/http's error, never the bytes of the next request that has the
// buffer. Before the fix it read the next request's body: another user's.
func TestBodyReadAfterTheHandlerReturned(t *testing.T) {
	sink := audit.SinkFunc(func(context.Context, audit.Event) error { return nil })
	f := newFixture(t, &mcpauth.Options{Audit: sink}) // audit inspects POST bodies
	alice := f.create(t, "alice", keyadmin.CreateOptions{})
	bob := f.create(t, "bob", keyadmin.CreateOptions{})
	var kept io.Reader
	seen := map[string]string{}
	h := f.guard.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := mcpauth.PrincipalFrom(r.Context())
		if p.UserID == "alice" {
			kept = r.Body // read later, as a proxy's transport may
			return
		}
		// Alice's late read comes while Bob's request holds a buffer,
		// before Bob's handler reads it.
		late, err := io.ReadAll(kept)
		assert.ErrorContains(t, err, "invalid Read on closed Body")
		assert.Empty(t, string(late), "alice's body reader read another request's body")
		b, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		seen[p.UserID] = string(b)
	}))
	post := func(key, body string) int {
		r := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+key)
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	const bobsCall = `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"secret","arguments":{"q":"bob's private query"}}}`
	for range 20 { // the pool hands Bob the buffer Alice had almost always; 20 rounds make it certain
		kept = nil
		require.Equal(t, http.StatusOK, post(alice.Raw, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
		require.NotNil(t, kept, "alice's handler did not run")
		require.Equal(t, http.StatusOK, post(bob.Raw, bobsCall))
		require.Equal(t, bobsCall, seen["bob"], "bob's handler did not get his body")
	}
}
