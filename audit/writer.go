package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Mode is the Writer's delivery guarantee, chosen by the operator.
type Mode int

const (
	// BestEffort never blocks a request: when the queue is full, or the
	// event's caller already holds its share of the queue (see
	// WriterOptions.UnsafeNoCallerShare), the event is dropped and counted
	// (Stats.Dropped), and a batch the sink still refuses after the retries
	// is dropped and counted (Stats.Failed). Record returns nil in both
	// cases; losses are logged (see WriterOptions.Logger). The default.
	BestEffort Mode = iota
	// Blocking applies back-pressure: Record waits for queue space (or for
	// its context to end, returning the context's error). A batch the sink
	// still refuses after the retries is dropped and counted (Stats.Failed).
	Blocking
	// Strict returns from Record only once the sink has written the event,
	// with the sink's error if it could not (after the retries), so the
	// middleware can refuse the request (503). For regulated deployments:
	// every served request has its audit record, at the cost of a database
	// round trip (shared by concurrent requests, which are written together)
	// per request.
	Strict
)

// String returns "best_effort", "blocking" or "strict".
func (m Mode) String() string {
	switch m {
	case BestEffort:
		return "best_effort"
	case Blocking:
		return "blocking"
	case Strict:
		return "strict"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Errors returned by the Writer.
var (
	// ErrClosed: Record or Flush was called after Close.
	ErrClosed = errors.New("mcpauth/audit: writer closed")
	// ErrInvalidOptions: NewWriter was given options it cannot use.
	ErrInvalidOptions = errors.New("mcpauth/audit: invalid writer options")
)

// WriterOptions configure a Writer. The zero value (or nil) gives the
// documented defaults.
type WriterOptions struct {
	// Mode is the delivery guarantee. Default BestEffort.
	Mode Mode
	// QueueSize bounds the number of events waiting to be written. In
	// BestEffort mode it is what a sink outage can absorb before events are
	// dropped. Default 10,000. The queue is QueueSize slots of 512 bytes
	// allocated up front (5 MiB by default), which the garbage collector
	// does not scan: events are copied into them (see Writer.Record).
	QueueSize int
	// BatchSize is the largest batch handed to the sink. Default 500.
	BatchSize int
	// FlushInterval is the longest an event waits for its batch to fill
	// before the batch is written anyway; the writer goroutine is woken only
	// for the first event of a batch and when the batch is full. In Strict
	// mode batches are written as soon as a Strict event is queued, so a
	// request waits for one write, not for the interval. Default 200ms.
	FlushInterval time.Duration
	// WriteTimeout bounds each call to the sink. Default 10s.
	WriteTimeout time.Duration
	// MaxRetries is how many times a failed batch is tried again before it
	// is given up (counted in Stats.Failed, reported to OnError, and
	// returned to Strict callers). Default 3; negative means no retries.
	// In Strict mode requests wait through the retries and their backoff,
	// so keep both small there (for example 1 retry after 50ms).
	MaxRetries int
	// RetryBackoff is the wait before the first retry; it doubles on each
	// further retry, up to MaxRetryBackoff. Default 100ms.
	RetryBackoff time.Duration
	// MaxRetryBackoff caps the wait between retries. Default 5s.
	MaxRetryBackoff time.Duration
	// OnError, if set, is called from the writer's goroutine with the sink's
	// error and the number of events given up each time a batch is given up.
	// It must not block for long. Default: nothing (losses are still logged,
	// see Logger).
	OnError func(err error, events int)
	// Now stamps events that arrive with a zero Time and is the clock of the
	// loss log's interval. Default time.Now.
	Now func() time.Time

	// UnsafeNoCallerShare turns off the per-caller share of the queue in
	// BestEffort mode. With the share on (the default), an event is queued
	// only while its caller (Event.KeyID, else UserID, else ClientIP) has
	// fewer events queued than the queue has free slots. One caller alone
	// can therefore fill at most half the queue, k callers flooding at once
	// leave at least QueueSize/(k+1) slots free, and a caller with few
	// events queued loses one only when the queue is (nearly) full: one
	// request's flood cannot push out other callers' events. Callers are
	// counted without locks in a count-min sketch (2 x 4096 counters, a
	// random hash seed per Writer): a caller's count can only be too high,
	// when both its counters are shared with other callers' queued events,
	// which an attacker cannot aim for. Turning it off lets one key's
	// flood use the whole queue and drop everyone else's events; it only
	// makes sense when a single trusted caller produces every event (size
	// QueueSize for twice the burst instead). Blocking and Strict callers
	// wait for space in arrival order, so they need no share.
	UnsafeNoCallerShare bool
	// Logger receives the loss summary: one Error line with the message
	// LossMessage and the counts of events dropped (dropped_queue_full,
	// dropped_caller_share) and given up after sink errors (failed) since
	// the previous line, the time of the first of them (since), and the up
	// to 5 key IDs with the most losses (group keys). Lines never carry
	// other event contents nor the sink's error text (use OnError for it).
	// The first loss is logged at once, later ones at most once per
	// LossLogInterval (a loss is logged at the latest one interval after it
	// happened, later if the sink is stuck in a write), and losses not yet
	// logged are logged by Close. Default slog.Default().
	Logger *slog.Logger
	// LossLogInterval is the least time between two loss summary lines.
	// Default 10s.
	LossLogInterval time.Duration
}

// Stats are the Writer's counters since it was created. Every event given to
// Record ends up in exactly one of Written, Dropped, Failed, Rejected or (for
// now) Queued.
type Stats struct {
	// Written events were accepted by the sink.
	Written uint64
	// Dropped events were not queued (BestEffort only): DroppedQueueFull +
	// DroppedCallerShare.
	Dropped uint64
	// DroppedQueueFull events found the queue full.
	DroppedQueueFull uint64
	// DroppedCallerShare events found their caller holding its share of
	// the queue (see WriterOptions.UnsafeNoCallerShare).
	DroppedCallerShare uint64
	// Failed events were in batches the sink refused after every retry.
	Failed uint64
	// Rejected events were not queued: Record returned an error (closed
	// writer, context ended while waiting for space in Blocking or Strict).
	Rejected uint64
	// Retries is the number of batch retries.
	Retries uint64
	// Batches is the number of successful sink calls.
	Batches uint64
	// Queued is the number of events accepted but not yet written or given up.
	Queued int
}

type item struct {
	ev   Event
	done chan error // Strict only
}

// Writer is an asynchronous, batching Sink in front of another Sink. Record
// queues the event; one goroutine groups queued events into batches and
// hands them to the sink (whole batches to a BatchSink), retrying failed
// batches with exponential backoff. In BestEffort mode each caller gets a
// share of the queue, so that one caller's flood cannot push out the
// others' events. Lost events are counted in Stats and logged, rate-limited.
// Close flushes everything and stops the goroutine. A Writer is safe for
// concurrent use.
//
// The Writer fills an empty Event.ID (NewEventID) and a zero Event.Time.
type Writer struct {
	sink   Sink
	opts   WriterOptions
	q      *queue
	flushq chan chan struct{}

	mu        sync.RWMutex // write-locked only by Close
	closed    bool
	closing   chan struct{} // closed first by Close: wakes waiting Records
	closeOnce sync.Once
	stop      chan struct{}
	done      chan struct{}

	shares *shares // nil unless BestEffort with the caller share on
	loss   *lossLog

	written, failed, rejected, retries, batches atomic.Uint64
	dropped                                     [nLossReasons]atomic.Uint64 // by reason; lossFailed unused
	pending                                     atomic.Int64                // taken from the queue, not yet finished

	donePool sync.Pool
}

var _ Sink = (*Writer)(nil)

// NewWriter starts a Writer in front of sink. It panics if sink is nil and
// returns an error for invalid options (negative sizes or durations, unknown
// mode).
func NewWriter(sink Sink, opts *WriterOptions) (*Writer, error) {
	if sink == nil {
		panic("mcpauth/audit: NewWriter with nil sink")
	}
	var o WriterOptions
	if opts != nil {
		o = *opts
	}
	switch {
	case o.Mode < BestEffort || o.Mode > Strict:
		return nil, fmt.Errorf("%w: unknown mode %d", ErrInvalidOptions, int(o.Mode))
	case o.QueueSize < 0, o.BatchSize < 0:
		return nil, fmt.Errorf("%w: negative queue or batch size", ErrInvalidOptions)
	case o.FlushInterval < 0, o.WriteTimeout < 0, o.RetryBackoff < 0, o.MaxRetryBackoff < 0, o.LossLogInterval < 0:
		return nil, fmt.Errorf("%w: negative duration", ErrInvalidOptions)
	}
	if o.QueueSize == 0 {
		o.QueueSize = 10000
	}
	if o.BatchSize == 0 {
		o.BatchSize = 500
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = 200 * time.Millisecond
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = 3
	} else if o.MaxRetries < 0 {
		o.MaxRetries = 0
	}
	if o.RetryBackoff == 0 {
		o.RetryBackoff = 100 * time.Millisecond
	}
	if o.MaxRetryBackoff == 0 {
		o.MaxRetryBackoff = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.LossLogInterval == 0 {
		o.LossLogInterval = 10 * time.Second
	}
	w := &Writer{
		sink:    sink,
		opts:    o,
		q:       newQueue(o.QueueSize),
		flushq:  make(chan chan struct{}),
		closing: make(chan struct{}),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		loss:    newLossLog(o.Logger, o.Now, o.LossLogInterval),
	}
	if o.Mode == BestEffort && !o.UnsafeNoCallerShare {
		w.shares = newShares()
	}
	w.donePool.New = func() any { return make(chan error, 1) }
	go w.run()
	return w, nil
}

// Mode returns the delivery mode the Writer was created with.
func (w *Writer) Mode() Mode { return w.opts.Mode }

// Record queues e according to the Writer's Mode; see Mode for what it
// waits for and returns. In BestEffort mode it never blocks and costs one
// hash of the caller, four atomic adds and a copy of e's fields into the
// queue, without allocating.
//
// The Writer copies e's text into its queue; it holds on to e itself only
// for Strict events and events with Attributes (or more text than a queue
// slot holds): do not modify e.Arguments or e.Attributes after Record.
// A batch that is retried after a failure the sink could not report
// precisely (a lost commit acknowledgement) may be written twice; event IDs
// tell the copies apart.
func (w *Writer) Record(ctx context.Context, e Event) error {
	if e.Time.IsZero() {
		e.Time = w.opts.Now()
	}
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		w.rejected.Add(1)
		return ErrClosed
	}
	it := item{ev: e}
	q := w.q
	if w.opts.Mode == BestEffort {
		r := lossNone
		q.mu.Lock()
		switch free := q.free(); {
		case free == 0:
			r = lossQueueFull
		case w.shares != nil:
			r = w.shares.admit(free, &it.ev)
		}
		wake := false
		if r == lossNone {
			wake = q.push(&it)
		}
		q.mu.Unlock()
		if wake {
			q.signal()
		}
		if r != lossNone {
			// Counted before RUnlock, so that Close's last line has it.
			w.dropped[r].Add(1)
			w.loss.drop(r, e.KeyID)
		}
		w.mu.RUnlock()
		return nil
	}
	var done chan error
	if w.opts.Mode == Strict {
		done = w.donePool.Get().(chan error)
		it.done = done
	}
	if err := w.enqueueWaiting(ctx, &it); err != nil {
		w.mu.RUnlock()
		if done != nil {
			w.donePool.Put(done)
		}
		w.rejected.Add(1)
		return err
	}
	w.mu.RUnlock()
	if done == nil {
		return nil
	}
	// Once queued the event will be written or given up, and the result
	// sent on done; waiting for it is how Strict keeps its promise, so the
	// request's context does not cut it short.
	err := <-done
	w.donePool.Put(done)
	return err
}

// enqueueWaiting queues it, waiting in arrival order for a free slot, until
// ctx ends or the Writer closes (Blocking, Strict). A full queue costs the
// waiting producer one allocation.
func (w *Writer) enqueueWaiting(ctx context.Context, it *item) error {
	q := w.q
	q.mu.Lock()
	if q.free() > 0 && len(q.waiters) == 0 {
		wake := q.push(it)
		q.mu.Unlock()
		if wake {
			q.signal()
		}
		return nil
	}
	wt := &waiter{it: *it, queued: make(chan struct{})}
	q.waiters = append(q.waiters, wt)
	q.mu.Unlock()
	var err error
	select {
	case <-wt.queued:
		return nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-w.closing:
		err = ErrClosed
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	select {
	case <-wt.queued: // queued just as ctx ended: it will be written
		return nil
	default:
	}
	for i, c := range q.waiters {
		if c == wt {
			q.waiters = append(q.waiters[:i], q.waiters[i+1:]...)
			break
		}
	}
	return err
}

// Flush waits until every event queued before the call has been written or
// given up, or ctx ends.
func (w *Writer) Flush(ctx context.Context) error {
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return ErrClosed
	}
	ack := make(chan struct{})
	select {
	case w.flushq <- ack:
	case <-ctx.Done():
		w.mu.RUnlock()
		return ctx.Err()
	case <-w.closing:
		w.mu.RUnlock()
		return ErrClosed
	}
	w.mu.RUnlock()
	select {
	case <-ack:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops accepting events, writes everything still queued (with the
// usual retries) and stops the writer's goroutine. If ctx ends first, Close
// returns the context's error; the goroutine still finishes the queue in the
// background. Close is idempotent: later calls wait the same way.
func (w *Writer) Close(ctx context.Context) error {
	w.closeOnce.Do(func() { close(w.closing) })
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.stop)
	}
	w.mu.Unlock()
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("mcpauth/audit: close: %d events not yet written: %w", w.Stats().Queued, ctx.Err())
	}
}

// Stats returns a snapshot of the counters.
func (w *Writer) Stats() Stats {
	full, share := w.dropped[lossQueueFull].Load(), w.dropped[lossCallerShare].Load()
	return Stats{
		Written:            w.written.Load(),
		Dropped:            full + share,
		DroppedQueueFull:   full,
		DroppedCallerShare: share,
		Failed:             w.failed.Load(),
		Rejected:           w.rejected.Load(),
		Retries:            w.retries.Load(),
		Batches:            w.batches.Load(),
		Queued:             w.q.queued() + int(w.pending.Load()),
	}
}

// run is the writer goroutine. It sleeps until the queue holds a full
// batch (or a Strict event), the FlushInterval after the first event of a
// batch has passed, a Flush or Close: producers wake it at most twice per
// batch (see queue).
func (w *Writer) run() {
	defer close(w.done)
	batch := make([]item, 0, w.opts.BatchSize)
	events := make([]Event, 0, w.opts.BatchSize)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	timerOn := false
	// lossTimer wakes the goroutine to log losses that came within the
	// interval after the previous line; it runs only while some wait.
	lossTimer := time.NewTimer(time.Hour)
	lossTimer.Stop()
	lossTimerOn := false

	// writeBatch takes up to a batch from the queue and writes it; it
	// reports whether there was anything to write.
	writeBatch := func() bool {
		batch = w.q.take(batch[:0], w.opts.BatchSize)
		if len(batch) == 0 {
			w.q.release()
			return false
		}
		w.pending.Add(int64(len(batch)))
		w.q.release()
		if w.shares != nil {
			w.shares.taken(batch)
		}
		events = events[:0]
		for _, it := range batch {
			events = append(events, it.ev)
		}
		w.write(batch, events)
		clear(batch)
		clear(events)
		return true
	}
	drain := func() {
		for writeBatch() {
		}
	}

	for {
		ready, queued := w.q.ready(w.opts.BatchSize)
		if ready {
			writeBatch()
			continue
		}
		switch {
		case queued > 0 && !timerOn:
			timer.Reset(w.opts.FlushInterval)
			timerOn = true
		case queued == 0 && timerOn:
			timer.Stop()
			timerOn = false
		}
		select {
		case <-w.q.wake:
		case <-timer.C:
			timerOn = false
			writeBatch()
		case ack := <-w.flushq:
			drain()
			close(ack)
		case <-w.loss.wake:
			if !lossTimerOn {
				lossTimer.Reset(w.opts.LossLogInterval)
				lossTimerOn = true
			}
		case <-lossTimer.C:
			lossTimerOn = false
			if w.loss.flush(false) {
				lossTimer.Reset(w.opts.LossLogInterval)
				lossTimerOn = true
			}
		case <-w.stop:
			// Close holds the write lock while closing stop, so no
			// Record is between its closed check and its enqueue: the
			// queue holds everything there will ever be, and every
			// drop is counted.
			drain()
			lossTimer.Stop()
			w.loss.flush(true)
			return
		}
	}
}

// write hands one batch to the sink with retries, then settles every item.
func (w *Writer) write(batch []item, events []Event) {
	for i := range events {
		if events[i].ID == "" {
			events[i].ID = NewEventID()
		}
	}
	// Non-batch sinks are written one by one; after a failure only the
	// rest is retried.
	start := 0
	bs, isBatch := w.sink.(BatchSink)
	backoff := w.opts.RetryBackoff
	var err error
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), w.opts.WriteTimeout)
		if isBatch {
			err = bs.RecordBatch(ctx, events)
		} else {
			err = nil
			for start < len(events) {
				if err = w.sink.Record(ctx, events[start]); err != nil {
					break
				}
				w.written.Add(1)
				w.pending.Add(-1)
				settle(batch[start], nil)
				start++
			}
		}
		cancel()
		if err == nil || attempt >= w.opts.MaxRetries {
			break
		}
		w.retries.Add(1)
		time.Sleep(backoff)
		backoff = min(2*backoff, w.opts.MaxRetryBackoff)
	}
	rest := batch[start:]
	if err == nil {
		w.batches.Add(1)
		w.written.Add(uint64(len(rest)))
	} else {
		w.failed.Add(uint64(len(rest)))
		w.loss.failed(rest)
		if w.opts.OnError != nil {
			w.opts.OnError(err, len(rest))
		}
		err = fmt.Errorf("mcpauth/audit: event not recorded: %w", err)
	}
	w.pending.Add(-int64(len(rest)))
	for _, it := range rest {
		settle(it, err)
	}
}

func settle(it item, err error) {
	if it.done != nil {
		it.done <- err
	}
}
