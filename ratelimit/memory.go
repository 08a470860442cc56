package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"math/bits"
	"sync"
	"time"
	_ "unsafe" // for go:linkname
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
	// Now returns the current time. Default: the monotonic clock (the one
	// time.Now also reads), read directly. It is called with a shard lock
	// held, so it must be fast and must not call the limiter.
	Now func() time.Time
}

// Memory is an in-process Limiter: one token bucket per key (the same
// arithmetic as golang.org/x/time/rate, with the shard's lock as its only
// lock), in a sharded open-addressing table. Entries unused for
// MemoryOptions.IdleTimeout (and full again) are dropped by a background
// sweeper, so memory follows the number of recently active keys.
//
// The table holds no pointers, so the garbage collector never scans it,
// and it does not keep keys: a key is known by two independent 64-bit
// hashes (hash/maphash, with random seeds per Memory). Two keys share a
// bucket only if both hashes collide, with probability about n²/2¹²⁹ for n
// keys, which nobody can aim for without the seeds.
//
// The time is read while the key's shard is locked, and an entry's clock
// never moves backwards, so callers that are descheduled between reading
// the clock and deciding cannot make the bucket refill twice (a plain
// rate.Limiter shared by such callers can over-admit).
//
// Memory is safe for concurrent use. Close stops the sweeper.
type Memory struct {
	shards      []shard
	mask        uint64
	shardBits   int
	seed, seed2 maphash.Seed
	now         func() time.Time // nil: the monotonic clock (nanotime)
	epoch       time.Time
	epochNano   int64
	idle        time.Duration
	stop        chan struct{}
	done        chan struct{}
	closeOnce   sync.Once
}

var _ Limiter = (*Memory)(nil)

type shard struct {
	mu    sync.Mutex
	slots []entry  // a power of two long; h1 == 0 marks a free slot
	n     int      // slots in use
	_     [24]byte // keep shards on separate cache lines
}

// entry is one key's bucket: 48 bytes, no pointers.
type entry struct {
	h1, h2 uint64        // the key's hashes; h1 is never 0 in a used slot
	last   time.Duration // since Memory.epoch, never decreasing
	tokens float64       // in the bucket at last
	perNs  float64       // refill rate, units per nanosecond
	burst  int
}

// minSlots is the size of a shard's table when it is created or shrunk.
const minSlots = 16

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
	shardBits := bits.Len(uint(o.Shards - 1))
	n := 1 << shardBits
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 10 * time.Minute
	}
	if o.SweepInterval == 0 {
		o.SweepInterval = min(o.IdleTimeout/2, time.Minute)
		if o.SweepInterval <= 0 {
			o.SweepInterval = o.IdleTimeout
		}
	}
	m := &Memory{
		shards:    make([]shard, n),
		mask:      uint64(n - 1),
		shardBits: shardBits,
		seed:      maphash.MakeSeed(),
		seed2:     maphash.MakeSeed(),
		now:       o.Now,
		idle:      o.IdleTimeout,
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	if m.now != nil {
		m.epoch = m.now()
	} else {
		m.epochNano = nanotime()
	}
	for i := range m.shards {
		m.shards[i].slots = make([]entry, minSlots)
	}
	go m.sweeper(o.SweepInterval)
	return m
}

// since returns the time since the limiter's epoch: the injected clock's,
// or by default the monotonic clock's (one clock read instead of the two
// of time.Now).
func (m *Memory) since() time.Duration {
	if m.now != nil {
		return m.now().Sub(m.epoch)
	}
	return time.Duration(nanotime() - m.epochNano)
}

// nanotime is the runtime's monotonic clock, which time.Now reads too.
//
//go:linkname nanotime runtime.nanotime
func nanotime() int64

