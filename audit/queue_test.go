package audit_test

import (
	"context"
	"encoding/json"
	"reflect"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/audit"
)

// fullEvent sets every field of an Event to a distinct non-zero value, by
// reflection, so that a field added to Event later and not carried by the
// Writer's queue fails TestQueueCarriesEveryField.
func fullEvent(t *testing.T, loc *time.Location) audit.Event {
	t.Helper()
	var e audit.Event
	v := reflect.ValueOf(&e).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		name := v.Type().Field(i).Name
		switch {
		case f.Type() == reflect.TypeFor[time.Time]():
			f.Set(reflect.ValueOf(time.Date(2026, 3, 4, 5, 6, 7, 890123456, loc)))
		case f.Type() == reflect.TypeFor[json.RawMessage]():
			f.SetBytes([]byte(`{"q":"` + name + `"}`))
		case f.Type() == reflect.TypeFor[map[string]string]():
			// Attributes: covered by TestQueueBoxedEvents (they are kept as they are).
		case f.Kind() == reflect.String:
			f.SetString("v-" + name)
		case f.Kind() == reflect.Int, f.Kind() == reflect.Int64:
			f.SetInt(int64(1000 + i))
		default:
			t.Fatalf("Event.%s has a type (%s) this test does not know: teach the Writer's queue (audit/queue.go) and this test", name, f.Type())
		}
	}
	return e
}

// Every field of an event reaches the sink unchanged through the queue's
// slots, in UTC and in Local time.
func TestQueueCarriesEveryField(t *testing.T) {
	for _, loc := range []*time.Location{time.UTC, time.Local} {
		g := newGate(true)
		w := newWriter(t, g, audit.WriterOptions{Mode: audit.Blocking})
		want := fullEvent(t, loc)
		require.NoError(t, w.Record(context.Background(), want))
		require.NoError(t, w.Flush(context.Background()))
		got := g.events()
		require.Len(t, got, 1)
		assert.Equal(t, want, got[0])
	}
}

// Events a slot cannot hold are kept as they are: attributes, another time
// zone, more text than a slot has room for.
func TestQueueBoxedEvents(t *testing.T) {
	g := newGate(true)
	w := newWriter(t, g, audit.WriterOptions{Mode: audit.Blocking})
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		paris = time.FixedZone("UTC+1", 3600)
	}
	a := fullEvent(t, time.UTC)
	a.Attributes = map[string]string{"tenant": "t1"}
	b := fullEvent(t, paris)
	c := fullEvent(t, time.UTC)
	c.Arguments = json.RawMessage(`{"q":"` + strings.Repeat("x", 4096) + `"}`)
	d := fullEvent(t, time.UTC) // between boxed ones, in a slot
	for _, e := range []audit.Event{a, d, b, c} {
		require.NoError(t, w.Record(context.Background(), e))
	}
	require.NoError(t, w.Flush(context.Background()))
	assert.Equal(t, []audit.Event{a, d, b, c}, g.events())
}

// The queue's text is copied: changing the caller's memory after Record
// does not change what is written.
func TestQueueCopiesText(t *testing.T) {
	g := newGate(true)
	w := newWriter(t, g, audit.WriterOptions{Mode: audit.Blocking})
	buf := []byte("tool-one")
	args := []byte(`{"a":1}`)
	require.NoError(t, w.Record(context.Background(), audit.Event{Tool: string(buf), Arguments: args}))
	copy(args, `{"b":2}`)
	require.NoError(t, w.Flush(context.Background()))
	got := g.events()
	require.Len(t, got, 1)
	assert.JSONEq(t, `{"a":1}`, string(got[0].Arguments))
}

// Blocking producers that find the queue full are served in arrival order,
// and none is lost.
func TestQueueWaitersInArrivalOrder(t *testing.T) {
	g := newGate(false)
	w := newWriter(t, g, audit.WriterOptions{Mode: audit.Blocking, QueueSize: 2, BatchSize: 1, FlushInterval: time.Millisecond})
	ctx := context.Background()
	require.NoError(t, w.Record(ctx, audit.Event{RequestID: "0"}))
	<-g.entered // the writer holds event 0 in the sink
	require.NoError(t, w.Record(ctx, audit.Event{RequestID: "1"}))
	require.NoError(t, w.Record(ctx, audit.Event{RequestID: "2"}))
	// The queue is full (1, 2): the next producers wait, one after the other.
	var wg sync.WaitGroup
	for i := 3; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			assert.NoError(t, w.Record(ctx, audit.Event{RequestID: string(rune('0' + i))}))
		}()
		time.Sleep(20 * time.Millisecond) // let it wait before the next one arrives
	}
	close(g.release)
	wg.Wait()
	require.NoError(t, w.Flush(ctx))
	var ids []string
	for _, e := range g.events() {
		ids = append(ids, e.RequestID)
	}
	assert.Equal(t, []string{"0", "1", "2", "3", "4", "5", "6", "7"}, ids)
}

// A producer that gives up waiting (its context ends) takes no slot: the
// ones behind it still get theirs.
func TestQueueWaiterGivesUp(t *testing.T) {
	g := newGate(false)
	w := newWriter(t, g, audit.WriterOptions{Mode: audit.Blocking, QueueSize: 1, BatchSize: 1})
	ctx := context.Background()
	require.NoError(t, w.Record(ctx, audit.Event{RequestID: "0"}))
	<-g.entered
	require.NoError(t, w.Record(ctx, audit.Event{RequestID: "1"}))
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, w.Record(short, audit.Event{RequestID: "lost"}), context.DeadlineExceeded)
	done := make(chan error, 1)
	go func() { done <- w.Record(ctx, audit.Event{RequestID: "2"}) }()
	close(g.release)
	require.NoError(t, <-done)
	require.NoError(t, w.Flush(ctx))
	var ids []string
	for _, e := range g.events() {
		ids = append(ids, e.RequestID)
	}
	assert.Equal(t, []string{"0", "1", "2"}, ids)
	assert.Equal(t, uint64(1), w.Stats().Rejected)
}

// scannableHeap is the heap memory the garbage collector scans, after a
// collection.
func scannableHeap() uint64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/scan/heap:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// Goal 5 of the performance issue: the memory the GC scans does not grow
// with the queue's capacity, empty or full. A queue of 200,000 events of
// Event values (as before this queue) is ~70 MB to scan.
func TestQueueIsNotScanned(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates a large queue")
	}
	base := scannableHeap()
	entered, release := make(chan struct{}, 1), make(chan struct{})
	hold := audit.SinkFunc(func(context.Context, audit.Event) error {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
		return nil
	})
	w := newWriter(t, hold, audit.WriterOptions{Mode: audit.BestEffort, QueueSize: 200_000, BatchSize: 1000, UnsafeNoCallerShare: true})
	empty := scannableHeap()
	require.NoError(t, w.Record(context.Background(), audit.Event{RequestID: "held"}))
	<-entered
	ev := audit.Event{ID: "0123456789abcdefghjk", RequestID: "0123456789abcdefghjk", KeyID: "k_0123456789", UserID: "user-1", Method: "tools/call", Tool: "search", ClientIP: "203.0.113.7"}
	for range 199_999 {
		if err := w.Record(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	full := scannableHeap()
	st := w.Stats()
	assert.Zero(t, st.Dropped)
	t.Logf("scannable heap: %d before, %d with the empty queue, %d full", base, empty, full)
	assert.Less(t, int64(empty)-int64(base), int64(1<<20), "empty queue")
	assert.Less(t, int64(full)-int64(base), int64(1<<20), "full queue")
	close(release)
}
