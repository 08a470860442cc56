package mcpauth_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/ratelimit"
)

// batchOf joins n copies of a message made by msg(i) into a JSON-RPC batch.
func batchOf(n int, msg func(i int) string) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = msg(i)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func saveNote(i int) string {
	return `{"jsonrpc":"2.0","id":` + strconv.Itoa(i+1) + `,"method":"tools/call","params":{"name":"save_note","arguments":{"text":"x"}}}`
}

func searchCall(i int) string { return toolCall("search_documents", strconv.Itoa(i+1)) }

// TestRateLimitCountsEveryMessage is the regression test for finding 2 of
// the security issue: one batch of many tool calls spent one token.
func TestRateLimitCountsEveryMessage(t *testing.T) {
	t.Parallel()
	attacks := []struct {
		name      string
		first     string // spent before the attack
		body      string
		status    int
		remaining int // units left afterwards
	}{
		{"batch above the burst is refused whole", "", batchOf(11, saveNote), 429, 10},
		{"batch above what remains is refused whole", batchOf(5, saveNote), batchOf(6, saveNote), 429, 5},
		{"batch that fits spends one unit per call", "", batchOf(4, saveNote), 200, 6},
		{"batch above MaxBatchLength is refused before the limiter", "", batchOf(33, saveNote), 400, 10},
		{"notifications are counted too", "", batchOf(11, func(int) string { return `{"jsonrpc":"2.0","method":"notifications/progress","params":{}}` }), 429, 10},
		{"pings are free", "", batchOf(20, func(i int) string { return `{"jsonrpc":"2.0","id":` + strconv.Itoa(i) + `,"method":"ping"}` }), 200, 10},
	}
	for _, tc := range attacks {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, nil)
			lim := ratelimit.NewMemory(&ratelimit.MemoryOptions{Now: f.clock.Now})
			t.Cleanup(func() { _ = lim.Close(context.Background()) })
			g, err := mcpauth.New(f.store, &mcpauth.Options{Now: f.clock.Now, Peppers: []apikey.Pepper{testPepper},
				RateLimiter: lim, RatePolicy: &ratelimit.Policy{Default: ratelimit.Limit{Rate: 10, Per: time.Minute}}})
			require.NoError(t, err)
			t.Cleanup(func() { _ = g.Close(context.Background()) })
			f.guard, f.mgr = g, managerFor(t, g, f.store, f.clock.Now)
			k := f.create(t, "alice", keyadmin.CreateOptions{})
			h := &echo{}
			srv := httptest.NewServer(g.Require(h))
			t.Cleanup(srv.Close)
			if tc.first != "" {
				resp, _ := post(t, srv, k.Raw, tc.first)
				require.Equal(t, 200, resp.StatusCode)
			}
			before := h.calls.Load()
			resp, body := post(t, srv, k.Raw, tc.body)
			assert.Equal(t, tc.status, resp.StatusCode, body)
			if tc.status != 200 {
				assert.Equal(t, before, h.calls.Load(), "no message of a refused batch reaches the server")
			}
			if tc.status != 200 && strings.Contains(tc.body, `"id"`) {
				var elems []json.RawMessage
				require.NoError(t, json.Unmarshal([]byte(body), &elems), "a refused batch is answered with an array: %s", body)
			}
			d, err := lim.Allow(context.Background(), "k:"+k.Key.ID, ratelimit.Limit{Name: "default", Rate: 10, Per: time.Minute}, 0)
			require.NoError(t, err)
			assert.Equal(t, tc.remaining, d.Remaining)
		})
	}
}

func TestMaxBatchLength(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &mcpauth.Options{MaxBatchLength: 2, Policy: docsPolicy(t)})
	k := f.create(t, "alice", keyadmin.CreateOptions{Scopes: []string{"documents:read"}})
	h := &echo{}
	srv := httptest.NewServer(f.guard.Require(h))
	t.Cleanup(srv.Close)
	resp, body := post(t, srv, k.Raw, batchOf(3, searchCall))
	assert.Equal(t, 400, resp.StatusCode)
	var elems []struct {
		ID    int `json:"id"`
		Error struct {
			Code int `json:"code"`
			Data struct {
				Error string `json:"error"`
			} `json:"data"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &elems), body)
	require.Len(t, elems, 3)
	for i, e := range elems {
		assert.Equal(t, i+1, e.ID)
		assert.Equal(t, -32600, e.Error.Code)
		assert.Equal(t, "batch_too_large", e.Error.Data.Error)
	}
	assert.Zero(t, h.calls.Load())
	resp, _ = post(t, srv, k.Raw, batchOf(2, searchCall))
	assert.Equal(t, 200, resp.StatusCode)
	assert.EqualValues(t, 1, h.calls.Load())
}

// TestMcpHeadersMustMatchBody: a server or router that trusts the MCP
// 2026-07-28 Mcp-Method / Mcp-Name headers must see what the policy saw.
func TestMcpHeadersMustMatchBody(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &mcpauth.Options{Policy: docsPolicy(t)})
	k := f.create(t, "alice", keyadmin.CreateOptions{Scopes: []string{"documents:read"}})
	h := &echo{}
	srv := httptest.NewServer(f.guard.Require(h))
	t.Cleanup(srv.Close)
	search := toolCall("search_documents", "1")
	tests := []struct {
		name    string
		body    string
		headers [][2]string
		status  int
	}{
		{"matching headers", search, [][2]string{{"Mcp-Method", "tools/call"}, {"Mcp-Name", "search_documents"}}, 200},
		{"base64 name", search, [][2]string{{"Mcp-Method", "tools/call"}, {"Mcp-Name", "=?base64?c2VhcmNoX2RvY3VtZW50cw==?="}}, 200},
		{"no headers (older protocol)", search, nil, 200},
		{"name header names another tool", search, [][2]string{{"Mcp-Method", "tools/call"}, {"Mcp-Name", "delete_document"}}, 400},
		{"method header names another method", search, [][2]string{{"Mcp-Method", "tools/list"}}, 400},
		{"method in another case", search, [][2]string{{"Mcp-Method", "Tools/Call"}}, 400},
		{"two name headers", search, [][2]string{{"Mcp-Name", "search_documents"}, {"Mcp-Name", "delete_document"}}, 400},
		{"headers with a batch", "[" + search + "]", [][2]string{{"Mcp-Method", "tools/call"}}, 400},
		{"name header on a method without a name", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, [][2]string{{"Mcp-Method", "tools/list"}, {"Mcp-Name", "delete_document"}}, 400},
		{"resource uri", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"docs://documents/1"}}`, [][2]string{{"Mcp-Method", "resources/read"}, {"Mcp-Name", "docs://users/alice/api_keys"}}, 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest("POST", srv.URL, strings.NewReader(tc.body))
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+k.Raw)
			req.Header.Set("Content-Type", "application/json")
			for _, kv := range tc.headers {
				req.Header.Add(kv[0], kv[1])
			}
			before := h.calls.Load()
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, tc.status, resp.StatusCode)
			if tc.status != 200 {
				assert.Equal(t, before, h.calls.Load(), "the handler must not run")
			}
		})
	}
}

func TestRequestIDOnEveryResponse(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	k := f.create(t, "alice", keyadmin.CreateOptions{})
	srv := httptest.NewServer(f.guard.Require(&echo{}))
	t.Cleanup(srv.Close)
	for _, key := range []string{"", "mcp_bad", k.Raw} {
		resp, _ := post(t, srv, key, `{"jsonrpc":"2.0","id":1,"method":"ping"}`)
		assert.NotEmpty(t, resp.Header.Get("X-Request-Id"), "key %q", key)
	}
}
