package mcpauth

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/mcpauth/mcpauth/mcpauth/internal/notifyqueue"
	"github.com/mcpauth/mcpauth/mcpauth/notify"
	"github.com/mcpauth/mcpauth/store"
)

// ipWatcher notices the first use of a key from an address and queues a
// key.new_ip notification.
//
// Its memory is a per-process cache, bounded: at most maxWatchedKeys keys,
// maxIPsPerKey addresses each; past that the oldest knowledge is forgotten.
// An address already in it costs nothing. For an address not in it:
//   - without a store.AddressRecorder, the notification is queued (so a
//     restart, or another instance, notifies each key's addresses again);
//   - with one (the KeyStore implements it), the store decides: on the
//     notification goroutine, never on the request path, RecordAddress is
//     called and the notification sent only if the address is new to the
//     store, so an address is announced once across restarts and instances.
//     If the store fails, the notification is sent anyway (a duplicate
//     notice is better than a missed security notice) and the failure
//     logged, at most once per errLogInterval.
type ipWatcher struct {
	notifier notify.Notifier
	queue    *notifyqueue.Queue
	rec      store.AddressRecorder // nil: the cache alone decides
	timeout  time.Duration         // bounds one RecordAddress call
	log      *slog.Logger
	now      func() time.Time

	mu    sync.Mutex
	known map[string][]netip.Addr

	// Touched only on the queue's goroutine.
	lastErrLog time.Time
	suppressed int
}

const (
	maxWatchedKeys = 100_000
	maxIPsPerKey   = 16
	errLogInterval = time.Minute
)

// newIPWatcher returns a watcher; rec may be nil.
func newIPWatcher(n notify.Notifier, q *notifyqueue.Queue, rec store.AddressRecorder, timeout time.Duration, log *slog.Logger, now func() time.Time) *ipWatcher {
	return &ipWatcher{notifier: n, queue: q, rec: rec, timeout: timeout, log: log, now: now, known: make(map[string][]netip.Addr)}
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
	n := notify.Notification{Type: notify.KeyNewIP, At: now, UserID: p.UserID, KeyID: p.KeyID, KeyName: p.KeyName, IP: ip.String()}
	if w.rec == nil {
		w.queue.Send(w.notifier, n)
		return
	}
	w.queue.SendIf(w.notifier, n, func() bool { return w.isNew(n) })
}

// isNew asks the store whether n's address is new for its key. It runs on
// the queue's goroutine.
func (w *ipWatcher) isNew(n notify.Notification) bool {
	ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
	defer cancel()
	isNew, err := w.rec.RecordAddress(ctx, n.KeyID, n.IP, n.At)
	if err == nil {
		return isNew
	}
	if now := w.now(); w.lastErrLog.IsZero() || now.Sub(w.lastErrLog) >= errLogInterval {
		w.log.LogAttrs(ctx, slog.LevelWarn, "mcpauth: recording a key's address failed; key.new_ip sent anyway",
			slog.String("key_id", n.KeyID), slog.Int("suppressed", w.suppressed), slog.String("error", err.Error()))
		w.lastErrLog, w.suppressed = now, 0
	} else {
		w.suppressed++
	}
	return true
}
