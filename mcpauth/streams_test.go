package mcpauth

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newTestRegistry() *streamRegistry {
	return newStreamRegistry(slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// ended reports whether ctx is cancelled, waiting up to wait for it.
func ended(ctx context.Context, wait time.Duration) bool {
	select {
	case <-ctx.Done():
		return true
	case <-time.After(wait):
		return false
	}
}

// otherSlot returns an ID whose mark slot is not id's.
func otherSlot(r *streamRegistry, id string) string {
	for i := 0; ; i++ {
		if o := fmt.Sprintf("other-%d", i); r.slot(o) != r.slot(id) {
			return o
		}
	}
}

// Forgetting ends exactly the streams of what was forgotten.
func TestStreamRegistryForget(t *testing.T) {
	t.Parallel()
	// The streams: a and b of user u1 (keys k1, k2), c of user u2 (key k3),
	// d a second stream of k1.
	type open struct{ key, user string }
	streams := []open{{"k1", "u1"}, {"k2", "u1"}, {"k3", "u2"}, {"k1", "u1"}}
	cases := []struct {
		name   string
		forget func(r *streamRegistry)
		want   []bool // which streams end
	}{
		{"a key", func(r *streamRegistry) { r.forgetKey("k1") }, []bool{true, false, false, true}},
		{"another key", func(r *streamRegistry) { r.forgetKey("k2") }, []bool{false, true, false, false}},
		{"an unknown key", func(r *streamRegistry) { r.forgetKey("k9") }, []bool{false, false, false, false}},
		{"a user ID is not a key ID", func(r *streamRegistry) { r.forgetKey("u1") }, []bool{false, false, false, false}},
		{"a user", func(r *streamRegistry) { r.forgetUser("u1") }, []bool{true, true, false, true}},
		{"a key ID is not a user ID", func(r *streamRegistry) { r.forgetUser("k3") }, []bool{false, false, false, false}},
		{"everything", func(r *streamRegistry) { r.forgetAll() }, []bool{true, true, true, true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newTestRegistry()
			now := time.Now()
			ctxs := make([]context.Context, len(streams))
			for i, o := range streams {
				var s *stream
				ctxs[i], s = r.open(context.Background(), o.key, o.user, time.Time{}, r.begin(), now)
				t.Cleanup(func() { r.close(s) })
			}
			tc.forget(r)
			for i, want := range tc.want {
				assert.Equal(t, want, ctxs[i].Err() != nil, "stream %d (%s)", i, streams[i].key)
			}
			// Forgetting twice changes nothing.
			tc.forget(r)
			for i, want := range tc.want {
				assert.Equal(t, want, ctxs[i].Err() != nil, "stream %d (%s)", i, streams[i].key)
			}
		})
	}
}

// A stream ends when its credential expires, by the Guard's clock: the
// timer runs for expires minus now, not until expires by the system clock.
func TestStreamRegistryExpiry(t *testing.T) {
	t.Parallel()
	r := newTestRegistry()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) // the Guard's clock, far from the system's
	soon, _ := r.open(context.Background(), "k1", "u1", now.Add(50*time.Millisecond), r.begin(), now)
	later, sl := r.open(context.Background(), "k2", "u1", now.Add(time.Hour), r.begin(), now)
	never, sn := r.open(context.Background(), "k3", "u1", time.Time{}, r.begin(), now)
	defer r.close(sl)
	defer r.close(sn)
	require.True(t, ended(soon, 10*time.Second), "the stream outlived its credential")
	assert.Equal(t, 0, r.count("k1"), "an expired stream is unregistered")
	assert.NoError(t, later.Err())
	assert.NoError(t, never.Err())
	assert.Nil(t, sn.timer, "no timer without an expiry")
}

// A stream whose handler returned is unregistered, its timer stopped, and
// its context left to its parent: a later forget does not reach it.
func TestStreamRegistryClose(t *testing.T) {
	t.Parallel()
	r := newTestRegistry()
	now := time.Now()
	ctx, s := r.open(context.Background(), "k1", "u1", now.Add(time.Hour), r.begin(), now)
	require.Equal(t, 1, r.count("k1"))
	r.close(s)
	assert.Equal(t, 0, r.count("k1"))
	require.NotNil(t, s.timer, "a stream with an expiry has a timer")
	assert.False(t, s.timer.Stop(), "the timer was stopped")
	r.forgetKey("k1")
	r.forgetAll()
	assert.NoError(t, ctx.Err(), "a closed stream's context ends with its parent only")
	r.mu.Lock()
	assert.Empty(t, r.byKey)
	assert.Empty(t, r.byUser)
	r.mu.Unlock()
}

// A forget between a request's begin and open (it came while the request
// was being authenticated) ends the stream at once: it may have been
// authenticated with what the forget invalidated. One before begin does
// not, nor one of an ID of another slot.
func TestStreamRegistryForgetWhileAuthenticating(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		before func(r *streamRegistry) // before begin
		during func(r *streamRegistry) // between begin and open
		ended  bool
	}{
		{"nothing", nil, nil, false},
		{"the key before", func(r *streamRegistry) { r.forgetKey("k1") }, nil, false},
		{"the user before", func(r *streamRegistry) { r.forgetUser("u1") }, nil, false},
		{"everything before", func(r *streamRegistry) { r.forgetAll() }, nil, false},
		{"the key during", nil, func(r *streamRegistry) { r.forgetKey("k1") }, true},
		{"the user during", nil, func(r *streamRegistry) { r.forgetUser("u1") }, true},
		{"everything during", nil, func(r *streamRegistry) { r.forgetAll() }, true},
		{"a key of another slot during", nil, func(r *streamRegistry) { r.forgetKey(otherSlot(r, "k1")) }, false},
		{"a user of another slot during", nil, func(r *streamRegistry) { r.forgetUser(otherSlot(r, "u1")) }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newTestRegistry()
			if tc.before != nil {
				tc.before(r)
			}
			seen := r.begin()
			if tc.during != nil {
				tc.during(r)
			}
			ctx, s := r.open(context.Background(), "k1", "u1", time.Time{}, seen, time.Now())
			defer r.close(s)
			assert.Equal(t, tc.ended, ctx.Err() != nil)
			if tc.ended {
				assert.Equal(t, 0, r.count("k1"), "a stream ended at once is not registered")
			}
		})
	}
}

