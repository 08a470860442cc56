package mcpauth

import (
	"sync/atomic"
	"time"
)

// clockResync is how often systemClock reads the wall clock again: a step
// of the system's wall clock (settimeofday, an NTP step) shows in its
// readings at most this long after it happens.
const clockResync = 50 * time.Millisecond

// systemClock is the default Options.Now: the time time.Now would return,
// for the cost of one clock read instead of two. time.Now reads the wall
// clock and the monotonic clock (two vDSO calls on Linux, about 60 ns on a
// virtual machine); systemClock reads only the monotonic clock and adds
// what elapsed to a time.Now reading at most clockResync old. Both clocks
// advance at the same rate (the kernel slews them alike), so a reading
// differs from time.Now only after a step of the wall clock, and for at
// most clockResync. Its readings carry a monotonic reading, like
// time.Now's. It is safe for concurrent use.
type systemClock struct {
	base atomic.Pointer[time.Time] // a time.Now reading
}

func newSystemClock() *systemClock {
	c := &systemClock{}
	t := time.Now()
	c.base.Store(&t)
	return c
}

// now returns the current time.
func (c *systemClock) now() time.Time {
	base := c.base.Load()
	if d := time.Since(*base); d < clockResync {
		return base.Add(d)
	}
	t := time.Now()
	c.base.Store(&t)
	return t
}
