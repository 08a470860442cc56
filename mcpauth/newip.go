package mcpauth

import (
	"net/netip"
	"slices"
	"sync"
	"time"
)

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