// Allow implements Limiter. It never returns ErrUnavailable.
func (m *Memory) Allow(_ context.Context, key string, limit Limit, cost int) (Decision, error) {
	cost, err := CheckRequest(key, limit, cost)
	if err != nil {
		return Decision{}, err
	}
	perNs := float64(limit.Rate) / float64(limit.Per)
	b := limit.EffectiveBurst()
	h1, h2 := maphash.String(m.seed, key)|1<<63, maphash.String(m.seed2, key) // h1 != 0; its low bits pick the shard

	sh := &m.shards[h1&m.mask]
	sh.mu.Lock()
	since := m.since()
	e := sh.find(h1, h2, m.shardBits)
	if e.h1 == 0 {
		e = sh.insert(e, h1, h2, m.shardBits)
		*e = entry{h1: h1, h2: h2, last: since, tokens: float64(b), perNs: perNs, burst: b}
	}
	// A clock that went backwards (or an injected clock that did) leaves
	// the entry at its latest time, so that the bucket cannot refill twice.
	e.advance(since)
	if e.perNs != perNs || e.burst != b {
		e.relimit(perNs, b)
	}
	tokens := e.tokens
	allowed := tokens >= float64(cost)
	if allowed {
		tokens -= float64(cost)
		e.tokens = tokens
	}
	sh.mu.Unlock()

	rps := perNs * 1e9
	d := Decision{
		Allowed:    allowed,
		Limit:      b,
		Remaining:  max(0, int(tokens+1e-9)),
		Window:     limit.Per,
		ResetAfter: ceilDuration((float64(b) - tokens) / rps),
		Policy:     limit.Name,
	}
	if !allowed {
		d.RetryAfter = ceilDuration((float64(cost) - tokens) / rps)
	}
	return d, nil
}

// find returns the slot of the key with hashes h1, h2, or the free slot
// where it would go. The table always has a free slot.
func (sh *shard) find(h1, h2 uint64, shardBits int) *entry {
	mask := uint64(len(sh.slots) - 1)
	for i := (h1 >> shardBits) & mask; ; i = (i + 1) & mask {
		e := &sh.slots[i]
		if e.h1 == 0 || e.h1 == h1 && e.h2 == h2 {
			return e
		}
	}
}

// insert takes the free slot e for a new key, growing the table first when
// it would be more than three quarters full, and returns the slot to fill.
func (sh *shard) insert(e *entry, h1, h2 uint64, shardBits int) *entry {
	if (sh.n+1)*4 > len(sh.slots)*3 {
		sh.rebuild(2*len(sh.slots), shardBits)
		e = sh.find(h1, h2, shardBits)
	}
	sh.n++
	return e
}

// rebuild moves the used slots into a new table of size slots.
func (sh *shard) rebuild(size, shardBits int) {
	old := sh.slots
	sh.slots = make([]entry, size)
	for i := range old {
		if e := &old[i]; e.h1 != 0 {
			*sh.find(e.h1, e.h2, shardBits) = *e
		}
	}
}

// advance refills e's bucket up to since, if since is later than e.last.
func (e *entry) advance(since time.Duration) {
	if since <= e.last {
		return
	}
	e.tokens = min(float64(e.burst), e.tokens+float64(since-e.last)*e.perNs)
	e.last = since
}

// relimit switches e to a new rate and burst, keeping the units already
// spent: a key that used 10 of 60 has 290 of 300 left after an upgrade, and
// 10 of 20 after a downgrade. Partly earned units are not carried over.
func (e *entry) relimit(perNs float64, b int) {
	spent := float64(e.burst) - e.tokens
	left := b - int(math.Ceil(spent-1e-9))
	e.tokens, e.perNs, e.burst = float64(max(left, 0)), perNs, b
}

// Len returns the number of keys currently tracked.
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		n += sh.n
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
// and rebuilds the tables it dropped entries from, smaller when they are
// less than a quarter full (open addressing cannot simply free a slot).
func (m *Memory) sweep() {
	for i := range m.shards {
		select {
		case <-m.stop:
			return
		default:
		}
		sh := &m.shards[i]
		sh.mu.Lock()
		since := m.since()
		dropped := 0
		for j := range sh.slots {
			e := &sh.slots[j]
			if e.h1 == 0 || since-e.last < m.idle {
				continue
			}
			if e.advance(since); e.tokens >= float64(e.burst) {
				*e = entry{}
				dropped++
			}
		}
		if dropped > 0 {
			sh.n -= dropped
			size := len(sh.slots)
			for size > minSlots && sh.n*4 < size {
				size /= 2
			}
			sh.rebuild(size, m.shardBits)
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
