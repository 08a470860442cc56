// Package audittest is the conformance suite for audit.Sink
// implementations. Every sink that can read back what it recorded calls Run
// from its tests:
//
//	func TestConformance(t *testing.T) {
//		audittest.Run(t, func(t *testing.T) audittest.Harness {
//			s := newSink(t)
//			return audittest.Harness{Sink: s, Events: func(t *testing.T) []audit.Event { return readAll(t, s) }}
//		})
//	}
//
// newSink must return an empty sink each time. BatchSink is tested when the
// sink implements it.
package audittest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/audit"
)

// Harness is a sink under test and a way to read back what it recorded.
type Harness struct {
	Sink audit.Sink
	// Events returns every event recorded so far, in any order. It is only
	// called after the Record calls it should see have returned.
	Events func(t *testing.T) []audit.Event
}

// Run runs the suite. newSink is called once per subtest.
func Run(t *testing.T, newSink func(t *testing.T) Harness) {
	t.Helper()
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, newSink(t)) })
	t.Run("Minimal", func(t *testing.T) { testMinimal(t, newSink(t)) })
	t.Run("Text", func(t *testing.T) { testText(t, newSink(t)) })
	t.Run("Batch", func(t *testing.T) { testBatch(t, newSink(t)) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, newSink(t)) })
}

// Base is a fixed instant with microsecond precision (what every supported
// database keeps) in a non-UTC zone.
var Base = time.Date(2026, 3, 14, 15, 9, 26, 535897000, time.FixedZone("X", 5*3600+1800))

// FullEvent returns an event with every field set.
func FullEvent(id string) audit.Event {
	return audit.Event{
		Time:            Base,
		ID:              id,
		RequestID:       "req-" + id,
		UserID:          "user_42",
		KeyID:           "k8Hq2pXzT4",
		Outcome:         audit.OutcomeDenied,
		Reason:          "insufficient_scope",
		Method:          "tools/call",
		Tool:            "delete_document",
		ResourceURI:     "docs://private/plan.md",
		Prompt:          "summarise",
		RPCID:           `"call-7"`,
		SessionID:       "sess-0f9e",
		ProtocolVersion: "2025-06-18",
		Status:          403,
		Duration:        1234567 * time.Nanosecond,
		Count:           279620,
		ClientIP:        "2001:db8::7",
		UserAgent:       "claude-code/1.0 (linux)",
		Arguments:       json.RawMessage(`{"id":17,"password":"[REDACTED]","tags":["a","b"]}`),
		Attributes:      map[string]string{"tenant": "acme", "region": "eu"},
		Instance:        "api-7f9c:4211",
		Actor:           "cli:ops",
		Credential:      "jwt",
	}
}

// AssertEqual checks that got is want as a sink stores it: times compared
// as instants to the microsecond, arguments as JSON.
func AssertEqual(t *testing.T, want, got audit.Event) {
	t.Helper()
	assert.True(t, want.Time.Truncate(time.Microsecond).Equal(got.Time), "time: want %v, got %v", want.Time, got.Time)
	assert.Equal(t, want.ID, got.ID, "ID")
	assert.Equal(t, want.RequestID, got.RequestID, "RequestID")
	assert.Equal(t, want.UserID, got.UserID, "UserID")
	assert.Equal(t, want.KeyID, got.KeyID, "KeyID")
	assert.Equal(t, want.Outcome, got.Outcome, "Outcome")
	assert.Equal(t, want.Reason, got.Reason, "Reason")
	assert.Equal(t, want.Action, got.Action, "Action")
	assert.Equal(t, want.Method, got.Method, "Method")
	assert.Equal(t, want.Tool, got.Tool, "Tool")
	assert.Equal(t, want.ResourceURI, got.ResourceURI, "ResourceURI")
	assert.Equal(t, want.Prompt, got.Prompt, "Prompt")
	assert.Equal(t, want.RPCID, got.RPCID, "RPCID")
	assert.Equal(t, want.SessionID, got.SessionID, "SessionID")
	assert.Equal(t, want.ProtocolVersion, got.ProtocolVersion, "ProtocolVersion")
	assert.Equal(t, want.Status, got.Status, "Status")
	assert.Equal(t, want.Duration, got.Duration, "Duration")
	assert.Equal(t, countOf(want), countOf(got), "Count")
	assert.Equal(t, want.ClientIP, got.ClientIP, "ClientIP")
	assert.Equal(t, want.UserAgent, got.UserAgent, "UserAgent")
	assert.Equal(t, want.Instance, got.Instance, "Instance")
	assert.Equal(t, want.Actor, got.Actor, "Actor")
	if len(want.Arguments) == 0 {
		assert.Empty(t, got.Arguments, "Arguments")
	} else {
		assert.JSONEq(t, string(want.Arguments), string(got.Arguments), "Arguments")
	}
	if len(want.Attributes) == 0 {
		assert.Empty(t, got.Attributes, "Attributes")
	} else {
		assert.Equal(t, want.Attributes, got.Attributes, "Attributes")
	}
}

