package audit

import "sync"

// caller identifies whose event it is, for the BestEffort queue share: the
// key, else the user, else the client address. kind keeps a user ID from
// sharing a count with an equal key ID or address.
type caller struct {
	kind uint8
	id   string
}

func callerOf(e *Event) caller {
	switch {
	case e.KeyID != "":
		return caller{1, e.KeyID}
	case e.UserID != "":
		return caller{2, e.UserID}
	case e.ClientIP != "":
		return caller{3, e.ClientIP}
	}
	return caller{}
}

// shares counts the BestEffort events each caller has in the queue (sent,
// not yet taken by the writer goroutine). Its map holds only callers with
// queued events, so it never has more entries than the queue has slots.
type shares struct {
	mu sync.Mutex
	n  map[caller]int
}

// enqueue sends it on q unless the queue is full or it.ev's caller already
// has as many events queued as there are free slots. It returns lossNone
// when the event was queued, else why it was dropped.
func (s *shares) enqueue(q chan item, it item) lossReason {
	c := callerOf(&it.ev)
	s.mu.Lock()
	free := cap(q) - len(q)
	n := s.n[c]
	if free > 0 && n >= free {
		s.mu.Unlock()
		return lossCallerShare
	}
	select {
	case q <- it:
		s.n[c] = n + 1
		s.mu.Unlock()
		return lossNone
	default:
		s.mu.Unlock()
		return lossQueueFull
	}
}

// taken forgets the events of batch, which the writer goroutine has taken
// from the queue.
func (s *shares) taken(batch []item) {
	s.mu.Lock()
	for i := range batch {
		c := callerOf(&batch[i].ev)
		if n := s.n[c]; n > 1 {
			s.n[c] = n - 1
		} else {
			delete(s.n, c)
		}
	}
	s.mu.Unlock()
}
