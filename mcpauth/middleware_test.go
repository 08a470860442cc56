package mcpauth_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/store"
)

// whoami answers with the principal's user and key.
var whoami = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	p, ok := mcpauth.PrincipalFrom(r.Context())
	if !ok {
		http.Error(w, "no principal", 500)
		return
	}
	fmt.Fprintf(w, "%s %s", p.UserID, p.KeyID)
})

func do(t *testing.T, srv *httptest.Server, method string, headers map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	require.NoError(t, err)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(body)
}

func TestRequireResponses(t *testing.T) {
	t.Parallel()
	var inactive atomic.Bool
	f := newFixture(t, &mcpauth.Options{Users: store.UserCheckerFunc(func(context.Context, string) (bool, error) { return !inactive.Load(), nil })})
	k := f.create(t, "user-1", keyadmin.CreateOptions{})
	revoked := f.create(t, "user-1", keyadmin.CreateOptions{})
	require.NoError(t, f.mgr.Revoke(context.Background(), revoked.Key.ID))
	expired := f.create(t, "user-1", keyadmin.CreateOptions{ExpiresIn: time.Second})
	f.clock.Advance(time.Second)
	srv := httptest.NewServer(f.guard.Require(whoami))
	t.Cleanup(srv.Close)

	// MCP POSTs are answered with a JSON-RPC error carrying the request id,
	// so that clients keep the session (docs/refusals.md).
	invalid := `{"jsonrpc":"2.0","id":1,"error":{"code":-32010,"message":"The API key is invalid, expired or revoked.","data":{"error":"invalid_token"}}}`
	tests := []struct {
		name      string
		method    string
		headers   map[string]string
		status    int
		challenge string
		body      string
	}{
		{"bearer", "POST", map[string]string{"Authorization": "Bearer " + k.Raw}, 200, "", "user-1 " + k.Key.ID},
		{"x-api-key", "POST", map[string]string{"X-API-Key": k.Raw}, 200, "", "user-1 " + k.Key.ID},
		{"GET stream is authenticated too", "GET", map[string]string{}, 401, `Bearer realm="mcp"`, ""},
		{"DELETE session is authenticated too", "DELETE", map[string]string{}, 401, `Bearer realm="mcp"`, ""},
		{"no key", "POST", nil, 401, `Bearer realm="mcp"`, `{"jsonrpc":"2.0","id":1,"error":{"code":-32010,"message":"An API key is required. Send it as 'Authorization: Bearer <key>'.","data":{"error":"unauthorized"}}}`},
		{"GET without a key has a plain body", "GET", nil, 401, `Bearer realm="mcp"`, `{"error":"unauthorized","message":"An API key is required. Send it as 'Authorization: Bearer <key>'."}`},
		{"Basic is not a key", "POST", map[string]string{"Authorization": "Basic dXNlcjpwYXNz"}, 401, `Bearer realm="mcp"`,
			`{"jsonrpc":"2.0","id":1,"error":{"code":-32010,"message":"Only Bearer credentials are accepted; send the API key as 'Authorization: Bearer <key>'.","data":{"error":"unauthorized"}}}`},
		{"malformed", "POST", map[string]string{"Authorization": "Bearer sk-live-123"}, 401, `Bearer realm="mcp", error="invalid_token", error_description="The API key is invalid, expired or revoked."`, invalid},
		{"revoked", "POST", map[string]string{"Authorization": "Bearer " + revoked.Raw}, 401, `Bearer realm="mcp", error="invalid_token", error_description="The API key is invalid, expired or revoked."`, invalid},
		{"expired", "POST", map[string]string{"Authorization": "Bearer " + expired.Raw}, 401, `Bearer realm="mcp", error="invalid_token", error_description="The API key is invalid, expired or revoked."`, invalid},
		{"conflicting", "POST", map[string]string{"Authorization": "Bearer " + k.Raw, "X-API-Key": revoked.Raw}, 400, `Bearer realm="mcp", error="invalid_request", error_description="Send exactly one API key, in one header."`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, srv, tt.method, tt.headers)
			assert.Equal(t, tt.status, resp.StatusCode)
			assert.Equal(t, tt.challenge, resp.Header.Get("WWW-Authenticate"))
			if tt.body != "" {
				if strings.HasPrefix(tt.body, "{") {
					assert.JSONEq(t, tt.body, body)
				} else {
					assert.Equal(t, tt.body, body)
				}
			}
		})
	}

	// Keys in the query string are never accepted, and the answer says why.
	resp, err := srv.Client().Get(srv.URL + "/mcp?api_key=" + k.Raw + "&key=" + k.Raw)
	require.NoError(t, err)
	qb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 401, resp.StatusCode)
	assert.Contains(t, string(qb), "An API key in the URL is never accepted")
	assert.NotContains(t, string(qb), k.Raw)

	inactive.Store(true)
	resp, body := do(t, srv, "POST", map[string]string{"Authorization": "Bearer " + k.Raw})
	assert.Equal(t, 403, resp.StatusCode)
	assert.JSONEq(t, `{"jsonrpc":"2.0","id":1,"error":{"code":-32011,"message":"The account this API key belongs to is not active.","data":{"error":"account_inactive"}}}`, body)

	inactive.Store(false)
	f.store.broken.Store(true)
	fresh := f.create(t, "user-1", keyadmin.CreateOptions{})
	resp, body = do(t, srv, "POST", map[string]string{"Authorization": "Bearer " + fresh.Raw})
	assert.Equal(t, 503, resp.StatusCode)
	assert.NotContains(t, body, "hunter2")
	assert.NotContains(t, body, "10.1.2.3")
}

