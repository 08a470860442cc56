package audit_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/audit"
)

// gate is a BatchSink that blocks in RecordBatch until released, and can be
// told to fail.
type gate struct {
	entered chan struct{} // receives once per call
	release chan struct{} // closed to let calls through
	mu      sync.Mutex
	batches [][]audit.Event
	fails   int   // fail this many calls first
	err     error // returned while failing; nil means errDown
	calls   atomic.Int64
}

var errDown = errors.New("database down")

func newGate(open bool) *gate {
	g := &gate{entered: make(chan struct{}, 1000), release: make(chan struct{})}
	if open {
		close(g.release)
	}
	return g
}

func (g *gate) Record(ctx context.Context, e audit.Event) error {
	return g.RecordBatch(ctx, []audit.Event{e})
}

func (g *gate) RecordBatch(ctx context.Context, events []audit.Event) error {
	g.calls.Add(1)
	g.entered <- struct{}{}
	select {
	case <-g.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.fails != 0 {
		g.fails--
		if g.err != nil {
			return g.err
		}
		return errDown
	}
	g.batches = append(g.batches, append([]audit.Event(nil), events...))
	return nil
}

func (g *gate) events() []audit.Event {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []audit.Event
	for _, b := range g.batches {
		out = append(out, b...)
	}
	return out
}

func newWriter(t *testing.T, sink audit.Sink, o audit.WriterOptions) *audit.Writer {
	t.Helper()
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	w, err := audit.NewWriter(sink, &o)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = w.Close(ctx)
	})
	return w
}

func ev(i int) audit.Event {
	return audit.Event{ID: fmt.Sprintf("e%06d", i), Outcome: audit.OutcomeAllowed, KeyID: "k1"}
}

func TestNewWriterOptions(t *testing.T) {
	bad := []audit.WriterOptions{
		{Mode: audit.Mode(7)},
		{Mode: audit.Mode(-1)},
		{QueueSize: -1},
		{BatchSize: -1},
		{FlushInterval: -time.Second},
		{WriteTimeout: -1},
		{RetryBackoff: -1},
		{MaxRetryBackoff: -1},
	}
	for _, o := range bad {
		_, err := audit.NewWriter(&memory{}, &o)
		assert.ErrorIs(t, err, audit.ErrInvalidOptions, "%+v", o)
	}
	w, err := audit.NewWriter(&memory{}, nil)
	require.NoError(t, err)
	assert.Equal(t, audit.BestEffort, w.Mode())
	require.NoError(t, w.Close(context.Background()))
	assert.Panics(t, func() { _, _ = audit.NewWriter(nil, nil) })
	assert.Equal(t, "best_effort", audit.BestEffort.String())
	assert.Equal(t, "blocking", audit.Blocking.String())
	assert.Equal(t, "strict", audit.Strict.String())
	assert.Equal(t, "Mode(9)", audit.Mode(9).String())
}

func TestWriterFillsIDAndTime(t *testing.T) {
	m := &memory{}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	w := newWriter(t, m, audit.WriterOptions{Now: func() time.Time { return now }})
	require.NoError(t, w.Record(context.Background(), audit.Event{}))
	require.NoError(t, w.Record(context.Background(), audit.Event{ID: "mine", Time: now.Add(time.Hour)}))
	require.NoError(t, w.Close(context.Background()))
	got := m.all()
	require.Len(t, got, 2)
	assert.Len(t, got[0].ID, 20)
	assert.Equal(t, now, got[0].Time)
	assert.Equal(t, "mine", got[1].ID)
	assert.Equal(t, now.Add(time.Hour), got[1].Time)
}

func TestWriterBestEffortDropsExactly(t *testing.T) {
	g := newGate(false)
	w := newWriter(t, g, audit.WriterOptions{QueueSize: 4, BatchSize: 1})
	ctx := context.Background()
	// One caller per event: only the queue's size limits them.
	own := func(i int) audit.Event { e := ev(i); e.KeyID = fmt.Sprintf("k%d", i); return e }
	require.NoError(t, w.Record(ctx, own(0)))
	<-g.entered // event 0 is in the sink, blocked
	for i := 1; i <= 14; i++ {
		require.NoError(t, w.Record(ctx, own(i)), "BestEffort never fails a request")
	}
	s := w.Stats()
	assert.Equal(t, uint64(10), s.Dropped)
	assert.Equal(t, 5, s.Queued)
	close(g.release)
	require.NoError(t, w.Close(ctx))
	s = w.Stats()
	assert.Equal(t, audit.Stats{Written: 5, Dropped: 10, DroppedQueueFull: 10, Batches: 5}, s)
	var ids []string
	for _, e := range g.events() {
		ids = append(ids, e.ID)
	}
	assert.Equal(t, []string{"e000000", "e000001", "e000002", "e000003", "e000004"}, ids, "the first five, in order")
}