// Opening, closing, forgetting and expiring from many goroutines at once
// (run with -race): every stream ends up unregistered, and every stream
// whose key was forgotten while it was open ended.
func TestStreamRegistryConcurrent(t *testing.T) {
	t.Parallel()
	r := newTestRegistry()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				key, user := fmt.Sprintf("k%d", i%5), fmt.Sprintf("u%d", i%3)
				now := time.Now()
				var exp time.Time
				if i%4 == 0 {
					exp = now.Add(time.Duration(i%3) * time.Millisecond)
				}
				ctx, s := r.open(context.Background(), key, user, exp, r.begin(), now)
				switch (g + i) % 4 {
				case 0:
					r.forgetKey(key)
					if !ended(ctx, 5*time.Second) {
						t.Errorf("stream of %s survived its forget", key)
						return
					}
				case 1:
					r.forgetUser(user)
					if !ended(ctx, 5*time.Second) {
						t.Errorf("stream of %s survived its user's forget", user)
						return
					}
				case 2:
					if i%50 == 0 {
						r.forgetAll()
					}
				}
				r.close(s)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	assert.Empty(t, r.byKey)
	assert.Empty(t, r.byUser)
}

// The deadline of a stream is the credential's expiry or a revocation
// dated later than now, whichever is first.
func TestStreamDeadline(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	exp, rev := now.Add(time.Hour), now.Add(time.Minute)
	cases := []struct {
		name             string
		expires, revoked time.Time
		want             time.Time
	}{
		{"neither", time.Time{}, time.Time{}, time.Time{}},
		{"expiry", exp, time.Time{}, exp},
		{"revocation ahead", time.Time{}, rev, rev},
		{"revocation before expiry", exp, rev, rev},
		{"expiry before revocation", rev, exp, rev},
		{"revocation past (refused before this)", exp, now.Add(-time.Minute), exp},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := &cacheEntry{principal: &Principal{ExpiresAt: tc.expires}, revokedAt: tc.revoked}
			assert.Equal(t, tc.want, streamDeadline(e, now))
		})
	}
}
