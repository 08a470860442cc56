package mcpauth

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/mcpauth/mcpauth/store"
)

// revocationWatcher polls a shared store for recent revocations and drops
// those keys from the cache, so that a key revoked by another instance stops
// working here within about one poll interval, not at cache expiry.
type revocationWatcher struct {
	store    store.RevocationLister
	forget   func(id string)
	now      func() time.Time
	interval time.Duration
	timeout  time.Duration
	log      *slog.Logger

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// revocationOverlap re-reads this much before the last poll, to absorb
// clock skew between instances and slow commits.
const revocationOverlap = 5 * time.Second

// maxRevocationsPerPoll bounds one poll's result.
const maxRevocationsPerPoll = 10_000

func newRevocationWatcher(s store.RevocationLister, forget func(string), now func() time.Time, interval, timeout time.Duration, log *slog.Logger) *revocationWatcher {
	w := &revocationWatcher{store: s, forget: forget, now: now, interval: interval, timeout: timeout, log: log,
		stop: make(chan struct{}), done: make(chan struct{})}
	go w.loop()
	return w
}

func (w *revocationWatcher) loop() {
	defer close(w.done)
	tick := time.NewTicker(w.interval)
	defer tick.Stop()
	since := w.now().Add(-revocationOverlap)
	failing := false
	for {
		select {
		case <-w.stop:
			return
		case <-tick.C:
		}
		next := w.now()
		ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
		ids, err := w.store.RevokedSince(ctx, since, maxRevocationsPerPoll)
		cancel()
		if err != nil {
			if !failing { // log the transition, not every second of an outage
				w.log.LogAttrs(context.Background(), slog.LevelWarn,
					"mcpauth: polling revocations failed; revoked keys may work here until cache expiry", slog.String("error", err.Error()))
			}
			failing = true
			continue // keep since: the next poll covers the gap
		}
		if failing {
			w.log.LogAttrs(context.Background(), slog.LevelInfo, "mcpauth: polling revocations works again")
			failing = false
		}
		for _, id := range ids {
			w.forget(id)
		}
		since = next.Add(-revocationOverlap)
	}
}

func (w *revocationWatcher) close(ctx context.Context) error {
	w.closeOnce.Do(func() { close(w.stop) })
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
