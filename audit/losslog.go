package audit

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// lossReason says why an event was lost.
type lossReason uint8

const (
	lossNone        lossReason = iota // not lost
	lossQueueFull                     // BestEffort, queue full
	lossCallerShare                   // BestEffort, the caller's share of the queue used up
	lossFailed                        // in a batch the sink refused after every retry
	nLossReasons
)

// lossAttr names each reason's count in a loss summary line.
var lossAttr = [nLossReasons]string{"", "dropped_queue_full", "dropped_caller_share", "failed"}

const (
	// maxLossKeys bounds how many distinct key IDs a summary tracks between
	// two lines; losses of further keys are only in the totals.
	maxLossKeys = 64
	// lossTopKeys is how many key IDs (those with the most losses) a line names.
	lossTopKeys = 5
	// lossClockEvery: while losses wait for their line, a drop reads the
	// clock only every lossClockEvery drops (a clock read can cost more
	// than the drop); the writer goroutine's timer covers the quiet end.
	lossClockEvery = 64
)

// LossMessage is the message of the Writer's loss summary lines.
const LossMessage = "mcpauth/audit: audit events lost"

// lossLog turns lost events into rate-limited summary lines: the first
// loss is logged at once, later ones at most once per interval, and
// whatever is left at Close. Lines carry counts and key IDs, never other
// event contents or sink error text.
type lossLog struct {
	log      *slog.Logger
	now      func() time.Time
	interval time.Duration
	wake     chan struct{} // cap 1: a loss waits for its line (read by the writer goroutine)

	mu      sync.Mutex
	logged  bool      // a line has been written
	last    time.Time // when the last line was written
	first   time.Time // the first loss not yet logged
	waiting bool      // wake was sent for the losses not yet logged
	drops   uint64    // drops counted while waiting
	counts  [nLossReasons]uint64
	keys    map[string]uint64 // key ID -> losses not yet logged
}

func newLossLog(l *slog.Logger, now func() time.Time, interval time.Duration) *lossLog {
	return &lossLog{log: l, now: now, interval: interval, wake: make(chan struct{}, 1), keys: make(map[string]uint64)}
}

// drop counts one dropped event.
func (l *lossLog) drop(r lossReason, keyID string) {
	l.mu.Lock()
	l.countLocked(r, keyID, 1)
	if l.waiting {
		if l.drops++; l.drops%lossClockEvery != 0 {
			l.mu.Unlock()
			return
		}
	}
	l.settleLocked(false)
}

// failed counts the events of a batch given up.
func (l *lossLog) failed(batch []item) {
	if len(batch) == 0 {
		return
	}
	l.mu.Lock()
	for i := range batch {
		l.countLocked(lossFailed, batch[i].ev.KeyID, 1)
	}
	l.settleLocked(false)
}

// flush writes a line for the losses not yet logged if one is due (or
// always, if force) and reports whether losses are still waiting.
func (l *lossLog) flush(force bool) bool {
	l.mu.Lock()
	return l.settleLocked(force)
}

func (l *lossLog) countLocked(r lossReason, keyID string, n uint64) {
	if l.pending() == 0 {
		l.first = l.now()
	}
	l.counts[r] += n
	if keyID == "" {
		return
	}
	if _, ok := l.keys[keyID]; ok || len(l.keys) < maxLossKeys {
		l.keys[keyID] += n
	}
}

func (l *lossLog) pending() uint64 {
	var n uint64
	for _, c := range l.counts {
		n += c
	}
	return n
}

// settleLocked is called with l.mu held and releases it. It writes a line
// when one is due and reports whether losses are still waiting for one.
func (l *lossLog) settleLocked(force bool) bool {
	if l.pending() == 0 {
		l.mu.Unlock()
		return false
	}
	now := l.now()
	if !force && l.logged && now.Sub(l.last) < l.interval {
		wake := !l.waiting
		l.waiting = true
		l.mu.Unlock()
		if wake {
			select {
			case l.wake <- struct{}{}:
			default:
			}
		}
		return true
	}
	attrs := make([]slog.Attr, 0, nLossReasons+2)
	for r := lossQueueFull; r < nLossReasons; r++ {
		attrs = append(attrs, slog.Uint64(lossAttr[r], l.counts[r]))
	}
	attrs = append(attrs, slog.Time("since", l.first))
	if keys := topKeys(l.keys); len(keys) > 0 {
		attrs = append(attrs, slog.Attr{Key: "keys", Value: slog.GroupValue(keys...)})
	}
	l.counts = [nLossReasons]uint64{}
	clear(l.keys)
	l.logged, l.last, l.waiting, l.drops = true, now, false, 0
	l.mu.Unlock()
	l.log.LogAttrs(context.Background(), slog.LevelError, LossMessage, attrs...)
	return false
}

// topKeys returns the lossTopKeys key IDs with the most losses, most first.
func topKeys(m map[string]uint64) []slog.Attr {
	type kv struct {
		id string
		n  uint64
	}
	all := make([]kv, 0, len(m))
	for id, n := range m {
		all = append(all, kv{id, n})
	}
	slices.SortFunc(all, func(a, b kv) int {
		if c := cmp.Compare(b.n, a.n); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	out := make([]slog.Attr, 0, min(len(all), lossTopKeys))
	for _, e := range all[:min(len(all), lossTopKeys)] {
		out = append(out, slog.Uint64(e.id, e.n))
	}
	return out
}
