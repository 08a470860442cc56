package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"math/bits"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/time/rate"
)

// MemoryOptions configures NewMemory. A nil *MemoryOptions means all defaults.
type MemoryOptions struct {
	// Shards is the number of independently locked parts of the key table,
	// rounded up to a power of two. Default 64.
	Shards int
	// IdleTimeout is how long a key must go unused before its entry may be
	// dropped. An entry is only dropped once its bucket is full again, so
	// dropping it never hands out extra budget. Default 10 minutes.
	IdleTimeout time.Duration
	// SweepInterval is how often the background sweeper looks for idle
	// entries. Default IdleTimeout/2, at most one minute.
	SweepInterval time.Duration
	// Now returns the current time. Default time.Now. It is called with a
	// shard lock held, so it must be fast and must not call the limiter.
	Now func() time.Time
}

// Memory is an in-process Limiter built on golang.org/x/time/rate: one
// token bucket per key, in a sharded map. Entries unused for
// MemoryOptions.IdleTimeout (and full again) are dropped by a background
// sweeper, so memory follows the number of recently active keys.
//
// The time is read while the key's shard is locked, and an entry's clock
// never moves backwards, so callers that are descheduled between reading
// the clock and deciding cannot make the bucket refill twice (a plain
// rate.Limiter shared by such callers can over-admit).
//
// Memory is safe for concurrent use. Close stops the sweeper.
type Memory struct {
	shards    []shard
	mask      uint64
	seed      maphash.Seed
	now       func() time.Time
	epoch     time.Time
	idle      time.Duration
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

var _ Limiter = (*Memory)(nil)

type shard struct {
	mu sync.Mutex
	m  map[string]*entry
	// peak is the largest size of m since it was last rebuilt; Go maps do
	// not shrink, so the sweeper rebuilds m when it falls far below peak.
	peak int
	_    [40]byte // keep shards on separate cache lines
}

type entry struct {
	// kbuf holds short keys; the map key then points into it (see
	// keyString), so comparing the key touches the entry's own cache lines
	// instead of a separate string.
	kbuf  [inlineKey]byte
	last  time.Duration // since Memory.epoch, never decreasing
	rate  rate.Limit
	burst int
	lim   rate.Limiter
	// 128 bytes in all on 64-bit platforms: two cache lines, which the
	// allocator's 128-byte size class keeps aligned.
}

// NewMemory returns an in-memory limiter and starts its sweeper. It panics
// if an option is negative.
func NewMemory(opts *MemoryOptions) *Memory {
	var o MemoryOptions
	if opts != nil {
		o = *opts
	}
	if o.Shards < 0 || o.IdleTimeout < 0 || o.SweepInterval < 0 {
		panic(fmt.Sprintf("mcpauth/ratelimit: negative MemoryOptions %+v", o))
	}
	if o.Shards == 0 {
		o.Shards = 64
	}
	n := 1 << bits.Len(uint(o.Shards-1))
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 10 * time.Minute
	}
	if o.SweepInterval == 0 {
		o.SweepInterval = min(o.IdleTimeout/2, time.Minute)
		if o.SweepInterval <= 0 {
			o.SweepInterval = o.IdleTimeout
		}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	m := &Memory{
		shards: make([]shard, n),
		mask:   uint64(n - 1),
		seed:   maphash.MakeSeed(),
		now:    o.Now,
		idle:   o.IdleTimeout,
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	m.epoch = m.now()
	for i := range m.shards {
		m.shards[i].m = make(map[string]*entry)
	}
	go m.sweeper(o.SweepInterval)
	return m
}

// Allow implements Limiter. It never returns ErrUnavailable.
func (m *Memory) Allow(_ context.Context, key string, limit Limit, cost int) (Decision, error) {
	cost, err := CheckRequest(key, limit, cost)
	if err != nil {
		return Decision{}, err
	}
	rps := float64(limit.Rate) / limit.Per.Seconds()
	r := rate.Limit(rps)
	b := limit.EffectiveBurst()

	sh := &m.shards[maphash.String(m.seed, key)&m.mask]
	sh.mu.Lock()
	now := m.now()
	since := now.Sub(m.epoch)
	e := sh.m[key]
	if e == nil {
		e = &entry{last: since}
		e.fill(r, b)
		sh.m[e.keyString(key)] = e
		if len(sh.m) > sh.peak {
			sh.peak = len(sh.m)
		}
	}
	if since < e.last {
		// The clock went backwards (or an injected clock did): decide at the
		// entry's latest time so that the bucket cannot refill twice.
		since = e.last
		now = m.epoch.Add(since)
	}
	e.last = since
	if e.rate != r || e.burst != b {
		e.relimit(now, r, b)
	}
	tokens := e.lim.TokensAt(now)
	allowed := tokens >= float64(cost)
	if allowed && cost > 0 {
		e.lim.AllowN(now, cost)
		tokens -= float64(cost)
	}
	sh.mu.Unlock()

	d := Decision{
		Allowed:    allowed,
		Limit:      b,
		Remaining:  max(0, int(math.Floor(tokens+1e-9))),
		Window:     limit.Per,
		ResetAfter: ceilDuration((float64(b) - tokens) / rps),
		Policy:     limit.Name,
	}
	if !allowed {
		d.RetryAfter = ceilDuration((float64(cost) - tokens) / rps)
	}
	return d, nil
}

// relimit switches e to a new rate and burst, keeping the units already
// spent: a key that used 10 of 60 has 290 of 300 left after an upgrade, and
// 10 of 20 after a downgrade. Partly earned units are not carried over.
func (e *entry) relimit(now time.Time, r rate.Limit, b int) {
	spent := float64(e.burst) - e.lim.TokensAt(now)
	left := b - int(math.Ceil(spent-1e-9))
	e.fill(r, b)
	if take := b - max(left, 0); take > 0 {
		e.lim.AllowN(now, take)
	}
}

// inlineKey is the longest key stored inside its entry: enough for key
// buckets ("k:" and a 12-character key ID) and user IDs of up to 22 bytes.
// Longer keys work the same, with their bytes in a separate string.
const inlineKey = 24

// keyString returns key as a string that shares memory with e when it is
// short enough, and a copy of key otherwise. Never a caller's string: it
// may be a slice of a much larger one.
func (e *entry) keyString(key string) string {
	if len(key) > inlineKey {
		return strings.Clone(key)
	}
	n := copy(e.kbuf[:], key)
	// kbuf is never written again, so the string is immutable.
	return unsafe.String(&e.kbuf[0], n)
}

// fill sets e's limiter to rate r and burst b with a full bucket at any
// time: its last update is the zero time, so the next read refills it to
// the brim. (The limiter is embedded to save an allocation and a pointer
// hop per key, so rate.NewLimiter cannot be used.)
func (e *entry) fill(r rate.Limit, b int) {
	e.lim.SetLimitAt(time.Time{}, r)
	e.lim.SetBurstAt(time.Time{}, b)
	e.rate, e.burst = r, b
}

// Len returns the number of keys currently tracked.
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

func (m *Memory) sweeper(every time.Duration) {
	defer close(m.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.sweep()
		}
	}
}

// sweep drops entries idle for at least IdleTimeout whose bucket is full,
// and rebuilds shard maps that shrank to under a quarter of their peak.
func (m *Memory) sweep() {
	for i := range m.shards {
		select {
		case <-m.stop:
			return
		default:
		}
		sh := &m.shards[i]
		sh.mu.Lock()
		now := m.now()
		since := now.Sub(m.epoch)
		for k, e := range sh.m {
			if since-e.last < m.idle {
				continue
			}
			if e.lim.TokensAt(now) >= float64(e.burst) {
				delete(sh.m, k)
			}
		}
		if sh.peak > 64 && len(sh.m) < sh.peak/4 {
			fresh := make(map[string]*entry, len(sh.m))
			for k, e := range sh.m {
				fresh[k] = e
			}
			sh.m = fresh
			sh.peak = len(fresh)
		}
		sh.mu.Unlock()
	}
}

// Close stops the sweeper and waits for it, or for ctx to end. The limiter
// keeps working after Close, without dropping idle entries. Close is
// idempotent.
func (m *Memory) Close(ctx context.Context) error {
	m.closeOnce.Do(func() { close(m.stop) })
	select {
	case <-m.done:
		return nil
	case <-ctx.Done():
		return errors.Join(errors.New("mcpauth/ratelimit: close: sweeper still running"), ctx.Err())
	}
}
