package mcpgo_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/adaptertest"
	"github.com/mcpauth/mcpauth/mcpauth/mcpgo"
	"github.com/mcpauth/mcpauth/store"
)

// bareServer is an mcp-go server with no MCP-layer policy (no
// mcpgo.ServerOptions hooks): the HTTP-layer guard is its only defence, as
// when a server is wrapped the way the README's first example shows. Its
// tools record what reaches them.
type bareServer struct {
	server *server.MCPServer
	calls  map[string]*atomic.Int32
	reads  map[string]*atomic.Int32 // resource reads by URI

	mu   sync.Mutex
	args []string // raw arguments every tool call received
}

func newBareServer() *bareServer {
	b := &bareServer{
		server: server.NewMCPServer("docs", "1", server.WithToolCapabilities(true), server.WithResourceCapabilities(true, true)),
		calls:  map[string]*atomic.Int32{}, reads: map[string]*atomic.Int32{},
	}
	for _, name := range []string{"search_documents", "delete_document"} {
		n := new(atomic.Int32)
		b.calls[name] = n
		b.server.AddTool(mcp.NewTool(name), func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			n.Add(1)
			b.mu.Lock()
			b.args = append(b.args, string(req.Params.RawArguments))
			b.mu.Unlock()
			return mcp.NewToolResultText(name + " ran"), nil
		})
	}
	for _, uri := range []string{"docs://documents/1", "docs://users/alice/api_keys"} {
		n := new(atomic.Int32)
		b.reads[uri] = n
		b.server.AddResource(mcp.NewResource(uri, uri), func(_ context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
			n.Add(1)
			return []mcp.ResourceContents{mcp.TextResourceContents{URI: req.Params.URI, Text: "secret"}}, nil
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

// startBare serves a bareServer (stateful sessions bound to their user)
// behind guard.Require with the test policy, auditing arguments.
func startBare(t *testing.T) (*fixture, *bareServer, *eventSink) {
	t.Helper()
	sink := &eventSink{}
	ks := store.NewMemory()
	guard, err := mcpauth.New(ks, &mcpauth.Options{Policy: testPolicy(t), Audit: sink, AuditArguments: true})
	require.NoError(t, err)
	bare := newBareServer()
	sessions, err := mcpgo.NewSessions(&mcpgo.SessionOptions{Manager: &server.InsecureStatefulSessionIdManager{}})
	require.NoError(t, err)
	h := sessions.Require(server.NewStreamableHTTPServer(bare.server,
		server.WithHTTPContextFunc(mcpgo.HTTPContextFunc), server.WithSessionIdManagerResolver(sessions)))
	srv := httptest.NewServer(guard.Require(h))
	t.Cleanup(func() {
		srv.Close()
		_ = guard.Close(context.Background())
	})
	return &fixture{srv: srv, keys: adaptertest.MustManager(t, ks, guard, nil)}, bare, sink
}

// TestAttackAmbiguousKeysOnMCPGo is issue 10 findings 1 and 9 on a real
// mcp-go server, whose encoding/json matches keys case-insensitively with
// Unicode folding (U+017F is an s) and keeps the last duplicate: bodies
// that spell a watched key twice, in another case, with a folding rune
// (escaped or raw UTF-8), sent with a documents:read key on an initialized
// session. Each must be refused before the handler: delete_document never
// runs, the blocked resource is never read, and no tool ever receives the
// hidden arguments.
func TestAttackAmbiguousKeysOnMCPGo(t *testing.T) {
	t.Parallel()

	f, bare, sink := startBare(t)
	key := f.key(t, "mallory", "documents:read")
	c, err := f.connect(t, key, mcp.ProtocolVersion20251125, "")
	require.NoError(t, err)
	session := c.GetSessionId()
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
// AuditArguments, the audit event holds exactly the arguments mcp-go handed
// the tool (CallToolParams.RawArguments), byte for byte.
func TestAuditRecordsTheArgumentsTheToolReceived(t *testing.T) {
	t.Parallel()
	f, bare, sink := startBare(t)
	key := f.key(t, "alice", "documents:read")
	c, err := f.connect(t, key, mcp.ProtocolVersion20251125, "")
	require.NoError(t, err)

	const args = `{ "q" : "tax\u0020report", "filters":{"year":2025,"tags":["a", "b"]} }`
	code, body := f.post(t, key, c.GetSessionId(), `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"arguments":`+args+`,"name":"search_documents"}}`)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, []string{args}, bare.received())

	require.Eventually(t, func() bool { return len(sink.toolEvents()) == 1 }, 5*time.Second, 10*time.Millisecond)
	e := sink.toolEvents()[0]
	assert.Equal(t, "search_documents", e.Tool)
	assert.Equal(t, args, string(e.Arguments))
}
