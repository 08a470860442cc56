package gateway

import (
	"context"
	"sync"
)

// streamSet holds the cancel functions of the long-lived streams (the
// standalone GET event streams) so that shutdown can end them: they never
// end by themselves, and a draining server would otherwise wait for them
// until its timeout. Safe for concurrent use.
type streamSet struct {
	mu     sync.Mutex
	next   uint64
	cancel map[uint64]context.CancelFunc
	closed bool
}

// add derives a context that endAll cancels; done must be called when the
// stream ends. After endAll, the context is cancelled at once.
func (s *streamSet) add(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		cancel()
		return ctx, func() {}
	}
	if s.cancel == nil {
		s.cancel = make(map[uint64]context.CancelFunc)
	}
	id := s.next
	s.next++
	s.cancel[id] = cancel
	return ctx, func() {
		s.mu.Lock()
		delete(s.cancel, id)
		s.mu.Unlock()
		cancel()
	}
}

// endAll cancels every stream, and every later one at once.
func (s *streamSet) endAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for _, c := range s.cancel {
		c()
	}
	clear(s.cancel)
}
