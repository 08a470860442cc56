package store

import (
	"context"
	"sync"
)

// LocalFeed is a ChangeFeed within one process: PublishChange calls every
// subscriber at once, on the publisher's goroutine. It is what a single
// instance (or a test of several Guards in one process) needs, and the
// fan-out that networked feeds (pgnotify, redisnotify) deliver through with
// Deliver. The zero value is ready to use; it is safe for concurrent use.
type LocalFeed struct {
	mu   sync.RWMutex
	next int
	subs map[int]func(Change)
}

var _ ChangeFeed = (*LocalFeed)(nil)

// Subscribe implements ChangeFeed.
func (f *LocalFeed) Subscribe(fn func(Change)) func() {
	f.mu.Lock()
	if f.subs == nil {
		f.subs = make(map[int]func(Change))
	}
	id := f.next
	f.next++
	f.subs[id] = fn
	f.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			delete(f.subs, id)
			f.mu.Unlock()
		})
	}
}

// PublishChange implements ChangePublisher: it checks c (ErrInvalidChange
// for a change naming neither a key nor a user) and delivers it.
func (f *LocalFeed) PublishChange(_ context.Context, c Change) error {
	if _, err := c.Encode(); err != nil {
		return err
	}
	c.Lost = false
	f.Deliver(c)
	return nil
}

// Deliver calls every subscriber with c, Lost included.
func (f *LocalFeed) Deliver(c Change) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for _, fn := range f.subs {
		fn(c)
	}
}
