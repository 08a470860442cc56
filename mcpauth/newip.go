package mcpauth

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// ipWatcher notices the first use of a key from an address and hands a
// key.new_ip notification to a background goroutine. Memory is bounded:
// at most maxWatchedKeys keys, maxIPsPerKey addresses each; past that the
// oldest knowledge is forgotten (a later use may notify again). Knowledge is
// per process, so a restart notifies each key's first address again.
type ipWatcher struct {
	notifier Notifier
	log      *slog.Logger

	mu     sync.Mutex
	known  map[string][]netip.Addr
	closed bool

	queue   chan Notification
	done    chan struct{}
	stop    sync.Once
	dropped int // notifications lost to a full queue; guarded by mu
}

const (
	maxWatchedKeys = 100_000
	maxIPsPerKey   = 16
	notifyQueueLen = 1024
)

func newIPWatcher(n Notifier, log *slog.Logger) *ipWatcher {
	w := &ipWatcher{
		notifier: n, log: log,
		known: make(map[string][]netip.Addr),
		queue: make(chan Notification, notifyQueueLen),
		done:  make(chan struct{}),
	}
	go w.loop()
	return w
}

func (w *ipWatcher) seen(p *Principal, ip netip.Addr, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	ips := w.known[p.KeyID]
	for _, a := range ips {
		if a == ip {
			return
		}
	}
	if w.closed {
		return
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

	n := Notification{Type: KeyNewIP, At: now, UserID: p.UserID, KeyID: p.KeyID, KeyName: p.KeyName, IP: ip.String()}
	select {
	case w.queue <- n:
	default:
		w.dropped++
	}
}

func (w *ipWatcher) loop() {
	defer close(w.done)
	for n := range w.queue {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := w.notifier.Notify(ctx, n); err != nil {
			w.log.LogAttrs(ctx, slog.LevelWarn, "mcpauth: new-IP notification failed",
				slog.String("key_id", n.KeyID), slog.String("error", err.Error()))
		}
		cancel()
	}
}

// close delivers queued notifications and stops. Uses after close are not
// noticed.
func (w *ipWatcher) close(ctx context.Context) error {
	w.stop.Do(func() {
		w.mu.Lock()
		w.closed = true
		close(w.queue)
		w.mu.Unlock()
	})
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
