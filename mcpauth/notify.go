package mcpauth

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// NotificationType says what happened to a key.
type NotificationType string

// Notification types.
const (
	KeyCreated      NotificationType = "key.created"
	KeyRotated      NotificationType = "key.rotated"
	KeyRevoked      NotificationType = "key.revoked"
	KeyExpiringSoon NotificationType = "key.expiring_soon"
	KeyNewIP        NotificationType = "key.new_ip"
)

// Notification tells the host something a key's owner may want to hear
// about (the email the seed sends). It never carries key material.
type Notification struct {
	Type    NotificationType `json:"type"`
	At      time.Time        `json:"at"`
	UserID  string           `json:"user_id"`
	KeyID   string           `json:"key_id"`
	KeyName string           `json:"key_name,omitempty"`
	// NewKeyID is the replacement key of a rotation.
	NewKeyID string `json:"new_key_id,omitempty"`
	// ExpiresAt is the key's expiry (for expiring_soon, and a rotated key's
	// end of grace).
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// IP is the client address of a key.new_ip notification.
	IP string `json:"ip,omitempty"`
}

// Notifier receives key notifications: from the Manager after a change is
// stored, and from the Guard for key.new_ip (once per key and address
// across restarts and instances when the KeyStore implements
// store.AddressRecorder, once per process otherwise). Calls are made one at a time on
// the Guard's background goroutine, never on the request path nor inside a
// Manager call; an error is logged and never undoes the change. Up to 1024
// notifications wait in memory; past that, new ones are dropped and logged.
// Guard.Close delivers the queued ones.
type Notifier interface {
	Notify(ctx context.Context, n Notification) error
}

// NotifierFunc adapts a function to Notifier.
type NotifierFunc func(ctx context.Context, n Notification) error

// Notify implements Notifier.
func (f NotifierFunc) Notify(ctx context.Context, n Notification) error { return f(ctx, n) }

// notifyQueue delivers notifications on one background goroutine, so that
// a slow or failing Notifier (a webhook that is down) never holds a request
// or a Manager call. It is bounded: past notifyQueueLen waiting
// notifications, new ones are dropped and counted. Close delivers what is
// queued.
type notifyQueue struct {
	log *slog.Logger

	startOnce sync.Once
	mu        sync.Mutex
	closed    bool
	ch        chan queuedNote
	done      chan struct{}
	dropped   int
}

type queuedNote struct {
	to Notifier
	n  Notification
	// ok, when set, runs on the queue's goroutine first; n is delivered
	// only if it returns true (key.new_ip asks the store if the address is
	// new there).
	ok func() bool
}

const notifyQueueLen = 1024

// notifyTimeout bounds one Notify call.
const notifyTimeout = 2 * time.Minute

func newNotifyQueue(log *slog.Logger) *notifyQueue {
	return &notifyQueue{log: log, ch: make(chan queuedNote, notifyQueueLen), done: make(chan struct{})}
}

// send queues n for to; it never blocks.
func (q *notifyQueue) send(to Notifier, n Notification) { q.sendIf(to, n, nil) }

// sendIf queues n for to, to be delivered if ok (run on the queue's
// goroutine, nil meaning always) returns true; it never blocks.
func (q *notifyQueue) sendIf(to Notifier, n Notification, ok func() bool) {
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

func (q *notifyQueue) loop() {
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

// close delivers queued notifications and stops; later sends are dropped.
func (q *notifyQueue) close(ctx context.Context) error {
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
