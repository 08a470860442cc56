package audit_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/audit/audittest"
)

// memory is a concurrency-safe in-memory sink for tests.
type memory struct {
	mu     sync.Mutex
	events []audit.Event
}

func (m *memory) Record(_ context.Context, e audit.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, e)
	return nil
}

func (m *memory) all() []audit.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]audit.Event(nil), m.events...)
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func parseLines(t *testing.T, s string) []audit.Event {
	t.Helper()
	var out []audit.Event
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e audit.Event
		require.NoError(t, json.Unmarshal(sc.Bytes(), &e), "line %q", sc.Text())
		out = append(out, e)
	}
	require.NoError(t, sc.Err())
	return out
}

func TestConformanceJSONSink(t *testing.T) {
	audittest.Run(t, func(t *testing.T) audittest.Harness {
		var buf syncBuffer
		return audittest.Harness{
			Sink:   audit.NewJSONSink(&buf),
			Events: func(t *testing.T) []audit.Event { return parseLines(t, buf.String()) },
		}
	})
}

func TestConformanceSinkFunc(t *testing.T) {
	audittest.Run(t, func(t *testing.T) audittest.Harness {
		m := &memory{}
		return audittest.Harness{Sink: audit.SinkFunc(m.Record), Events: func(*testing.T) []audit.Event { return m.all() }}
	})
}

func TestConformanceFanout(t *testing.T) {
	audittest.Run(t, func(t *testing.T) audittest.Harness {
		m := &memory{}
		var buf syncBuffer
		f := audit.Fanout(m, audit.NewJSONSink(&buf))
		return audittest.Harness{Sink: f, Events: func(t *testing.T) []audit.Event {
			fromJSON := parseLines(t, buf.String())
			got := m.all()
			require.Len(t, fromJSON, len(got), "both sinks got every event")
			return got
		}}
	})
}

func TestConformanceWriter(t *testing.T) {
	for _, mode := range []audit.Mode{audit.BestEffort, audit.Blocking, audit.Strict} {
		t.Run(mode.String(), func(t *testing.T) {
			audittest.Run(t, func(t *testing.T) audittest.Harness {
				var buf syncBuffer
				w, err := audit.NewWriter(audit.NewJSONSink(&buf), &audit.WriterOptions{Mode: mode, BatchSize: 7})
				require.NoError(t, err)
				t.Cleanup(func() { _ = w.Close(context.Background()) })
				return audittest.Harness{Sink: w, Events: func(t *testing.T) []audit.Event {
					require.NoError(t, w.Flush(context.Background()))
					return parseLines(t, buf.String())
				}}
			})
		})
	}
}

func TestJSONRoundTripAndKeys(t *testing.T) {
	e := audittest.FullEvent("x1")
	b, err := json.Marshal(e)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	for _, k := range []string{
		audit.KeyTime, audit.KeyID, audit.KeyMethod, audit.KeyTool, audit.KeyResourceURI,
		audit.KeySessionID, audit.KeyRPCID, audit.KeyReason, audit.KeyStatus, audit.KeyArguments,
	} {
		assert.Contains(t, m, k)
	}
	assert.Equal(t, "tools/call", m["mcp.method.name"])
	assert.Equal(t, "delete_document", m["gen_ai.tool.name"])
	assert.Equal(t, "2026-03-14T09:39:26.535897Z", m["time"], "UTC, RFC 3339")
	var back audit.Event
	require.NoError(t, json.Unmarshal(b, &back))
	audittest.AssertEqual(t, e, back)

	// Empty fields are left out; invalid arguments become a string.
	b, err = json.Marshal(audit.Event{Time: audittest.Base, Arguments: json.RawMessage(`{not json`)})
	require.NoError(t, err)
	assert.JSONEq(t, `{"time":"2026-03-14T09:39:26.535897Z","gen_ai.tool.call.arguments":"{not json"}`, string(b))

	assert.Error(t, json.Unmarshal([]byte(`{"time":"yesterday"}`), &back))
	assert.Error(t, json.Unmarshal([]byte(`[1]`), &back))
}

