// Package limitertest is the conformance suite for ratelimit.Limiter
// implementations. A limiter whose time can be injected runs it on a fake
// clock:
//
//	func TestConformance(t *testing.T) {
//		limitertest.Run(t, func(t *testing.T, clock *limitertest.Clock) ratelimit.Limiter {
//			return ratelimit.NewMemory(&ratelimit.MemoryOptions{Now: clock.Now})
//		})
//	}
//
// A limiter with its own clock (Redis TIME) runs it in real time with
// RunRealTime: waits then really sleep, and limits are chosen so that the
// whole suite still takes well under a second of sleeping, with exact
// budgets checked only on limits slow enough for the test's duration.
//
// Every subtest uses fresh random keys, so limiters backed by a shared
// server can run the suite in parallel with other tests.
package limitertest

import (
	"context"
	"crypto/rand"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/ratelimit"
)

// Clock is the suite's time source. A fake clock moves only when Advance
// is called; a real clock is the wall clock and Advance sleeps.
type Clock struct {
	mu   sync.Mutex
	now  time.Time
	real bool
}

// NewFakeClock returns a fake clock reading start.
func NewFakeClock(start time.Time) *Clock { return &Clock{now: start} }

// NewRealClock returns the wall clock.
func NewRealClock() *Clock { return &Clock{real: true} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	if c.real {
		return time.Now()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves a fake clock forward by d, or sleeps d on a real one.
func (c *Clock) Advance(d time.Duration) {
	if c.real {
		time.Sleep(d)
		return
	}
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Real reports whether c is the wall clock.
func (c *Clock) Real() bool { return c.real }

// Run runs the suite against limiters that read the time from clock.Now.
// newLimiter is called once per subtest with a fresh fake clock; it should
// register any cleanup with t.Cleanup.
func Run(t *testing.T, newLimiter func(t *testing.T, clock *Clock) ratelimit.Limiter) {
	t.Helper()
	run(t, func(t *testing.T) (ratelimit.Limiter, *Clock) {
		c := NewFakeClock(time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC))
		return newLimiter(t, c), c
	})
}

// RunRealTime runs the suite against limiters that keep their own time.
func RunRealTime(t *testing.T, newLimiter func(t *testing.T) ratelimit.Limiter) {
	t.Helper()
	run(t, func(t *testing.T) (ratelimit.Limiter, *Clock) {
		return newLimiter(t), NewRealClock()
	})
}

type factory func(t *testing.T) (ratelimit.Limiter, *Clock)

func run(t *testing.T, f factory) {
	t.Run("Burst", func(t *testing.T) { testBurst(t, f) })
	t.Run("BurstAboveRate", func(t *testing.T) { testBurstAboveRate(t, f) })
	t.Run("Refill", func(t *testing.T) { testRefill(t, f) })
	t.Run("Cost", func(t *testing.T) { testCost(t, f) })
	t.Run("CostAboveBurst", func(t *testing.T) { testCostAboveBurst(t, f) })
	t.Run("ZeroCost", func(t *testing.T) { testZeroCost(t, f) })
	t.Run("DistinctKeys", func(t *testing.T) { testDistinctKeys(t, f) })
	t.Run("LimitChange", func(t *testing.T) { testLimitChange(t, f) })
	t.Run("InvalidInput", func(t *testing.T) { testInvalid(t, f) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, f) })
	t.Run("ConcurrentCosts", func(t *testing.T) { testConcurrentCosts(t, f) })
}

// NewKey returns a random key no other test uses.
func NewKey() string { return "lt:" + rand.Text()[:12] }

// slow is a limit whose refill (one unit every 12 minutes) cannot matter
// during a test, so budgets can be checked exactly in real time too.
var slow = ratelimit.Limit{Name: "slow", Rate: 5, Per: time.Hour}

func allow(t *testing.T, l ratelimit.Limiter, key string, lim ratelimit.Limit, cost int) ratelimit.Decision {
	t.Helper()
	d, err := l.Allow(context.Background(), key, lim, cost)
	require.NoError(t, err)
	return d
}

// near asserts that got is within [want-tol, want+tol].
func near(t *testing.T, want, tol, got time.Duration, what string) {
	t.Helper()
	assert.True(t, got >= want-tol && got <= want+tol, "%s: want %v ± %v, got %v", what, want, tol, got)
}

func testBurst(t *testing.T, f factory) {
	l, _ := f(t)
	key := NewKey()
	for i := range 5 {
		d := allow(t, l, key, slow, 1)
		require.True(t, d.Allowed, "request %d", i+1)
		assert.Equal(t, 4-i, d.Remaining, "remaining after %d", i+1)
		assert.Equal(t, 5, d.Limit)
		assert.Equal(t, time.Hour, d.Window)
		assert.Equal(t, "slow", d.Policy)
		assert.Zero(t, d.RetryAfter)
		near(t, time.Duration(i+1)*12*time.Minute, time.Second, d.ResetAfter, "reset after")
	}
	d := allow(t, l, key, slow, 1)
	assert.False(t, d.Allowed)
	assert.Equal(t, 0, d.Remaining)
	assert.Equal(t, 5, d.Limit)
	assert.Equal(t, "slow", d.Policy)
	near(t, 12*time.Minute, time.Second, d.RetryAfter, "retry after")
	near(t, time.Hour, time.Second, d.ResetAfter, "reset after when denied")
	// A denial spends nothing: still denied, same wait.
	d2 := allow(t, l, key, slow, 1)
	assert.False(t, d2.Allowed)
	assert.LessOrEqual(t, d2.RetryAfter, d.RetryAfter)
}

func testBurstAboveRate(t *testing.T, f factory) {
	l, _ := f(t)
	key := NewKey()
	lim := ratelimit.Limit{Name: "b", Rate: 2, Per: time.Hour, Burst: 6}
	n := 0
	for range 10 {
		if allow(t, l, key, lim, 1).Allowed {
			n++
		}
	}
	assert.Equal(t, 6, n)
	d := allow(t, l, key, lim, 1)
	assert.Equal(t, 6, d.Limit)
	near(t, 30*time.Minute, time.Second, d.RetryAfter, "retry after")
}

func testRefill(t *testing.T, f factory) {
	l, clock := f(t)
	key := NewKey()
	// One unit every 20ms.
	lim := ratelimit.Limit{Name: "fast", Rate: 10, Per: 200 * time.Millisecond}
	interval := 20 * time.Millisecond

	start := time.Now()
	admitted := drain(t, l, key, lim)
	assertBudget(t, clock, 10, admitted, time.Since(start), interval)

	d := allow(t, l, key, lim, 1)
	require.False(t, d.Allowed)
	require.Positive(t, d.RetryAfter)
	assert.LessOrEqual(t, d.RetryAfter, interval+time.Millisecond)
	assert.LessOrEqual(t, d.ResetAfter, 200*time.Millisecond+time.Millisecond)

	if !clock.Real() {
		// Exactness on a fake clock: one microsecond early is still too early...
		clock.Advance(d.RetryAfter - 2*time.Microsecond)
		require.False(t, allow(t, l, key, lim, 1).Allowed, "admitted before RetryAfter")
		clock.Advance(2 * time.Microsecond)
	} else {
		clock.Advance(d.RetryAfter)
	}
	// ...and at RetryAfter the request passes.
	d = allow(t, l, key, lim, 1)
	require.True(t, d.Allowed, "denied at RetryAfter")

	// After a whole window the full burst is back.
	clock.Advance(200 * time.Millisecond)
	start = time.Now()
	admitted = drain(t, l, key, lim)
	assertBudget(t, clock, 10, admitted, time.Since(start), interval)
}

// drain spends single units until the first denial and returns how many
// were admitted.
func drain(t *testing.T, l ratelimit.Limiter, key string, lim ratelimit.Limit) int {
	t.Helper()
	n := 0
	for n < 10000 {
		if !allow(t, l, key, lim, 1).Allowed {
			return n
		}
		n++
	}
	t.Fatalf("never denied")
	return n
}

// assertBudget checks that exactly want units were admitted on a fake
// clock, or, in real time, no fewer and no more than could be earned
// while draining.
func assertBudget(t *testing.T, clock *Clock, want, got int, took, interval time.Duration) {
	t.Helper()
	if !clock.Real() {
		assert.Equal(t, want, got, "admitted")
		return
	}
	assert.GreaterOrEqual(t, got, want, "admitted")
	assert.LessOrEqual(t, got, want+int(took/interval)+1, "admitted in %v", took)
}

func testCost(t *testing.T, f factory) {
	l, _ := f(t)
	key := NewKey()
	lim := ratelimit.Limit{Name: "c", Rate: 10, Per: time.Hour}
	for _, want := range []int{7, 4, 1} {
		d := allow(t, l, key, lim, 3)
		require.True(t, d.Allowed)
		assert.Equal(t, want, d.Remaining)
	}
	d := allow(t, l, key, lim, 3)
	assert.False(t, d.Allowed, "cost 3 with 1 left")
	assert.Equal(t, 1, d.Remaining)
	near(t, 12*time.Minute, time.Second, d.RetryAfter, "retry after for 2 missing units")
	d = allow(t, l, key, lim, 1)
	assert.True(t, d.Allowed, "cost 1 with 1 left")
	assert.Equal(t, 0, d.Remaining)
}

func testCostAboveBurst(t *testing.T, f factory) {
	l, _ := f(t)
	key := NewKey()
	lim := ratelimit.Limit{Name: "c", Rate: 10, Per: time.Hour}
	d := allow(t, l, key, lim, 50)
	assert.True(t, d.Allowed, "a cost above the burst needs a full bucket")
	assert.Equal(t, 0, d.Remaining)
	d = allow(t, l, key, lim, 50)
	assert.False(t, d.Allowed)
	near(t, time.Hour, time.Second, d.RetryAfter, "retry after for a full bucket")
}

func testZeroCost(t *testing.T, f factory) {
	l, _ := f(t)
	key := NewKey()
	d := allow(t, l, key, slow, 0)
	assert.True(t, d.Allowed)
	assert.Equal(t, 5, d.Remaining)
	allow(t, l, key, slow, 2)
	d = allow(t, l, key, slow, 0)
	assert.True(t, d.Allowed)
	assert.Equal(t, 3, d.Remaining, "cost 0 spends nothing")
	d = allow(t, l, key, slow, 3)
	assert.True(t, d.Allowed)
	assert.Equal(t, 0, d.Remaining)
}

func testDistinctKeys(t *testing.T, f factory) {
	l, _ := f(t)
	a, b := NewKey(), NewKey()
	for range 5 {
		require.True(t, allow(t, l, a, slow, 1).Allowed)
	}
	require.False(t, allow(t, l, a, slow, 1).Allowed)
	d := allow(t, l, b, slow, 1)
	assert.True(t, d.Allowed, "another key has its own budget")
	assert.Equal(t, 4, d.Remaining)
	// The same key under another limit's name is still the same bucket.
	assert.False(t, allow(t, l, a, ratelimit.Limit{Name: "other", Rate: 5, Per: time.Hour}, 1).Allowed)
}

func testLimitChange(t *testing.T, f factory) {
	l, _ := f(t)
	t.Run("Upgrade", func(t *testing.T) {
		key := NewKey()
		small := ratelimit.Limit{Name: "free", Rate: 2, Per: time.Hour}
		big := ratelimit.Limit{Name: "paid", Rate: 10, Per: time.Hour}
		require.True(t, allow(t, l, key, small, 1).Allowed)
		require.True(t, allow(t, l, key, small, 1).Allowed)
		require.False(t, allow(t, l, key, small, 1).Allowed)
		d := allow(t, l, key, big, 1)
		require.True(t, d.Allowed, "upgrade takes effect at once")
		assert.Equal(t, 10, d.Limit)
		assert.Equal(t, "paid", d.Policy)
		assert.Equal(t, 7, d.Remaining, "units spent carry over")
	})
	t.Run("Downgrade", func(t *testing.T) {
		key := NewKey()
		big := ratelimit.Limit{Name: "paid", Rate: 100, Per: time.Hour}
		small := ratelimit.Limit{Name: "free", Rate: 20, Per: time.Hour}
		for range 10 {
			require.True(t, allow(t, l, key, big, 1).Allowed)
		}
		n := 0
		for range 30 {
			if allow(t, l, key, small, 1).Allowed {
				n++
			}
		}
		assert.Equal(t, 10, n, "downgrade takes effect at once; units spent carry over")
	})
}

func testInvalid(t *testing.T, f factory) {
	l, _ := f(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		key  string
		lim  ratelimit.Limit
		cost int
	}{
		{"empty key", "", slow, 1},
		{"negative cost", NewKey(), slow, -1},
		{"zero rate", NewKey(), ratelimit.Limit{Rate: 0, Per: time.Second}, 1},
		{"negative rate", NewKey(), ratelimit.Limit{Rate: -1, Per: time.Second}, 1},
		{"zero per", NewKey(), ratelimit.Limit{Rate: 1}, 1},
		{"negative burst", NewKey(), ratelimit.Limit{Rate: 1, Per: time.Second, Burst: -1}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := l.Allow(ctx, tc.key, tc.lim, tc.cost)
			require.ErrorIs(t, err, ratelimit.ErrInvalid)
		})
	}
}

