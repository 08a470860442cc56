package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/audit"
)

// discard is a BatchSink that throws events away.
type discard struct{}

func (discard) Record(context.Context, audit.Event) error        { return nil }
func (discard) RecordBatch(context.Context, []audit.Event) error { return nil }

// benchKeys is how many callers (key IDs) the benchmarks' events come from:
// the Writer's per-caller queue share is keyed on them.
const benchKeys = 64

// benchEvents returns benchEvent from benchKeys different keys.
func benchEvents() []audit.Event {
	evs := make([]audit.Event, benchKeys)
	for i := range evs {
		evs[i] = benchEvent()
		evs[i].KeyID = fmt.Sprintf("k8Hq2p%02d", i)
	}
	return evs
}

func benchEvent() audit.Event {
	return audit.Event{
		Time: time.Now(), RequestID: "req-0123456789", UserID: "user_42", KeyID: "k8Hq2pXz",
		Outcome: audit.OutcomeAllowed, Method: "tools/call", Tool: "search_docs", RPCID: "17",
		SessionID: "sess-abcdef", ProtocolVersion: "2025-06-18", Status: 200,
		Duration: 1200 * time.Microsecond, ClientIP: "203.0.113.7", UserAgent: "claude-code/1.0",
	}
}

// BenchmarkWriterEnqueue is the request-path cost of recording an event in
// BestEffort mode, from many goroutines at once, for events of 64 keys and
// for one key's flood (which the queue share mostly drops).
func BenchmarkWriterEnqueue(b *testing.B) {
	for _, c := range []struct {
		name string
		evs  []audit.Event
	}{{"keys=64", benchEvents()}, {"keys=1", []audit.Event{benchEvent()}}} {
		b.Run(c.name, func(b *testing.B) {
			w, err := audit.NewWriter(discard{}, &audit.WriterOptions{QueueSize: 65536, BatchSize: 1000})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					_ = w.Record(ctx, c.evs[i%len(c.evs)])
					i++
				}
			})
			b.StopTimer()
			_ = w.Close(ctx)
			s := w.Stats()
			b.ReportMetric(float64(s.Dropped)/float64(b.N), "dropped/op")
		})
	}
}

// BenchmarkWriterEnqueueAccepted measures only events that are queued (none
// dropped): the timer stops while the queue is flushed every 4096 events.
// The queue has twice that room, so that no key reaches its share.
func BenchmarkWriterEnqueueAccepted(b *testing.B) {
	const chunk = 4096
	w, err := audit.NewWriter(discard{}, &audit.WriterOptions{QueueSize: 2 * chunk, BatchSize: 1000, FlushInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	evs := benchEvents()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%chunk == chunk-1 {
			b.StopTimer()
			if err := w.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		_ = w.Record(ctx, evs[i%benchKeys])
	}
	b.StopTimer()
	_ = w.Close(ctx)
	if s := w.Stats(); s.Dropped != 0 {
		b.Fatalf("dropped %d", s.Dropped)
	}
}

// BenchmarkWriterBlockingPipeline is the throughput of the whole pipeline
// (enqueue, batching, a sink that discards) in Blocking mode: nothing is
// dropped, producers wait for the writer goroutine.
func BenchmarkWriterBlockingPipeline(b *testing.B) {
	w, err := audit.NewWriter(discard{}, &audit.WriterOptions{Mode: audit.Blocking, QueueSize: 8192, BatchSize: 1000})
	if err != nil {
		b.Fatal(err)
	}
	evs := benchEvents()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			_ = w.Record(ctx, evs[i%benchKeys])
			i++
		}
	})
	_ = w.Close(ctx)
	b.StopTimer()
	if s := w.Stats(); s.Dropped != 0 || s.Written != uint64(b.N) {
		b.Fatalf("stats %+v, want %d written", s, b.N)
	}
}

// BenchmarkWriterEnqueueParallelAccepted is BenchmarkWriterEnqueue with a
// queue large enough for every event, so that no event is dropped and every
// op is a real enqueue. The queue is sized to 2*b.N (so that no key reaches
// its share): run it with a fixed count, e.g. -benchtime=1000000x (above
// 2,000,000 it is skipped, to bound memory).
func BenchmarkWriterEnqueueParallelAccepted(b *testing.B) {
	if b.N > 2_000_000 {
		b.Skip("use -benchtime=Nx with N <= 2,000,000")
	}
	w, err := audit.NewWriter(discard{}, &audit.WriterOptions{QueueSize: 2*b.N + 1, BatchSize: 1000, FlushInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	evs := benchEvents()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			_ = w.Record(ctx, evs[i%benchKeys])
			i++
		}
	})
	b.StopTimer()
	_ = w.Close(ctx)
	if s := w.Stats(); s.Dropped != 0 || s.Written != uint64(b.N) {
		b.Fatalf("stats %+v, want %d written", s, b.N)
	}
}

var sinkID atomic.Value

func BenchmarkNewEventID(b *testing.B) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var id string
		for pb.Next() {
			id = audit.NewEventID()
		}
		sinkID.Store(id)
	})
}

// BenchmarkRedactArguments: typical tool arguments and a 1 MiB body of
// nested objects (the largest a middleware body limit would let through).
func BenchmarkRedactArguments(b *testing.B) {
	small := json.RawMessage(`{"query":"q3 report","limit":10,"auth":{"api_key":"mcp_live_123"},"tags":["a","b"]}`)
	var big bytes.Buffer
	big.WriteByte('[')
	for big.Len() < 1<<20 {
		if big.Len() > 1 {
			big.WriteByte(',')
		}
		big.WriteString(`{"id":12345,"name":"document name","password":"x","nested":{"token":"t","v":[1,2,3]}}`)
	}
	big.WriteByte(']')
	for _, c := range []struct {
		name string
		raw  json.RawMessage
	}{{"small", small}, {"1MiB", big.Bytes()}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.raw)))
			for b.Loop() {
				_ = audit.RedactArguments(c.raw, audit.DefaultRedactFields)
			}
		})
	}
}

// BenchmarkJSONSink is the JSON-lines sink writing to io.Discard.
func BenchmarkJSONSink(b *testing.B) {
	s := audit.NewJSONSink(io.Discard)
	ev := benchEvent()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_ = s.Record(ctx, ev)
	}
}
