package mcpauth_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/store"
)

var testPepper = apikey.Pepper{Version: 1, Secret: []byte("test-pepper-0123456789")}

type fixture struct {
	clock *clock
	store *countingStore
	guard *mcpauth.Guard
	mgr   *keyadmin.Manager
	logs  *bytes.Buffer
}

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
	f.guard, f.mgr = g, managerFor(t, g, f.store, f.clock.Now)
	return f
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

func TestAuthenticateValidKey(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	k := f.create(t, "user-1", keyadmin.CreateOptions{Name: "laptop", Scopes: []string{"documents:read"}, Metadata: map[string]string{"tier": "paid"}})
	p, err := f.auth(k.Raw)
	require.NoError(t, err)
	assert.Equal(t, mcpauth.Principal{KeyID: k.Key.ID, UserID: "user-1", KeyName: "laptop", Scopes: []string{"documents:read"}, Metadata: map[string]string{"tier": "paid"}, ExpiresAt: f.clock.Now().Add(keyadmin.DefaultKeyLifetime), Kind: "api_key"}, p)

	stored, err := f.store.Memory.LookupKey(context.Background(), k.Key.ID)
	require.NoError(t, err)
	assert.NotContains(t, string(stored.Hash), k.Raw)
	assert.Equal(t, 1, stored.PepperVersion)
}

func TestAuthenticateFailures(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	k := f.create(t, "user-1", keyadmin.CreateOptions{})

	// Same ID, different secret, valid checksum: a forged key.
	forged := managerFor(t, f.guard, store.NewMemory(), nil)
	fk, err := forged.Create(context.Background(), "user-1", keyadmin.CreateOptions{})
	require.NoError(t, err)
	lookupsBefore := f.store.lookups.Load()

	tests := []struct {
		name string
		raw  string
		want error
	}{
		{"no key", "", mcpauth.ErrNoCredential},
		{"malformed", "mcp_nope", apikey.ErrMalformedKey},
		{"bad checksum", badChecksum(k.Raw), apikey.ErrMalformedKey},
		{"unknown id", fk.Raw, mcpauth.ErrUnknownKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.auth(tt.raw)
			assert.ErrorIs(t, err, tt.want)
		})
	}
	assert.Equal(t, int64(1), f.store.lookups.Load()-lookupsBefore, "only the well-formed unknown key reaches the store")
}

func TestWrongSecretForKnownID(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	victim := f.create(t, "victim", keyadmin.CreateOptions{})
	attacker := f.create(t, "attacker", keyadmin.CreateOptions{})
	// The attacker knows the victim's public key ID and puts it in front of
	// their own secret, with a correct checksum: the hash must not match.
	forged := mustBuild(t, "mcp", victim.Key.ID, attacker.Raw[4+12:4+36])
	_, err := apikey.ParseKey(forged, "")
	require.NoError(t, err, "the forged key is well-formed")
	_, err = f.auth(forged)
	assert.ErrorIs(t, err, mcpauth.ErrUnknownKey)
	_, err = f.auth(victim.Raw)
	require.NoError(t, err)
	_, err = f.auth(forged)
	assert.ErrorIs(t, err, mcpauth.ErrUnknownKey, "also when the victim's record is cached")
}

func TestRevokeThroughManagerIsImmediate(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	k := f.create(t, "user-1", keyadmin.CreateOptions{})
	_, err := f.auth(k.Raw)
	require.NoError(t, err) // now cached
	require.NoError(t, f.mgr.Revoke(context.Background(), k.Key.ID))
	_, err = f.auth(k.Raw)
	assert.ErrorIs(t, err, mcpauth.ErrKeyRevoked)
	assert.ErrorIs(t, err, mcpauth.ErrInvalidKey)
	require.ErrorIs(t, f.mgr.Revoke(context.Background(), "000000000000"), store.ErrNotFound)
}

func TestRevokeElsewhereTakesEffectWithinCacheTTL(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &mcpauth.Options{CacheTTL: 30 * time.Second})
	k := f.create(t, "user-1", keyadmin.CreateOptions{})
	_, err := f.auth(k.Raw)
	require.NoError(t, err)
	require.NoError(t, f.store.RevokeKey(context.Background(), k.Key.ID, f.clock.Now()))
	f.clock.Advance(29 * time.Second)
	_, err = f.auth(k.Raw)
	assert.NoError(t, err, "still cached")
	f.clock.Advance(time.Second)
	_, err = f.auth(k.Raw)
	assert.ErrorIs(t, err, mcpauth.ErrKeyRevoked)
}

