package gosdk_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/adaptertest"
	"github.com/mcpauth/mcpauth/mcpauth/gosdk"
	"github.com/mcpauth/mcpauth/store"
)

// bareServer is a go-sdk server with no MCP-layer policy (no
// gosdk.Middleware): the HTTP-layer guard is its only defence, as when a
// server is wrapped the way the README's first example shows. Its tools
// record what reaches them.
type bareServer struct {
	server *mcp.Server
	calls  map[string]*atomic.Int32
	reads  map[string]*atomic.Int32 // resource reads by URI

	mu   sync.Mutex
	args []string // raw arguments every tool call received
}

func newBareServer() *bareServer {
	b := &bareServer{
		server: mcp.NewServer(&mcp.Implementation{Name: "docs", Version: "1"}, nil),
		calls:  map[string]*atomic.Int32{}, reads: map[string]*atomic.Int32{},
	}
	for _, name := range []string{"search_documents", "delete_document"} {
		n := new(atomic.Int32)
		b.calls[name] = n
		b.server.AddTool(&mcp.Tool{Name: name, InputSchema: map[string]any{"type": "object"}},
			func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				n.Add(1)
				b.mu.Lock()
				b.args = append(b.args, string(req.Params.Arguments))
				b.mu.Unlock()
				return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: name + " ran"}}}, nil
			})
	}
	for _, uri := range []string{"docs://documents/1", "docs://users/alice/api_keys"} {
		n := new(atomic.Int32)
		b.reads[uri] = n
		b.server.AddResource(&mcp.Resource{URI: uri, Name: uri}, func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			n.Add(1)
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: "secret"}}}, nil
		})
	}
	return b
}

func (b *bareServer) received() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.args...)
}

// eventSink keeps the audit events of tool calls.
type eventSink struct {
	mu     sync.Mutex
	events []audit.Event
}

func (s *eventSink) Record(_ context.Context, e audit.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, e)
	return nil
}

func (s *eventSink) toolEvents() []audit.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []audit.Event
	for _, e := range s.events {
		if e.Tool != "" {
			out = append(out, e)
		}
	}
	return out
}

// startBare serves a bareServer (stateful sessions) behind guard.Require
// with the test policy, auditing arguments.
func startBare(t *testing.T) (*fixture, *bareServer, *eventSink) {
	t.Helper()
	sink := &eventSink{}
	ks := store.NewMemory()
	guard, err := mcpauth.New(ks, &mcpauth.Options{Policy: testPolicy(t), Audit: sink, AuditArguments: true})
	require.NoError(t, err)
	bare := newBareServer()
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return bare.server }, nil)
	srv := httptest.NewServer(guard.Require(gosdk.Bridge(h)))
	t.Cleanup(func() {
		srv.Close()
		_ = guard.Close(context.Background())
	})
	return &fixture{srv: srv, keys: adaptertest.MustManager(t, ks, guard, nil)}, bare, sink
}

// TestAttackAmbiguousKeysOnGoSDK is issue 10 findings 1 and 9 on a real
// go-sdk server: bodies that spell a watched key twice, in another case,
// with a Unicode letter that folds to ASCII (U+017F for s), or escaped,
// sent with a documents:read key on an initialized session. Each must be
// refused before the handler: delete_document never runs, the blocked
// resource is never read, and no tool ever receives the hidden arguments.
func TestAttackAmbiguousKeysOnGoSDK(t *testing.T) {
	t.Parallel()

	f, bare, sink := startBare(t)
	key := f.key(t, "mallory", "documents:read")
	session := f.connect(t, key).ID()
	require.NotEmpty(t, session)

	// Control: the same server, key and session run an unambiguous call,
	// so a refusal below is the guard's, not a broken setup.
	code, body := f.post(t, key, session, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_documents","arguments":{"q":"ok"}}}`)
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, "search_documents ran")
	require.EqualValues(t, 1, bare.calls["search_documents"].Load())

	for _, a := range adaptertest.AmbiguousKeyAttacks {
		t.Run(a.Name, func(t *testing.T) {
			code, body := f.post(t, key, session, a.Body)
			assert.Equal(t, http.StatusBadRequest, code, body)
			var rpc struct {
				Error struct {
					Code int `json:"code"`
				} `json:"error"`
			}
			require.NoError(t, json.Unmarshal([]byte(body), &rpc), body)
			assert.Equal(t, -32600, rpc.Error.Code)
			assert.NotContains(t, body, "ran")
		})
	}
	assert.Zero(t, bare.calls["delete_document"].Load(), "delete_document ran")
	assert.EqualValues(t, 1, bare.calls["search_documents"].Load(), "only the control call ran")
	assert.Zero(t, bare.reads["docs://users/alice/api_keys"].Load(), "the blocked resource was read")
	received := bare.received()
	for _, args := range received {
		assert.NotContains(t, args, "DROP TABLE", "a tool received the hidden arguments")
	}
	for _, e := range sink.toolEvents() {
		if len(e.Arguments) > 0 {
			assert.Contains(t, received, string(e.Arguments), "the audit recorded arguments no tool received")
		}
	}
}

// TestAuditRecordsTheArgumentsTheToolReceived is issue 10 finding 9: with
// AuditArguments, the audit event holds exactly the arguments the go-sdk
// handed the tool, byte for byte (spacing and escapes included).
func TestAuditRecordsTheArgumentsTheToolReceived(t *testing.T) {
	t.Parallel()
	f, bare, sink := startBare(t)
	key := f.key(t, "alice", "documents:read")
	session := f.connect(t, key).ID()

	const args = `{ "q" : "tax\u0020report", "filters":{"year":2025,"tags":["a", "b"]} }`
	code, body := f.post(t, key, session, `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"arguments":`+args+`,"name":"search_documents"}}`)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, []string{args}, bare.received())

	require.Eventually(t, func() bool { return len(sink.toolEvents()) == 1 }, 5*time.Second, 10*time.Millisecond)
	e := sink.toolEvents()[0]
	assert.Equal(t, "search_documents", e.Tool)
	assert.Equal(t, args, string(e.Arguments))
}
