package mcpauth

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The default clock reads what time.Now would: between two time.Now
// readings, by the monotonic clock and by the wall clock, and with a
// monotonic reading of its own (so that durations between its readings
// ignore wall-clock steps, as time.Now's do).
func TestSystemClockReadsTheSystemClock(t *testing.T) {
	t.Parallel()
	c := newSystemClock()
	prev := c.now()
	for range 1000 {
		before := time.Now()
		got := c.now()
		after := time.Now()
		require.False(t, got.Before(before) || got.After(after), "%v not within [%v, %v]", got, before, after)
		// Round(0) strips the monotonic reading: the wall clocks compare.
		require.False(t, got.Round(0).Before(before.Round(0)) || got.Round(0).After(after.Round(0)), "wall %v not within [%v, %v]", got, before, after)
		require.NotEqual(t, got, got.Round(0), "no monotonic reading")
		require.False(t, got.Before(prev), "went back from %v to %v", prev, got)
		prev = got
	}
}

// A base older than clockResync is replaced by a new time.Now reading, so
// that a wall-clock step shows within clockResync; a younger one is kept.
func TestSystemClockResyncs(t *testing.T) {
	t.Parallel()
	c := newSystemClock()
	fresh := c.base.Load()
	c.now()
	assert.Same(t, fresh, c.base.Load(), "a fresh base is kept")

	old := time.Now().Add(-clockResync)
	c.base.Store(&old)
	before := time.Now()
	got := c.now()
	base := c.base.Load()
	require.NotSame(t, &old, base, "an old base is replaced")
	assert.Equal(t, *base, got, "the new base is the reading returned")
	assert.False(t, base.Before(before))
}
