package mcpauth

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"
)

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
}

const notifyQueueLen = 1024

// notifyTimeout bounds one Notify call.
const notifyTimeout = 2 * time.Minute

func newNotifyQueue(log *slog.Logger) *notifyQueue {
	return &notifyQueue{log: log, ch: make(chan queuedNote, notifyQueueLen), done: make(chan struct{})}
}

// send queues n for to; it never blocks.
func (q *notifyQueue) send(to Notifier, n Notification) {
	q.startOnce.Do(func() { go q.loop() })
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		q.dropped++
		return
	}
	select {
	case q.ch <- queuedNote{to, n}:
	default:
		q.dropped++
		q.log.LogAttrs(context.Background(), slog.LevelWarn, "mcpauth: notification queue full; dropped one",
			slog.String("type", string(n.Type)), slog.String("key_id", n.KeyID))
	}
}

func (q *notifyQueue) loop() {
	defer close(q.done)
	for qn := range q.ch {
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

// ipWatcher notices the first use of a key from an address and queues a
// key.new_ip notification. Memory is bounded: at most maxWatchedKeys keys,
// maxIPsPerKey addresses each; past that the oldest knowledge is forgotten
// (a later use may notify again). Knowledge is per process, so a restart
// notifies each key's first address again.
type ipWatcher struct {
	notifier Notifier
	queue    *notifyQueue

	mu    sync.Mutex
	known map[string][]netip.Addr
}

const (
	maxWatchedKeys = 100_000
	maxIPsPerKey   = 16
)

func newIPWatcher(n Notifier, q *notifyQueue) *ipWatcher {
	return &ipWatcher{notifier: n, queue: q, known: make(map[string][]netip.Addr)}
}

func (w *ipWatcher) seen(p *Principal, ip netip.Addr, now time.Time) {
	w.mu.Lock()
	ips := w.known[p.KeyID]
	for _, a := range ips {
		if a == ip {
			w.mu.Unlock()
			return
		}
	}
	if ips == nil && len(w.known) >= maxWatchedKeys {
		for k := range w.known { // forget an arbitrary key
			delete(w.known, k)
			break
		}
	}
	if len(ips) >= maxIPsPerKey {
		ips = slices.Delete(ips, 0, 1)
	}
	w.known[p.KeyID] = append(ips, ip)
	w.mu.Unlock()
	w.queue.send(w.notifier, Notification{Type: KeyNewIP, At: now, UserID: p.UserID, KeyID: p.KeyID, KeyName: p.KeyName, IP: ip.String()})
}
