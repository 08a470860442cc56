package mcpauth_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/ratelimit"
)

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines(substr string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.b.String(), substr)
}

// TestOutageLoggedOncePerStateChange: 50 requests refused while the rate
// limiter fails, then 5 served, then another outage: one line when each
// outage starts, one when it ends, never one per request (issue 13 saw
// 108 ERROR lines per instance for one Redis outage).
func TestOutageLoggedOncePerStateChange(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	var down atomic.Bool
	limiter := ratelimit.LimiterFunc(func(context.Context, string, ratelimit.Limit, int) (ratelimit.Decision, error) {
		if down.Load() {
			return ratelimit.Decision{}, errors.Join(ratelimit.ErrUnavailable, errors.New("dial tcp 10.0.0.9:6379: refused"))
		}
		return ratelimit.Decision{Allowed: true, Limit: 100, Remaining: 99}, nil
	})
	logs := &syncBuffer{}
	g, err := mcpauth.New(f.store, &mcpauth.Options{Now: f.clock.Now, Peppers: []apikey.Pepper{testPepper}, RateLimiter: limiter,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	require.NoError(t, err)
	t.Cleanup(func() { _ = g.Close(context.Background()) })
	k, err := managerFor(t, g, f.store, f.clock.Now).Create(context.Background(), "alice", keyadmin.CreateOptions{})
	require.NoError(t, err)
	srv := httptest.NewServer(g.Require(&echo{}))
	t.Cleanup(srv.Close)

	send := func(n, want int) {
		t.Helper()
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, _ := post(t, srv, k.Raw, toolCall("search", "1"))
				assert.Equal(t, want, resp.StatusCode)
			}()
		}
		wg.Wait()
	}
	for range 2 {
		down.Store(true)
		send(50, 503)
		down.Store(false)
		send(5, 200)
	}
	assert.Equal(t, 2, logs.lines("rate limiter is failing"), "one line per outage start:\n%s", logs.b.String())
	assert.Equal(t, 2, logs.lines("rate limiter recovered"), "one line per recovery")
	assert.Equal(t, 2, logs.lines("failed_calls=50"), "the recovery line counts the refused calls")
	assert.Equal(t, 4, strings.Count(strings.TrimSpace(logs.b.String()), "\n")+1, "nothing else was logged")

	// The key store: same contract.
	f.store.broken.Store(true)
	g.Forget(k.Key.ID)
	send(20, 503)
	f.store.broken.Store(false)
	send(3, 200)
	assert.Equal(t, 1, logs.lines("key store is failing"))
	assert.Equal(t, 1, logs.lines("key store recovered"))
}