func TestAttrs(t *testing.T) {
	got := map[string]slog.Value{}
	for _, a := range audittest.FullEvent("a1").Attrs() {
		got[a.Key] = a.Value
	}
	assert.Equal(t, "tools/call", got["mcp.method.name"].String())
	assert.Equal(t, "delete_document", got["gen_ai.tool.name"].String())
	assert.Equal(t, "docs://private/plan.md", got["mcp.resource.uri"].String())
	assert.Equal(t, "sess-0f9e", got["mcp.session.id"].String())
	assert.Equal(t, `"call-7"`, got["jsonrpc.request.id"].String())
	assert.Equal(t, "insufficient_scope", got["error.type"].String())
	assert.Equal(t, int64(403), got["http.response.status_code"].Int64())
	assert.Equal(t, 1234567*time.Nanosecond, got["mcpauth.duration_ns"].Duration())
	assert.Equal(t, slog.KindGroup, got["mcpauth.attributes"].Kind())
	assert.NotContains(t, got, "time")

	assert.Empty(t, audit.Event{}.Attrs(), "empty fields give no attributes")
}

func TestSlogSink(t *testing.T) {
	var buf syncBuffer
	s := audit.NewSlogSink(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	ctx := context.Background()
	cases := []struct {
		outcome audit.Outcome
		level   string
	}{
		{audit.OutcomeAllowed, "INFO"},
		{audit.OutcomeDenied, "WARN"},
		{audit.OutcomeUnauthenticated, "WARN"},
		{audit.OutcomeRateLimited, "WARN"},
		{audit.OutcomeError, "ERROR"},
		{"", "INFO"},
	}
	for _, c := range cases {
		e := audittest.FullEvent("s")
		e.Outcome = c.outcome
		require.NoError(t, s.Record(ctx, e))
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, len(cases))
	for i, c := range cases {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(lines[i]), &m))
		assert.Equal(t, c.level, m["level"])
		assert.Equal(t, "audit", m["msg"])
		assert.Equal(t, "2026-03-14T15:09:26.535897+05:30", m["time"], "the event's time")
		assert.Equal(t, "delete_document", m["gen_ai.tool.name"])
		assert.Equal(t, "k8Hq2pXzT4", m["mcpauth.key.id"])
	}

	// Disabled levels cost nothing and are not written.
	buf2 := &syncBuffer{}
	quiet := audit.NewSlogSink(slog.New(slog.NewJSONHandler(buf2, &slog.HandlerOptions{Level: slog.LevelWarn})))
	require.NoError(t, quiet.Record(ctx, audit.Event{Outcome: audit.OutcomeAllowed}))
	assert.Empty(t, buf2.String())
	require.NoError(t, quiet.Record(ctx, audit.Event{Outcome: audit.OutcomeDenied}))
	assert.Contains(t, buf2.String(), `"mcpauth.outcome":"denied"`)
	assert.NotNil(t, audit.NewSlogSink(nil))
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestJSONSinkWriteError(t *testing.T) {
	err := audit.NewJSONSink(failingWriter{}).Record(context.Background(), audit.Event{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "disk full")
}

func TestFanoutJoinsErrors(t *testing.T) {
	var calls int
	ok := audit.SinkFunc(func(context.Context, audit.Event) error { calls++; return nil })
	bad := audit.SinkFunc(func(context.Context, audit.Event) error { return errors.New("boom") })
	f := audit.Fanout(bad, ok, bad)
	err := f.Record(context.Background(), audit.Event{})
	require.Error(t, err)
	assert.Equal(t, 1, calls, "the good sink still got the event")
	err = f.RecordBatch(context.Background(), []audit.Event{{}, {}})
	require.Error(t, err)
	assert.Equal(t, 3, calls)
	require.NoError(t, audit.Fanout().Record(context.Background(), audit.Event{}))
}

func TestNewEventID(t *testing.T) {
	seen := make(map[string]bool)
	prev := ""
	for range 10000 {
		id := audit.NewEventID()
		require.Len(t, id, 20)
		require.False(t, seen[id])
		require.Greater(t, id, prev, "increasing within a process")
		for _, c := range id {
			require.True(t, strings.ContainsRune("0123456789abcdefghjkmnpqrstvwxyz", c), "alphabet: %q", id)
		}
		seen[id] = true
		prev = id
	}
}

func TestOutcomeValid(t *testing.T) {
	for _, o := range []audit.Outcome{audit.OutcomeAllowed, audit.OutcomeDenied, audit.OutcomeUnauthenticated, audit.OutcomeRateLimited, audit.OutcomeError} {
		assert.True(t, o.Valid(), o)
	}
	assert.False(t, audit.Outcome("ok").Valid())
	assert.False(t, audit.Outcome("").Valid())
}