func TestWriterStatsAddUpUnderLoad(t *testing.T) {
	t.Parallel()
	m := &memory{}
	w := newWriter(t, m, audit.WriterOptions{QueueSize: 64, BatchSize: 16})
	const workers, each = 8, 3000
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				_ = w.Record(context.Background(), ev(i))
			}
		}()
	}
	wg.Wait()
	require.NoError(t, w.Close(context.Background()))
	s := w.Stats()
	assert.Equal(t, uint64(workers*each), s.Written+s.Dropped, "every event is written or counted as dropped: %+v", s)
	assert.Equal(t, int(s.Written), len(m.all()))
	assert.Zero(t, s.Queued)
}

func TestWriterBatching(t *testing.T) {
	g := newGate(false)
	w := newWriter(t, g, audit.WriterOptions{QueueSize: 100, BatchSize: 10, FlushInterval: time.Hour})
	ctx := context.Background()
	require.NoError(t, w.Record(ctx, ev(0)))
	// Nothing is written before the batch is full or the interval passes.
	select {
	case <-g.entered:
		t.Fatal("a one-event batch was written before FlushInterval")
	case <-time.After(20 * time.Millisecond):
	}
	for i := 1; i < 25; i++ {
		require.NoError(t, w.Record(ctx, ev(i)))
	}
	close(g.release)
	require.NoError(t, w.Flush(ctx))
	var sizes []int
	g.mu.Lock()
	for _, b := range g.batches {
		sizes = append(sizes, len(b))
	}
	g.mu.Unlock()
	total := 0
	for _, n := range sizes {
		assert.LessOrEqual(t, n, 10)
		total += n
	}
	assert.Equal(t, 25, total)
	assert.GreaterOrEqual(t, sizes[0], 1)
	assert.Len(t, sizes, 3, "10 + 10 + 5: %v", sizes)
}

func TestWriterFlushInterval(t *testing.T) {
	m := &memory{}
	w := newWriter(t, m, audit.WriterOptions{BatchSize: 1000, FlushInterval: 5 * time.Millisecond})
	require.NoError(t, w.Record(context.Background(), ev(1)))
	require.Eventually(t, func() bool { return len(m.all()) == 1 }, 2*time.Second, time.Millisecond)
	assert.Equal(t, uint64(1), w.Stats().Written)
}

func TestWriterRetriesThenSucceeds(t *testing.T) {
	g := newGate(true)
	g.fails = 2
	w := newWriter(t, g, audit.WriterOptions{MaxRetries: 3, RetryBackoff: time.Millisecond})
	require.NoError(t, w.Record(context.Background(), ev(1)))
	require.NoError(t, w.Close(context.Background()))
	s := w.Stats()
	assert.Equal(t, uint64(1), s.Written)
	assert.Equal(t, uint64(2), s.Retries)
	assert.Zero(t, s.Failed)
	assert.Equal(t, int64(3), g.calls.Load())
}

func TestWriterBestEffortGivesUpAfterRetries(t *testing.T) {
	g := newGate(true)
	g.fails = -1 // always
	var gaveUp atomic.Int64
	var lastErr atomic.Value
	w := newWriter(t, g, audit.WriterOptions{
		MaxRetries: 2, RetryBackoff: time.Millisecond, BatchSize: 100,
		OnError: func(err error, n int) { gaveUp.Add(int64(n)); lastErr.Store(err) },
	})
	for i := range 5 {
		require.NoError(t, w.Record(context.Background(), ev(i)))
	}
	require.NoError(t, w.Close(context.Background()))
	s := w.Stats()
	assert.Equal(t, uint64(5), s.Failed)
	assert.Zero(t, s.Written)
	assert.Equal(t, int64(5), gaveUp.Load())
	assert.ErrorIs(t, lastErr.Load().(error), errDown)
	assert.Equal(t, int64(s.Retries/2*3), g.calls.Load(), "each batch tried 1+MaxRetries times")
}

func TestWriterNoRetries(t *testing.T) {
	g := newGate(true)
	g.fails = -1
	w := newWriter(t, g, audit.WriterOptions{MaxRetries: -1})
	require.NoError(t, w.Record(context.Background(), ev(1)))
	require.NoError(t, w.Close(context.Background()))
	assert.Equal(t, int64(1), g.calls.Load())
	assert.Equal(t, uint64(1), w.Stats().Failed)
}

