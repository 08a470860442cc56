package audit

import (
	"hash/maphash"
	"sync/atomic"
)

// shareSlots is the number of counters in each of the share's two rows.
const shareSlots = 4096

// shares counts, approximately and without locks, the BestEffort events
// each caller has in the queue (sent, not yet taken by the writer
// goroutine). A caller is the event's key, else its user, else its client
// address (callerOf). The count is a count-min sketch: every caller adds to
// one counter in each of two rows, chosen by a hash with a seed drawn per
// Writer, and its count is the smaller of its two counters. The count can
// only be too high, when both counters are shared with other callers' queued
// events; which callers share counters cannot be predicted without the seed.
type shares struct {
	seed maphash.Seed
	a, b [shareSlots]atomic.Int32
}

func newShares() *shares { return &shares{seed: maphash.MakeSeed()} }

// slots returns e's caller's counter in each row.
func (s *shares) slots(e *Event) (i, j uint32) {
	var id string
	var kind uint64
	switch {
	case e.KeyID != "":
		id, kind = e.KeyID, 1
	case e.UserID != "":
		id, kind = e.UserID, 2
	case e.ClientIP != "":
		id, kind = e.ClientIP, 3
	}
	// kind keeps a user ID from sharing counters with an equal key ID or
	// address.
	h := maphash.String(s.seed, id) ^ kind*0x9e3779b97f4a7c15
	return uint32(h) % shareSlots, uint32(h>>32) % shareSlots
}

// admit counts e's caller in, unless the caller already has as many
// events queued as there are free slots (free, at least 1). It returns
// lossNone when the event may be queued, else why it is dropped. The
// caller holds the queue's lock, so free cannot shrink before the push.
func (s *shares) admit(free int, e *Event) lossReason {
	i, j := s.slots(e)
	if int(min(s.a[i].Load(), s.b[j].Load())) >= free {
		return lossCallerShare
	}
	// Counted before the push, so that the writer goroutine, which
	// uncounts what it takes, never goes below zero.
	s.a[i].Add(1)
	s.b[j].Add(1)
	return lossNone
}

// taken uncounts the events of batch, which the writer goroutine has taken
// from the queue.
func (s *shares) taken(batch []item) {
	for k := range batch {
		i, j := s.slots(&batch[k].ev)
		s.a[i].Add(-1)
		s.b[j].Add(-1)
	}
}
