package ratelimit_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/mcpauth/mcpauth/ratelimit"
	"github.com/mcpauth/mcpauth/ratelimit/limitertest"
)

func newMemory(t *testing.T, opts *ratelimit.MemoryOptions) *ratelimit.Memory {
	t.Helper()
	m := ratelimit.NewMemory(opts)
	t.Cleanup(func() { require.NoError(t, m.Close(context.Background())) })
	return m
}

func TestMemoryConformance(t *testing.T) {
	limitertest.Run(t, func(t *testing.T, clock *limitertest.Clock) ratelimit.Limiter {
		return newMemory(t, &ratelimit.MemoryOptions{Now: clock.Now})
	})
}

func TestMemoryConformanceRealTime(t *testing.T) {
	limitertest.RunRealTime(t, func(t *testing.T) ratelimit.Limiter {
		return newMemory(t, nil)
	})
}

// TestMemoryLateCaller replays what happens when a caller reads the clock,
// is descheduled, and reaches the bucket after a later caller: with a bare
// rate.Limiter the late, older time rewinds the bucket's clock and the next
// caller is given the same refill twice.
func TestMemoryLateCaller(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 10, 0, time.UTC)
	times := []time.Time{base, base.Add(-time.Second), base}
	lim := ratelimit.Limit{Name: "t", Rate: 1, Per: time.Second, Burst: 2}

	// The bare x/time/rate limiter, fed the same times.
	raw := rate.NewLimiter(1, 2)
	rawAdmitted := 0
	for _, at := range times {
		if raw.AllowN(at, 1) {
			rawAdmitted++
		}
	}
	t.Logf("bare rate.Limiter admitted %d of 3 with a burst of 2 and no time passing", rawAdmitted)

	i := 0
	m := newMemory(t, &ratelimit.MemoryOptions{Now: func() time.Time {
		at := times[min(i, len(times)-1)]
		i++
		return at
	}})
	i = 0 // NewMemory read the clock once
	admitted := 0
	for range times {
		d, err := m.Allow(context.Background(), "k", lim, 1)
		require.NoError(t, err)
		if d.Allowed {
			admitted++
		}
	}
	assert.Equal(t, 2, admitted, "no time passed: only the burst may be admitted")
}

func TestMemoryNoAllocsOnHit(t *testing.T) {
	m := newMemory(t, nil)
	ctx := context.Background()
	lim := ratelimit.Limit{Name: "a", Rate: 1000000, Per: time.Second}
	_, err := m.Allow(ctx, "k:alloc", lim, 1)
	require.NoError(t, err)
	allocs := testing.AllocsPerRun(1000, func() {
		_, _ = m.Allow(ctx, "k:alloc", lim, 1)
	})
	assert.Zero(t, allocs)
	denied := ratelimit.Limit{Name: "d", Rate: 1, Per: time.Hour}
	_, _ = m.Allow(ctx, "k:denied", denied, 1)
	allocs = testing.AllocsPerRun(1000, func() {
		d, _ := m.Allow(ctx, "k:denied", denied, 1)
		if d.Allowed {
			panic("allowed")
		}
	})
	assert.Zero(t, allocs)
}

func TestMemoryEvictsIdleFullEntries(t *testing.T) {
	clock := limitertest.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	m := newMemory(t, &ratelimit.MemoryOptions{Now: clock.Now, IdleTimeout: time.Minute, SweepInterval: 5 * time.Millisecond})
	ctx := context.Background()
	fast := ratelimit.Limit{Name: "f", Rate: 10, Per: time.Second}
	slowLim := ratelimit.Limit{Name: "s", Rate: 1, Per: time.Hour}
	for i := range 1000 {
		_, err := m.Allow(ctx, "k"+string(rune('a'+i%26))+time.Duration(i).String(), fast, 1)
		require.NoError(t, err)
	}
	_, err := m.Allow(ctx, "drained", slowLim, 1)
	require.NoError(t, err)
	require.Equal(t, 1001, m.Len())

	clock.Advance(59 * time.Second)
	time.Sleep(30 * time.Millisecond)
	assert.Equal(t, 1001, m.Len(), "nothing is idle yet")

	clock.Advance(2 * time.Second)
	require.Eventually(t, func() bool { return m.Len() == 1 }, 5*time.Second, 5*time.Millisecond)

	// The entry that still owes units is kept: dropping it would hand out a
	// fresh bucket.
	d, err := m.Allow(ctx, "drained", slowLim, 1)
	require.NoError(t, err)
	assert.False(t, d.Allowed)

	clock.Advance(2 * time.Hour)
	require.Eventually(t, func() bool { return m.Len() == 0 }, 5*time.Second, 5*time.Millisecond)
}

func TestMemoryClose(t *testing.T) {
	m := ratelimit.NewMemory(&ratelimit.MemoryOptions{SweepInterval: time.Millisecond})
	require.NoError(t, m.Close(context.Background()))
	require.NoError(t, m.Close(context.Background()), "idempotent")
	d, err := m.Allow(context.Background(), "k", ratelimit.DefaultLimit, 1)
	require.NoError(t, err)
	assert.True(t, d.Allowed, "still decides after Close")
}

func TestMemoryOptionsPanics(t *testing.T) {
	assert.Panics(t, func() { ratelimit.NewMemory(&ratelimit.MemoryOptions{IdleTimeout: -1}) })
}