func testConcurrent(t *testing.T, f factory) {
	l, _ := f(t)
	const budget, workers, each = 50, 16, 20
	lim := ratelimit.Limit{Name: "c", Rate: budget, Per: 24 * time.Hour}
	keys := []string{NewKey(), NewKey(), NewKey()}
	var admitted [3]atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				k := (w + i) % len(keys)
				d, err := l.Allow(context.Background(), keys[k], lim, 1)
				if !assert.NoError(t, err) {
					return
				}
				if d.Allowed {
					admitted[k].Add(1)
				}
			}
		}()
	}
	wg.Wait()
	for k := range keys {
		assert.Equal(t, int64(budget), admitted[k].Load(), "key %d: admitted exactly the budget", k)
	}
}

func testConcurrentCosts(t *testing.T, f factory) {
	l, _ := f(t)
	const budget, workers, each = 100, 8, 40
	lim := ratelimit.Limit{Name: "c", Rate: budget, Per: 24 * time.Hour}
	key := NewKey()
	var spent atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				cost := 1 + (w+i)%3
				d, err := l.Allow(context.Background(), key, lim, cost)
				if !assert.NoError(t, err) {
					return
				}
				if d.Allowed {
					spent.Add(int64(cost))
				}
			}
		}()
	}
	wg.Wait()
	got := spent.Load()
	assert.LessOrEqual(t, got, int64(budget), "never over-admits")
	// Requests of cost 1 run until the very end, so nothing is left over.
	d := allow(t, l, key, lim, 0)
	assert.Equal(t, int64(budget), got+int64(d.Remaining), "admitted plus remaining is the budget")
}