// countOf is e.Count as sinks keep it: below 2 means an ordinary event.
func countOf(e audit.Event) int {
	if e.Count < 2 {
		return 0
	}
	return e.Count
}

func byID(t *testing.T, events []audit.Event) map[string]audit.Event {
	t.Helper()
	m := make(map[string]audit.Event, len(events))
	for _, e := range events {
		_, dup := m[e.ID]
		require.False(t, dup, "event %s recorded twice", e.ID)
		m[e.ID] = e
	}
	return m
}

func testRoundTrip(t *testing.T, h Harness) {
	want := FullEvent("rt1")
	require.NoError(t, h.Sink.Record(context.Background(), want))
	got := h.Events(t)
	require.Len(t, got, 1)
	AssertEqual(t, want, got[0])
}

func testMinimal(t *testing.T, h Harness) {
	cases := []audit.Event{
		{Time: Base, ID: "min1", Outcome: audit.OutcomeUnauthenticated, Reason: "no_credential", Status: 401},
		{Time: Base.Add(time.Second), ID: "min2", KeyID: "k1", UserID: "u1", Action: audit.ActionRevoked},
		{Time: Base.Add(2 * time.Second), ID: "min3", Outcome: audit.OutcomeAllowed, Method: "notifications/initialized"},
		{Time: Base.Add(3 * time.Second), ID: "min4", Outcome: audit.OutcomeAllowed, Method: "notifications/progress", Count: 1},
		{Time: Base.Add(4 * time.Second), ID: "min5", Outcome: audit.OutcomeRateLimited, Method: "tools/call", Count: 2},
		{Time: Base.Add(5 * time.Second), ID: "min6", Outcome: audit.OutcomeAllowed, Method: "ping", Count: -3},
	}
	for _, e := range cases {
		require.NoError(t, h.Sink.Record(context.Background(), e))
	}
	got := byID(t, h.Events(t))
	require.Len(t, got, len(cases))
	for _, want := range cases {
		AssertEqual(t, want, got[want.ID])
	}
}

func testText(t *testing.T, h Harness) {
	want := audit.Event{
		Time:       Base,
		ID:         "txt1",
		Outcome:    audit.OutcomeAllowed,
		UserID:     `ünïcødé "quoted" \ back`,
		Tool:       "日本語_ツール",
		UserAgent:  "line1\nline2\ttab,comma;semi",
		RPCID:      "9007199254740993",
		Arguments:  json.RawMessage(`{"q":"<script>&amp;","n":1.5e300,"big":123456789012345678901234567890}`),
		Attributes: map[string]string{"emoji": "🔑", "empty": ""},
	}
	require.NoError(t, h.Sink.Record(context.Background(), want))
	got := h.Events(t)
	require.Len(t, got, 1)
	AssertEqual(t, want, got[0])
}

func testBatch(t *testing.T, h Harness) {
	bs, ok := h.Sink.(audit.BatchSink)
	if !ok {
		t.Skip("not a BatchSink")
	}
	require.NoError(t, bs.RecordBatch(context.Background(), nil))
	var batch []audit.Event
	for i := range 120 {
		e := FullEvent(fmt.Sprintf("b%03d", i))
		e.Time = Base.Add(time.Duration(i) * time.Millisecond)
		e.Status = 200 + i
		batch = append(batch, e)
	}
	require.NoError(t, bs.RecordBatch(context.Background(), batch))
	got := byID(t, h.Events(t))
	require.Len(t, got, len(batch))
	for _, want := range batch {
		AssertEqual(t, want, got[want.ID])
	}
}

func testConcurrent(t *testing.T, h Harness) {
	const workers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				e := FullEvent(fmt.Sprintf("c%d-%d", w, i))
				errs <- h.Sink.Record(context.Background(), e)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	got := byID(t, h.Events(t))
	assert.Len(t, got, workers*each)
}
