package audit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/mcpauth/mcpauth/audit"
)

// A Writer takes events off the request path and writes them in batches;
// Close flushes what is queued.
func ExampleNewWriter() {
	w, err := audit.NewWriter(audit.NewJSONSink(os.Stdout), &audit.WriterOptions{Mode: audit.BestEffort})
	if err != nil {
		panic(err)
	}
	// In the middleware, after the response is written:
	_ = w.Record(context.Background(), audit.Event{
		Time:     time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC),
		ID:       "ev1",
		KeyID:    "k8Hq2pXz",
		UserID:   "user_42",
		Outcome:  audit.OutcomeDenied,
		Reason:   "insufficient_scope",
		Method:   "tools/call",
		Tool:     "delete_document",
		Status:   403,
		Duration: 2 * time.Millisecond,
	})
	// At shutdown:
	if err := w.Close(context.Background()); err != nil {
		panic(err)
	}
	fmt.Printf("%+v\n", w.Stats())
	// Output:
	// {"time":"2026-03-14T15:09:26Z","mcpauth.event.id":"ev1","user.id":"user_42","mcpauth.key.id":"k8Hq2pXz","mcpauth.outcome":"denied","error.type":"insufficient_scope","mcp.method.name":"tools/call","gen_ai.tool.name":"delete_document","http.response.status_code":403,"mcpauth.duration_ns":2000000}
	// {Written:1 Dropped:0 DroppedQueueFull:0 DroppedCallerShare:0 Failed:0 Rejected:0 Retries:0 Batches:1 Queued:0}
}

// Tool arguments are recorded only if the host opts in, with secrets
// redacted at any depth.
func ExampleRedactArguments() {
	args := json.RawMessage(`{"query":"q3 report","auth":{"api_key":"mcp_live_123"},"password":"hunter2"}`)
	fmt.Println(string(audit.RedactArguments(args, audit.DefaultRedactFields)))
	// Output:
	// {"query":"q3 report","auth":{"api_key":"[REDACTED]"},"password":"[REDACTED]"}
}

// Fanout sends each event to several sinks, for example a database and the
// application log.
func ExampleFanout() {
	count := 0
	counter := audit.SinkFunc(func(context.Context, audit.Event) error { count++; return nil })
	sink := audit.Fanout(counter, audit.NewJSONSink(os.Stdout))
	_ = sink.Record(context.Background(), audit.Event{Time: time.Unix(0, 0), KeyID: "k1", Action: audit.ActionRevoked})
	fmt.Println(count)
	// Output:
	// {"time":"1970-01-01T00:00:00Z","mcpauth.key.id":"k1","mcpauth.key.action":"revoked"}
	// 1
}
