package mcpauth_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/store"
)

// clock is a settable clock for Options.Now.
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

// countingStore wraps the memory store, counts calls and can be broken.
type countingStore struct {
	*store.Memory
	lookups atomic.Int64
	touches atomic.Int64
	broken  atomic.Bool

	mu      sync.Mutex
	batches [][]store.Touch
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

func (s *countingStore) TouchKeys(ctx context.Context, touches []store.Touch) error {
	s.touches.Add(1)
	if s.broken.Load() {
		return errBroken
	}
	s.mu.Lock()
	s.batches = append(s.batches, append([]store.Touch(nil), touches...))
	s.mu.Unlock()
	return s.Memory.TouchKeys(ctx, touches)
}

func (s *countingStore) Batches() [][]store.Touch {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]store.Touch(nil), s.batches...)
}

// badChecksum changes a key's last character, so that its checksum fails.
func badChecksum(raw string) string {
	last := raw[len(raw)-1]
	if last == 'x' {
		return raw[:len(raw)-1] + "y"
	}
	return raw[:len(raw)-1] + "x"
}

// managerFor returns a key manager over keys that issues keys g accepts
// (the default prefix, testPepper, the clock now or time.Now when nil) and
// whose changes reach g's cache at once.
func managerFor(t testing.TB, g *mcpauth.Guard, keys store.KeyStore, now func() time.Time) *keyadmin.Manager {
	t.Helper()
	m, err := keyadmin.New(keys, &keyadmin.Options{Peppers: []apikey.Pepper{testPepper}, Now: now, OnChange: g.Forget})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	return m
}

// mustBuild is apikey.Build, failing the test on error.
func mustBuild(t testing.TB, prefix, id, secret string) string {
	t.Helper()
	raw, err := apikey.Build(prefix, id, secret)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
