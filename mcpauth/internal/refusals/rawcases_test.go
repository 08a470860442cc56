package refusals_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runRaw checks the refusals no client sends, in mode m, and records the
// answers for docs/refusals.md.
func runRaw(t *testing.T, m mode) {
	t.Run("not JSON", func(t *testing.T) {
		f := newFixture(t, goSDKServer, m.mode)
		resp := rawPost(t, f.url, f.keys["good"], nil, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"`)
		code, msg := resp.rpcError()
		assert.Equal(t, http.StatusBadRequest, resp.status, resp.body)
		assert.Equal(t, -32700, code, resp.body)
		assert.Zero(t, f.echoRuns.Load())
		recordRaw("not JSON", m, fmt.Sprintf("HTTP %d, JSON-RPC %d %q", resp.status, code, msg))
	})
	for _, kind := range []serverKind{goSDKServer, mcpGoServer} {
		t.Run("Mcp-Name mismatch/"+string(kind), func(t *testing.T) { headerMismatch(t, kind, m) })
	}
	t.Run("batch", func(t *testing.T) { batch(t, m) })
}

func recordRaw(name string, m mode, summary string) {
	seen.mu.Lock()
	defer seen.mu.Unlock()
	seen.raw[name+"|"+m.name] = summary
}

// headerMismatch: protocol 2026-07-28 (SEP-2243) puts the method and the
// tool name in headers too; a server that routes or checks on the headers
// must not be led to run another tool than the body's. The attacker holds
// admin:write, so the policy alone would let admin_tool run: only the
// mismatch check stops it.
func headerMismatch(t *testing.T, kind serverKind, m mode) {
	attacks := []struct {
		name    string
		headers map[string]string
		body    string
	}{
		{"Mcp-Name names another tool", map[string]string{"Mcp-Method": "tools/call", "Mcp-Name": "echo"},
			`{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"admin_tool","arguments":{}}}`},
		{"Mcp-Method names another method", map[string]string{"Mcp-Method": "tools/list"},
			`{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"admin_tool","arguments":{}}}`},
		{"Mcp-Name differs in case", map[string]string{"Mcp-Method": "tools/call", "Mcp-Name": "Admin_Tool"},
			`{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"admin_tool","arguments":{}}}`},
	}
	f := newFixture(t, kind, m.mode)
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			h := map[string]string{"Mcp-Protocol-Version": "2026-07-28"}
			for k, v := range a.headers {
				h[k] = v
			}
			resp := rawPost(t, f.url, f.keys["admin"], h, a.body)
			code, msg := resp.rpcError()
			assert.Equal(t, http.StatusBadRequest, resp.status, resp.body)
			assert.Equal(t, -32600, code, resp.body)
			assert.Equal(t, "5", string(decodeRPC(t, []byte(resp.body)).ID), "the error carries the request id")
			assert.Zero(t, f.adminRuns.Load(), "admin_tool ran")
			if a.name == attacks[0].name {
				recordRaw("Mcp-Name mismatch ("+string(kind)+" server)", m, fmt.Sprintf("HTTP %d, JSON-RPC %d %q; the tool did not run", resp.status, code, msg))
			}
		})
	}
}

// initLegacy opens a session at protocol 2025-03-26, the last that allows
// JSON-RPC batches, and returns the headers its requests carry.
func initLegacy(t *testing.T, f *fixture) map[string]string {
	t.Helper()
	resp := rawPost(t, f.url, f.keys["good"], nil,
		`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	require.Equal(t, http.StatusOK, resp.status, resp.body)
	require.Contains(t, resp.body, `"protocolVersion":"2025-03-26"`)
	h := map[string]string{"Mcp-Session-Id": resp.header.Get("Mcp-Session-Id"), "Mcp-Protocol-Version": "2025-03-26"}
	require.NotEmpty(t, h["Mcp-Session-Id"])
	resp = rawPost(t, f.url, f.keys["good"], h, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	require.Equal(t, http.StatusAccepted, resp.status, resp.body)
	return h
}

// batch: the go-sdk server answers batches at protocol 2025-03-26 (it
// refuses them from 2025-06-18 on). An allowed batch is answered element by
// element; a batch with one refused element is refused as a whole, with an
// array holding one error per element that has an id, and nothing runs.
func batch(t *testing.T, m mode) {
	f := newFixture(t, goSDKServer, m.mode)
	h := initLegacy(t, f)

	t.Run("allowed", func(t *testing.T) {
		resp := rawPost(t, f.url, f.keys["good"], h, `[{"jsonrpc":"2.0","id":1,"method":"ping"},`+
			`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"in batch"}}}]`)
		require.Equal(t, http.StatusOK, resp.status, resp.body)
		msgs := resp.messages(t)
		require.Len(t, msgs, 2, resp.body)
		for _, raw := range msgs {
			msg := decodeRPC(t, raw)
			assert.Nil(t, msg.Error, "%s", raw)
		}
		assert.Equal(t, int64(1), f.echoRuns.Load(), "the batch's tool call ran")
	})

	attacks := []struct {
		name, body string
		ids        []string
	}{
		{"allowed ping, refused tools/call", `[{"jsonrpc":"2.0","id":3,"method":"ping"},` +
			`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"admin_tool","arguments":{}}}]`, []string{"3", "4"}},
		{"refused tools/call, allowed tools/call, notification", `[{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"admin_tool","arguments":{}}},` +
			`{"jsonrpc":"2.0","id":"b","method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}},` +
			`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}]`, []string{`"a"`, `"b"`}},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			echoes := f.echoRuns.Load()
			resp := rawPost(t, f.url, f.keys["good"], h, a.body)
			assert.True(t, resp.isArray(), "a batch gets an array: %s", resp.body)
			msgs := resp.messages(t)
			require.Len(t, msgs, len(a.ids), "one response per element with an id: %s", resp.body)
			var summary []string
			for i, raw := range msgs {
				msg := decodeRPC(t, raw)
				assert.Equal(t, a.ids[i], string(msg.ID), "%s", raw)
				if assert.NotNil(t, msg.Error, "element %s was answered, but the batch was refused: %s", a.ids[i], raw) {
					summary = append(summary, fmt.Sprintf("id %s: %d %q", msg.ID, msg.Error.Code, msg.Error.Message))
				}
			}
			assert.Zero(t, f.adminRuns.Load(), "admin_tool ran")
			assert.Equal(t, echoes, f.echoRuns.Load(), "a tool of the refused batch ran")
			if a.name == attacks[0].name {
				recordRaw("batch [ping, refused tools/call] (go-sdk server, 2025-03-26)", m,
					fmt.Sprintf("HTTP %d, array: %s; nothing ran", resp.status, strings.Join(summary, "; ")))
			}
		})
	}
}