func TestErrorHandlerReplacesEveryResponse(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []error
	f := newFixture(t, &mcpauth.Options{
		Realm: "acme",
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			mu.Lock()
			got = append(got, err)
			mu.Unlock()
			resp := mcpauth.ResponseFor(err, "acme")
			if errors.Is(err, mcpauth.ErrInvalidKey) {
				resp.Message = "Create a new key at https://example.com/keys"
			}
			resp.Write(w)
		},
	})
	srv := httptest.NewServer(f.guard.Require(whoami))
	t.Cleanup(srv.Close)
	resp, body := do(t, srv, "POST", map[string]string{"Authorization": "Bearer mcp_x"})
	assert.Equal(t, 401, resp.StatusCode)
	assert.Equal(t, `Bearer realm="acme", error="invalid_token", error_description="The API key is invalid, expired or revoked."`, resp.Header.Get("WWW-Authenticate"))
	assert.Contains(t, body, "example.com/keys")
	resp, _ = do(t, srv, "POST", nil)
	assert.Equal(t, 401, resp.StatusCode)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, got, 2)
	assert.ErrorIs(t, got[0], apikey.ErrMalformedKey)
	assert.ErrorIs(t, got[1], mcpauth.ErrNoCredential)
}

func TestRealmOption(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &mcpauth.Options{Realm: "docs"})
	srv := httptest.NewServer(f.guard.Require(whoami))
	t.Cleanup(srv.Close)
	resp, _ := do(t, srv, "POST", nil)
	assert.Equal(t, `Bearer realm="docs"`, resp.Header.Get("WWW-Authenticate"))
}

// TestStreamingThroughMiddleware runs a server-sent-events handler behind
// Require over real HTTP and reads each event before the next is written,
// which only works if flushes reach the client.
func TestStreamingThroughMiddleware(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	k := f.create(t, "user-1", keyadmin.CreateOptions{})
	next := make(chan struct{})
	sse := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, isFlusher := w.(http.Flusher)
		rc := http.NewResponseController(w)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		for i := range 3 {
			fmt.Fprintf(w, "event: message\ndata: {\"n\":%d,\"flusher\":%t}\n\n", i, isFlusher)
			if err := rc.Flush(); err != nil {
				t.Errorf("ResponseController.Flush: %v", err)
				return
			}
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
		}
		if err := rc.SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
			t.Errorf("SetWriteDeadline through the middleware: %v", err)
		}
	})
	srv := httptest.NewServer(f.guard.Require(sse))
	t.Cleanup(srv.Close)
	req, err := http.NewRequest("GET", srv.URL, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+k.Raw)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	rd := bufio.NewReader(resp.Body)
	for i := range 3 {
		var data string
		for {
			line, err := rd.ReadString('\n')
			require.NoError(t, err)
			if strings.HasPrefix(line, "data: ") {
				data = strings.TrimSpace(strings.TrimPrefix(line, "data: "))
			}
			if line == "\n" {
				break
			}
		}
		var ev struct {
			N       int  `json:"n"`
			Flusher bool `json:"flusher"`
		}
		require.NoError(t, json.Unmarshal([]byte(data), &ev))
		assert.Equal(t, i, ev.N)
		assert.True(t, ev.Flusher)
		next <- struct{}{} // the handler writes the next event only now
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	srv := httptest.NewServer(f.guard.Health())
	t.Cleanup(srv.Close)
	resp, body := do(t, srv, "GET", nil)
	assert.Equal(t, 200, resp.StatusCode)
	assert.JSONEq(t, `{"status":"ok"}`, body)
	f.store.broken.Store(true)
	resp, body = do(t, srv, "GET", nil)
	assert.Equal(t, 503, resp.StatusCode)
	assert.JSONEq(t, `{"status":"unavailable"}`, body)
}

func TestPrincipalFrom(t *testing.T) {
	t.Parallel()
	_, ok := mcpauth.PrincipalFrom(context.Background())
	assert.False(t, ok)
	ctx := mcpauth.WithPrincipal(context.Background(), mcpauth.Principal{UserID: "u", Scopes: []string{"read"}})
	p, ok := mcpauth.PrincipalFrom(ctx)
	require.True(t, ok)
	assert.Equal(t, "u", p.UserID)
	assert.True(t, p.HasScope("read"))
	assert.False(t, p.HasScope("write"))
	// A wrong-typed value under a look-alike key is ignored, never a panic.
	type principalKey struct{}
	_, ok = mcpauth.PrincipalFrom(context.WithValue(context.Background(), principalKey{}, "x"))
	assert.False(t, ok)
}

func TestScopesFrom(t *testing.T) {
	t.Parallel()
	_, ok := mcpauth.ScopesFrom(context.Background())
	assert.False(t, ok)
	ctx := mcpauth.WithPrincipal(context.Background(), mcpauth.Principal{UserID: "u", Scopes: []string{"documents:*", "not a scope"}})
	set, ok := mcpauth.ScopesFrom(ctx)
	require.True(t, ok)
	assert.Equal(t, "documents:*", set.String(), "unparsable scopes grant nothing")

	f := newFixture(t, nil)
	k := f.create(t, "alice", keyadmin.CreateOptions{Scopes: []string{"read"}})
	var got string
	h := f.guard.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		set, _ := mcpauth.ScopesFrom(r.Context())
		got = set.String()
	}))
	r := httptest.NewRequest("POST", "/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	r.Header.Set("Authorization", "Bearer "+k.Raw)
	h.ServeHTTP(httptest.NewRecorder(), r)
	assert.Equal(t, "read", got)
}