func TestExpiryIsNeverOutlivedByTheCache(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &mcpauth.Options{CacheTTL: time.Hour})
	k := f.create(t, "user-1", keyadmin.CreateOptions{ExpiresIn: 10 * time.Second})
	_, err := f.auth(k.Raw)
	require.NoError(t, err)
	f.clock.Advance(10*time.Second - time.Nanosecond)
	_, err = f.auth(k.Raw)
	require.NoError(t, err)
	f.clock.Advance(time.Nanosecond)
	_, err = f.auth(k.Raw)
	assert.ErrorIs(t, err, mcpauth.ErrKeyExpired)
}

func TestCacheAvoidsStore(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &mcpauth.Options{CacheTTL: time.Minute, NegativeCacheTTL: 5 * time.Second})
	k := f.create(t, "user-1", keyadmin.CreateOptions{})
	for range 100 {
		_, err := f.auth(k.Raw)
		require.NoError(t, err)
	}
	assert.Equal(t, int64(1), f.store.lookups.Load())
	f.clock.Advance(time.Minute)
	_, err := f.auth(k.Raw)
	require.NoError(t, err)
	assert.Equal(t, int64(2), f.store.lookups.Load(), "refetched after TTL")

	// Negative cache: a flood of one unknown key hits the store once per TTL.
	unknown, err := managerFor(t, f.guard, store.NewMemory(), nil).Create(context.Background(), "u", keyadmin.CreateOptions{})
	require.NoError(t, err)
	before := f.store.lookups.Load()
	for range 1000 {
		_, err := f.auth(unknown.Raw)
		require.ErrorIs(t, err, mcpauth.ErrUnknownKey)
	}
	assert.Equal(t, int64(1), f.store.lookups.Load()-before)
	f.clock.Advance(5 * time.Second)
	_, _ = f.auth(unknown.Raw)
	assert.Equal(t, int64(2), f.store.lookups.Load()-before)
}

func TestCacheIsBounded(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &mcpauth.Options{CacheSize: 64})
	var keys []keyadmin.CreatedKey
	for i := range 500 {
		keys = append(keys, f.create(t, fmt.Sprintf("user-%d", i), keyadmin.CreateOptions{}))
		_, err := f.auth(keys[i].Raw)
		require.NoError(t, err)
	}
	// All still authenticate (evicted ones are refetched); the store was
	// asked again for evicted keys, which proves eviction happened.
	before := f.store.lookups.Load()
	for _, k := range keys {
		_, err := f.auth(k.Raw)
		require.NoError(t, err)
	}
	assert.Greater(t, f.store.lookups.Load()-before, int64(400))
}

func TestUserCheck(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	active := map[string]bool{"alice": true}
	var fail bool
	users := store.UserCheckerFunc(func(_ context.Context, id string) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return false, errors.New("users table unreachable at 10.9.9.9")
		}
		return active[id], nil
	})
	f := newFixture(t, &mcpauth.Options{Users: users})
	alice := f.create(t, "alice", keyadmin.CreateOptions{})
	bob := f.create(t, "bob", keyadmin.CreateOptions{})
	_, err := f.auth(alice.Raw)
	require.NoError(t, err)
	_, err = f.auth(bob.Raw)
	require.ErrorIs(t, err, mcpauth.ErrUserInactive)

	mu.Lock()
	active["alice"] = false
	mu.Unlock()
	_, err = f.auth(alice.Raw)
	require.ErrorIs(t, err, mcpauth.ErrUserInactive, "deactivation takes effect on the next request, cache or not")

	mu.Lock()
	fail = true
	mu.Unlock()
	_, err = f.auth(alice.Raw)
	require.ErrorIs(t, err, mcpauth.ErrUnavailable)
	assert.NotContains(t, err.Error(), "10.9.9.9")
}

func TestStoreFailureFailsClosed(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	k := f.create(t, "user-1", keyadmin.CreateOptions{})
	f.store.broken.Store(true)
	_, err := f.auth(k.Raw)
	require.ErrorIs(t, err, mcpauth.ErrUnavailable)
	assert.NotContains(t, err.Error(), "hunter2")
	assert.NotContains(t, f.logs.String(), k.Raw)
	assert.NotContains(t, f.logs.String(), k.Raw[4+12:4+36], "logs never carry the secret")
	f.store.broken.Store(false)
	_, err = f.auth(k.Raw)
	require.NoError(t, err, "recovers once the store answers")
}

