package mcpauth

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/mcpauth/mcpauth/store"
)

// toucher coalesces key uses in memory and writes them to the store in one
// batch per interval, so authentication never writes to the database per
// request. Each key is queued at most once per second; the map holds at most
// one time per key.
type toucher struct {
	store    store.Toucher
	interval time.Duration
	timeout  time.Duration
	log      *slog.Logger

	mu      sync.Mutex
	pending map[string]time.Time

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// touchResolution is how often one key's use is queued at most.
const touchResolution = time.Second

func newToucher(s store.Toucher, interval, timeout time.Duration, log *slog.Logger) *toucher {
	t := &toucher{
		store: s, interval: interval, timeout: timeout, log: log,
		pending: make(map[string]time.Time),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go t.loop()
	return t
}

// use records that the key behind e was used at now.
func (t *toucher) use(e *cacheEntry, id string, now time.Time) {
	n := now.UnixNano()
	last := e.lastTouch.Load()
	if n-last < int64(touchResolution) || !e.lastTouch.CompareAndSwap(last, n) {
		return
	}
	t.mu.Lock()
	if now.After(t.pending[id]) {
		t.pending[id] = now
	}
	t.mu.Unlock()
}

func (t *toucher) loop() {
	defer close(t.done)
	tick := time.NewTicker(t.interval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			ctx, cancel := context.WithTimeout(context.Background(), t.timeout)
			_ = t.flush(ctx)
			cancel()
		case <-t.stop:
			return
		}
	}
}

// flush writes pending uses. On failure they are put back for the next try.
func (t *toucher) flush(ctx context.Context) error {
	t.mu.Lock()
	if len(t.pending) == 0 {
		t.mu.Unlock()
		return nil
	}
	batch := make([]store.Touch, 0, len(t.pending))
	for id, at := range t.pending {
		batch = append(batch, store.Touch{ID: id, At: at})
	}
	t.pending = make(map[string]time.Time, len(batch))
	t.mu.Unlock()

	err := t.store.TouchKeys(ctx, batch)
	if err == nil {
		return nil
	}
	t.log.LogAttrs(ctx, slog.LevelWarn, "mcpauth: flushing last-used times failed; will retry",
		slog.Int("keys", len(batch)), slog.String("error", err.Error()))
	t.mu.Lock()
	for _, tc := range batch {
		if tc.At.After(t.pending[tc.ID]) {
			t.pending[tc.ID] = tc.At
		}
	}
	t.mu.Unlock()
	return err
}

// close stops the loop and flushes what is pending.
func (t *toucher) close(ctx context.Context) error {
	t.closeOnce.Do(func() { close(t.stop) })
	select {
	case <-t.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return t.flush(ctx)
}
