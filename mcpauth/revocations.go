package mcpauth

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/mcpauth/mcpauth/store"
)

// changeLister is what the poll asks: store.ChangeLister's method, or
// store.RevocationLister's for stores that only list revocations.
type changeLister func(ctx context.Context, since time.Time, limit int) ([]string, error)

// changeListerOf returns the poll of a shared store, or nil.
func changeListerOf(keys store.KeyLookup) changeLister {
	if cl, ok := keys.(store.ChangeLister); ok {
		return cl.ChangedSince
	}
	if rl, ok := keys.(store.RevocationLister); ok {
		return rl.RevokedSince
	}
	return nil
}

// revocationWatcher polls a shared store for recent changes (revocations,
// new expiries) and drops those keys from the cache, so that a key changed
// by another instance is re-read here within about one poll interval, not
// at cache expiry.
type revocationWatcher struct {
	list     changeLister
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

func newRevocationWatcher(list changeLister, forget func(string), now func() time.Time, interval, timeout time.Duration, log *slog.Logger) *revocationWatcher {
	w := &revocationWatcher{list: list, forget: forget, now: now, interval: interval, timeout: timeout, log: log,
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
		ids, err := w.list(ctx, since, maxRevocationsPerPoll)
		cancel()
		if err != nil {
			if !failing { // log the transition, not every second of an outage
				w.log.LogAttrs(context.Background(), slog.LevelWarn,
					"mcpauth: polling key changes failed; keys changed elsewhere may work here until cache expiry unless the change channel delivers", slog.String("error", err.Error()))
			}
			failing = true
			continue // keep since: the next poll covers the gap
		}
		if failing {
			w.log.LogAttrs(context.Background(), slog.LevelInfo, "mcpauth: polling key changes works again")
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