func TestLastUsedIsCoalescedAndFlushedInBatches(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &mcpauth.Options{TouchInterval: time.Hour})
	var keys []keyadmin.CreatedKey
	for range 20 {
		keys = append(keys, f.create(t, "user", keyadmin.CreateOptions{}))
	}
	for i := range 50 {
		for _, k := range keys {
			_, err := f.auth(k.Raw)
			require.NoError(t, err)
		}
		if i%10 == 0 {
			f.clock.Advance(time.Second)
		}
	}
	assert.Equal(t, int64(0), f.store.touches.Load(), "no write per request")
	require.NoError(t, f.guard.Close(context.Background()))
	batches := f.store.Batches()
	require.Len(t, batches, 1, "one batch on close")
	assert.Len(t, batches[0], 20, "one entry per key")
	got, err := f.store.Memory.LookupKey(context.Background(), keys[3].Key.ID)
	require.NoError(t, err)
	assert.Equal(t, f.clock.Now(), got.LastUsedAt)
	assert.NoError(t, f.guard.Close(context.Background()), "Close is idempotent")
}

func TestLastUsedFlushRetriesAfterFailure(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &mcpauth.Options{TouchInterval: 10 * time.Millisecond})
	k := f.create(t, "user", keyadmin.CreateOptions{})
	_, err := f.auth(k.Raw)
	require.NoError(t, err)
	f.store.broken.Store(true)
	require.Eventually(t, func() bool { return f.store.touches.Load() >= 2 }, 5*time.Second, 5*time.Millisecond)
	f.store.broken.Store(false)
	require.Eventually(t, func() bool { return len(f.store.Batches()) >= 1 }, 5*time.Second, 5*time.Millisecond)
	got, err := f.store.Memory.LookupKey(context.Background(), k.Key.ID)
	require.NoError(t, err)
	assert.Equal(t, f.clock.Now(), got.LastUsedAt)
	assert.NotContains(t, f.logs.String(), k.Raw)
}

func TestConcurrentAuthenticateAndRevoke(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	var keys []keyadmin.CreatedKey
	for range 16 {
		keys = append(keys, f.create(t, "user", keyadmin.CreateOptions{}))
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				k := keys[(w+i)%len(keys)]
				_, err := f.auth(k.Raw)
				if err != nil && !errors.Is(err, mcpauth.ErrKeyRevoked) {
					t.Errorf("unexpected error: %v", err)
					return
				}
			}
		}()
	}
	for _, k := range keys[:8] {
		require.NoError(t, f.mgr.Revoke(context.Background(), k.Key.ID))
	}
	wg.Wait()
	for _, k := range keys[:8] {
		_, err := f.auth(k.Raw)
		require.ErrorIs(t, err, mcpauth.ErrKeyRevoked)
	}
}

func TestNewValidatesOptions(t *testing.T) {
	t.Parallel()
	_, err := mcpauth.New(nil, nil)
	require.Error(t, err)
	_, err = mcpauth.New(store.NewMemory(), &mcpauth.Options{Prefix: "Has_Underscore"})
	require.ErrorContains(t, err, "Options.Prefix")
	_, err = mcpauth.New(store.NewMemory(), &mcpauth.Options{Peppers: []apikey.Pepper{{Version: 1, Secret: []byte("short")}}})
	require.Error(t, err)
	g, err := mcpauth.New(store.NewMemory(), nil)
	require.NoError(t, err)
	require.NoError(t, g.Close(context.Background()))
}

// manager returns a key manager with opts over the fixture's store, which
// issues keys the fixture's Guard accepts.
func (f *fixture) manager(t *testing.T, opts *keyadmin.Options) *keyadmin.Manager {
	t.Helper()
	o := *opts
	o.Peppers, o.Now, o.OnChange = []apikey.Pepper{testPepper}, f.clock.Now, f.guard.Forget
	m, err := keyadmin.New(f.store, &o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	return m
}

// lookupOnly is a store with nothing but LookupKey: all a Guard needs.
type lookupOnly struct{ m *store.Memory }

func (l lookupOnly) LookupKey(ctx context.Context, id string) (store.Key, error) {
	return l.m.LookupKey(ctx, id)
}

// TestGuardNeedsOnlyLookup: New takes a store.KeyLookup (one method), so a
// host can put the Guard on a read-only view of its key table; keys issued
// elsewhere authenticate through it.
func TestGuardNeedsOnlyLookup(t *testing.T) {
	t.Parallel()
	mem := store.NewMemory()
	g, err := mcpauth.New(lookupOnly{mem}, &mcpauth.Options{Peppers: []apikey.Pepper{testPepper}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = g.Close(context.Background()) })
	k, err := managerFor(t, g, mem, nil).Create(context.Background(), "alice", keyadmin.CreateOptions{})
	require.NoError(t, err)
	p, err := authWith(g, k.Raw)
	require.NoError(t, err)
	assert.Equal(t, "alice", p.UserID)
}
