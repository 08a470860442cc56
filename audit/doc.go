// Package audit records who did what through an MCP server, with which key,
// and how it ended, without slowing requests down.
//
// # Events
//
// An [Event] is one MCP message, one failed authentication or one key
// lifecycle action (created, rotated, revoked, expired key used). Its fields
// map to OpenTelemetry attribute names where the conventions have one
// (mcp.method.name, gen_ai.tool.name, mcp.resource.uri, mcp.session.id,
// jsonrpc.request.id, error.type, ...); see [Event.Attrs] and the Key...
// constants. Events never carry key material: a key appears by its public
// ID only. An event can stand for several messages of one request
// ([Event.Count], set by the middleware past its per-request bound). Tool
// arguments are not recorded unless the host opts in, and then
// go through [RedactArguments] with the fields to hide (at least
// [DefaultRedactFields]).
//
// # Sinks
//
// A [Sink] receives events: [NewSlogSink] logs them, [NewJSONSink] writes JSON
// lines, [Fanout] sends them to several sinks, [SinkFunc] adapts a function,
// and package audit/sqlaudit stores them in SQLite or PostgreSQL with
// queries, export, retention and tamper evidence. Sinks that write batches
// more cheaply implement [BatchSink].
//
// # Delivery modes
//
// A [Writer] sits between the request path and a sink: Record copies the
// event into a queue of fixed-size, pointer-free slots (which the garbage
// collector does not scan, however large the queue) and a single goroutine,
// woken once per batch rather than once per event, writes batches (by size
// and by time). The operator picks a [Mode]:
//
//   - BestEffort (default): Record never blocks; when the queue is full, or
//     the event's caller (key, else user, else client address) already
//     holds as many queued events as there are free slots, the event is
//     dropped. One caller alone can fill at most half the queue, so one
//     request's flood cannot push out other callers' events
//     (WriterOptions.UnsafeNoCallerShare turns this off). Drops are counted
//     exactly in [Writer.Stats], by reason. Enqueue costs no allocation.
//   - Blocking: Record waits for queue space, so a slow database slows
//     requests instead of losing events.
//   - Strict: Record returns once the event is written, or the sink's error,
//     so the middleware can answer 503 instead of serving an unaudited
//     request.
//
// A batch the sink refuses is retried with exponential backoff
// (WriterOptions.MaxRetries, RetryBackoff); after the last retry it is given
// up and counted in Stats.Failed (BestEffort and Blocking) or returned to
// every waiting Record (Strict). Dropped and given-up events are logged
// (WriterOptions.Logger, default slog.Default()): one Error line with
// counts and the key IDs that lost most, at once for the first loss and
// then at most once per LossLogInterval (10s), never with other event
// contents. A retried batch may reach a sink that had
// partly written it again; sqlaudit writes a batch in one transaction, so it
// does not.
//
// [Writer.Close] stops accepting events, writes everything queued and stops
// the goroutine: nothing is lost on a clean shutdown. [Writer.Stats] counts
// written, dropped, failed and rejected events; every event given to Record
// is in exactly one of those counts (or still queued).
//
// # Reading back
//
// Sinks that can list what they stored implement [Querier] ([Filter] in,
// [Page] out, newest first, with a cursor); audit/sqlaudit does.
//
// # Conformance
//
// Package audit/audittest holds the suite every sink that can read back its
// events should pass:
//
//	audittest.Run(t, func(t *testing.T) audittest.Harness { ... })
package audit
