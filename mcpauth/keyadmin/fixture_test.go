package keyadmin_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/store"
)

var testPepper = apikey.Pepper{Version: 1, Secret: []byte("test-pepper-0123456789")}

// fixture is a Guard and a Manager over one store, configured alike, as a
// host has them.
type fixture struct {
	clock *clock
	store *countingStore
	guard *mcpauth.Guard
	mgr   *keyadmin.Manager
	logs  *bytes.Buffer
	gopts mcpauth.Options
	mgrs  []*keyadmin.Manager // every Manager made by manager, for close
}

// newFixture builds the Guard from opts (nil: defaults) and a Manager with
// the same peppers, clock, logger, Notifier and Audit, whose changes reach
// the Guard's cache at once.
func newFixture(t *testing.T, opts *mcpauth.Options) *fixture {
	t.Helper()
	f := &fixture{clock: newClock(), store: newCountingStore(), logs: &bytes.Buffer{}}
	var o mcpauth.Options
	if opts != nil {
		o = *opts
	}
	o.Now = f.clock.Now
	if o.Peppers == nil {
		o.Peppers = []apikey.Pepper{testPepper}
	}
	o.Logger = slog.New(slog.NewTextHandler(&lockedWriter{w: f.logs}, nil))
	g, err := mcpauth.New(f.store, &o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = g.Close(context.Background()) })
	f.guard, f.gopts = g, o
	f.mgr = f.manager(t, nil)
	return f
}

// manager returns a Manager with opts (nil: defaults) over the fixture's
// store, with the Guard's peppers, clock, logger, Notifier and Audit
// unless opts sets them.
func (f *fixture) manager(t *testing.T, opts *keyadmin.Options) *keyadmin.Manager {
	t.Helper()
	m, err := f.newManager(opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	f.mgrs = append(f.mgrs, m)
	return m
}

func (f *fixture) newManager(opts *keyadmin.Options) (*keyadmin.Manager, error) {
	var o keyadmin.Options
	if opts != nil {
		o = *opts
	}
	o.Peppers, o.Now, o.Logger, o.OnChange = f.gopts.Peppers, f.gopts.Now, f.gopts.Logger, f.guard.Forget
	if o.Notifier == nil {
		o.Notifier = f.gopts.Notifier
	}
	if o.Audit == nil {
		o.Audit = f.gopts.Audit
	}
	return keyadmin.New(f.store, &o)
}

// close delivers what the Guard and the Managers have queued.
func (f *fixture) close(t *testing.T) {
	t.Helper()
	for _, m := range f.mgrs {
		require.NoError(t, m.Close(context.Background()))
	}
	require.NoError(t, f.guard.Close(context.Background()))
}

func (f *fixture) create(t *testing.T, userID string, o keyadmin.CreateOptions) keyadmin.CreatedKey {
	t.Helper()
	k, err := f.mgr.Create(context.Background(), userID, o)
	require.NoError(t, err)
	return k
}

func (f *fixture) auth(raw string) (mcpauth.Principal, error) {
	r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	if raw != "" {
		r.Header.Set("Authorization", "Bearer "+raw)
	}
	return f.guard.Authenticate(r)
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// countingStore wraps the memory store, counts lookups and can be broken.
type countingStore struct {
	*store.Memory
	lookups atomic.Int64
	broken  atomic.Bool
}

var errBroken = errors.New("dial tcp 10.1.2.3:5432: connection refused (password=hunter2)")

func newCountingStore() *countingStore { return &countingStore{Memory: store.NewMemory()} }

func (s *countingStore) LookupKey(ctx context.Context, id string) (store.Key, error) {
	s.lookups.Add(1)
	if s.broken.Load() {
		return store.Key{}, errBroken
	}
	return s.Memory.LookupKey(ctx, id)
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// memSink keeps audit events in memory.
type memSink struct {
	mu     sync.Mutex
	events []audit.Event
}

func (s *memSink) Record(_ context.Context, e audit.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, e)
	return nil
}

func (s *memSink) all() []audit.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]audit.Event(nil), s.events...)
}