func TestWriterStrict(t *testing.T) {
	t.Run("written", func(t *testing.T) {
		g := newGate(true)
		w := newWriter(t, g, audit.WriterOptions{Mode: audit.Strict, FlushInterval: time.Hour})
		require.NoError(t, w.Record(context.Background(), ev(1)))
		assert.Len(t, g.events(), 1, "written when Record returns, without waiting for FlushInterval")
	})
	t.Run("sink fails", func(t *testing.T) {
		g := newGate(true)
		g.fails = -1
		w := newWriter(t, g, audit.WriterOptions{Mode: audit.Strict, MaxRetries: 1, RetryBackoff: time.Millisecond})
		err := w.Record(context.Background(), ev(1))
		require.ErrorIs(t, err, errDown)
		assert.Equal(t, uint64(1), w.Stats().Failed)
	})
	t.Run("concurrent requests share batches", func(t *testing.T) {
		g := newGate(true)
		w := newWriter(t, g, audit.WriterOptions{Mode: audit.Strict})
		var wg sync.WaitGroup
		for i := range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				assert.NoError(t, w.Record(context.Background(), ev(i)))
			}()
		}
		wg.Wait()
		assert.Len(t, g.events(), 50)
		assert.Equal(t, uint64(50), w.Stats().Written)
	})
	t.Run("context ends while waiting for queue space", func(t *testing.T) {
		g := newGate(false)
		w := newWriter(t, g, audit.WriterOptions{Mode: audit.Strict, QueueSize: 1, BatchSize: 1})
		go func() { _ = w.Record(context.Background(), ev(0)) }()
		<-g.entered
		go func() { _ = w.Record(context.Background(), ev(1)) }() // fills the queue
		require.Eventually(t, func() bool { return w.Stats().Queued == 2 }, time.Second, time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		assert.ErrorIs(t, w.Record(ctx, ev(2)), context.DeadlineExceeded)
		assert.Equal(t, uint64(1), w.Stats().Rejected)
		close(g.release)
	})
}

func TestWriterBlocking(t *testing.T) {
	g := newGate(false)
	w := newWriter(t, g, audit.WriterOptions{Mode: audit.Blocking, QueueSize: 1, BatchSize: 1})
	bg := context.Background()
	require.NoError(t, w.Record(bg, ev(0)))
	<-g.entered
	require.NoError(t, w.Record(bg, ev(1))) // the queue's one slot
	ctx, cancel := context.WithTimeout(bg, 10*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, w.Record(ctx, ev(2)), context.DeadlineExceeded)

	done := make(chan error)
	go func() { done <- w.Record(bg, ev(3)) }()
	select {
	case err := <-done:
		t.Fatalf("Record returned %v while the queue was full", err)
	case <-time.After(10 * time.Millisecond):
	}
	close(g.release)
	require.NoError(t, <-done, "waits for space, then queues")
	require.NoError(t, w.Close(bg))
	assert.Equal(t, audit.Stats{Written: 3, Rejected: 1, Batches: 3}, w.Stats())
}

func TestWriterClose(t *testing.T) {
	t.Run("flushes everything", func(t *testing.T) {
		m := &memory{}
		w := newWriter(t, m, audit.WriterOptions{Mode: audit.Blocking, QueueSize: 10, BatchSize: 3, FlushInterval: time.Hour})
		for i := range 1000 {
			require.NoError(t, w.Record(context.Background(), ev(i)))
		}
		require.NoError(t, w.Close(context.Background()))
		assert.Len(t, m.all(), 1000)
		assert.ErrorIs(t, w.Record(context.Background(), ev(0)), audit.ErrClosed)
		assert.ErrorIs(t, w.Flush(context.Background()), audit.ErrClosed)
		require.NoError(t, w.Close(context.Background()), "idempotent")
	})
	t.Run("context ends first", func(t *testing.T) {
		g := newGate(false)
		w := newWriter(t, g, audit.WriterOptions{Mode: audit.Blocking, QueueSize: 1, BatchSize: 1})
		require.NoError(t, w.Record(context.Background(), ev(0)))
		<-g.entered
		require.NoError(t, w.Record(context.Background(), ev(1)))
		blocked := make(chan error)
		go func() { blocked <- w.Record(context.Background(), ev(2)) }()

		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		err := w.Close(ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Contains(t, err.Error(), "2 events not yet written")
		assert.ErrorIs(t, <-blocked, audit.ErrClosed, "a Record waiting for space is released by Close")

		close(g.release)
		require.NoError(t, w.Close(context.Background()))
		assert.Equal(t, audit.Stats{Written: 2, Rejected: 1, Batches: 2}, w.Stats())
	})
}
