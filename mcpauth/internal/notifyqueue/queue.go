// Package notifyqueue delivers notifications on one background goroutine,
// for the Guard and the key manager.
package notifyqueue

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/mcpauth/mcpauth/mcpauth/notify"
)

// Queue delivers notifications on one background goroutine, so that
// a slow or failing notify.Notifier (a webhook that is down) never holds a request
// or a Manager call. It is bounded: past notifyQueueLen waiting
// notifications, new ones are dropped and counted. Close delivers what is
// queued.
type Queue struct {
	log *slog.Logger

	startOnce sync.Once
	mu        sync.Mutex
	closed    bool
	ch        chan queuedNote
	done      chan struct{}
	dropped   int
}

type queuedNote struct {
	to notify.Notifier
	n  notify.Notification
	// ok, when set, runs on the queue's goroutine first; n is delivered
	// only if it returns true (key.new_ip asks the store if the address is
	// new there).
	ok func() bool
}

const notifyQueueLen = 1024

// notifyTimeout bounds one Notify call.
const notifyTimeout = 2 * time.Minute

// New returns an empty queue that logs to log.
func New(log *slog.Logger) *Queue {
	return &Queue{log: log, ch: make(chan queuedNote, notifyQueueLen), done: make(chan struct{})}
}

// Send queues n for to; it never blocks.
func (q *Queue) Send(to notify.Notifier, n notify.Notification) { q.SendIf(to, n, nil) }

// SendIf queues n for to, to be delivered if ok (run on the queue's
// goroutine, nil meaning always) returns true; it never blocks.
func (q *Queue) SendIf(to notify.Notifier, n notify.Notification, ok func() bool) {
	q.startOnce.Do(func() { go q.loop() })
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		q.dropped++
		return
	}
	select {
	case q.ch <- queuedNote{to, n, ok}:
	default:
		q.dropped++
		q.log.LogAttrs(context.Background(), slog.LevelWarn, "mcpauth: notification queue full; dropped one",
			slog.String("type", string(n.Type)), slog.String("key_id", n.KeyID))
	}
}

func (q *Queue) loop() {
	defer close(q.done)
	for qn := range q.ch {
		if qn.ok != nil && !qn.ok() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), notifyTimeout)
		if err := qn.to.Notify(ctx, qn.n); err != nil {
			q.log.LogAttrs(ctx, slog.LevelWarn, "mcpauth: notification failed",
				slog.String("type", string(qn.n.Type)), slog.String("key_id", qn.n.KeyID), slog.String("error", err.Error()))
		}
		cancel()
	}
}

// Close delivers queued notifications and stops; later sends are dropped.
func (q *Queue) Close(ctx context.Context) error {
	q.startOnce.Do(func() { go q.loop() })
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.ch)
	}
	q.mu.Unlock()
	select {
	case <-q.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
