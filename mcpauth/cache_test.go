package mcpauth_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/store"
)

// hookStore is a memory store that counts lookups per key ID and can hold
// one lookup after it has read the record, until the test releases it:
// a lookup that raced a revocation, made deterministic.
type hookStore struct {
	*store.Memory

	mu     sync.Mutex
	counts map[string]int

	armed   atomic.Bool   // the next lookup blocks after reading
	entered chan struct{} // closed when the blocked lookup has read the record
	release chan struct{} // close to let it return
	yield   atomic.Bool   // Gosched inside every lookup (widens race windows)
}

func newHookStore() *hookStore {
	return &hookStore{Memory: store.NewMemory(), counts: map[string]int{},
		entered: make(chan struct{}), release: make(chan struct{})}
}

func (s *hookStore) LookupKey(ctx context.Context, id string) (store.Key, error) {
	s.mu.Lock()
	s.counts[id]++
	s.mu.Unlock()
	k, err := s.Memory.LookupKey(ctx, id)
	if s.yield.Load() {
		runtime.Gosched()
	}
	if s.armed.CompareAndSwap(true, false) {
		close(s.entered)
		<-s.release
	}
	return k, err
}

func (s *hookStore) lookups(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[id]
}

func (s *hookStore) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.counts {
		n += c
	}
	return n
}

// guardOn builds a Guard over s with a settable clock, the test pepper and
// no revocation polling.
func guardOn(t testing.TB, s store.KeyStore, opts *mcpauth.Options) (*mcpauth.Guard, *clock, *bytes.Buffer) {
	t.Helper()
	var o mcpauth.Options
	if opts != nil {
		o = *opts
	}
	c, logs := newClock(), &bytes.Buffer{}
	o.Now = c.Now
	o.Peppers = []apikey.Pepper{testPepper}
	o.RevocationPollInterval = -1
	o.Logger = slog.New(slog.NewTextHandler(&lockedWriter{w: logs}, nil))
	g, err := mcpauth.New(s, &o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = g.Close(context.Background()) })
	return g, c, logs
}

func authWith(g *mcpauth.Guard, raw string) (mcpauth.Principal, error) {
	r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	r.Header.Set("Authorization", "Bearer "+raw)
	return g.Authenticate(r)
}

// Finding 8: a lookup that read the record before Revoke must not write it
// back into the cache after Revoke's Forget.
func TestStaleFillLosesToForget(t *testing.T) {
	t.Parallel()
	s := newHookStore()
	g, c, _ := guardOn(t, s, &mcpauth.Options{CacheTTL: time.Hour})
	k, err := managerFor(t, g, s, c.Now).Create(context.Background(), "alice", keyadmin.CreateOptions{})
	require.NoError(t, err)

	s.armed.Store(true)
	inFlight := make(chan error, 1)
	go func() { _, err := authWith(g, k.Raw); inFlight <- err }()
	<-s.entered // the lookup holds the record as it was before the revocation
	require.NoError(t, managerFor(t, g, s, c.Now).Revoke(context.Background(), k.Key.ID))
	close(s.release)
	require.NoError(t, <-inFlight, "the request in flight before Revoke may pass")

	for _, after := range []time.Duration{0, 5 * time.Second, 59 * time.Minute} {
		c.Advance(after)
		p, err := authWith(g, k.Raw)
		require.ErrorIs(t, err, mcpauth.ErrKeyRevoked, "%v after Revoke returned", after)
		assert.Empty(t, p.KeyID)
	}
}

// The same race for a negative fill: a "not found" read before the key was
// imported must not hide the new key for NegativeCacheTTL.
func TestStaleNegativeFillLosesToForget(t *testing.T) {
	t.Parallel()
	s := newHookStore()
	g, c, _ := guardOn(t, s, &mcpauth.Options{AcceptLegacyKeys: true, NegativeCacheTTL: time.Hour})
	raw := "sk_live_3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c"
	sum := apikey.LegacyKeyHash(raw)

	s.armed.Store(true)
	inFlight := make(chan error, 1)
	go func() { _, err := authWith(g, raw); inFlight <- err }()
	<-s.entered
	_, err := managerFor(t, g, s, c.Now).ImportLegacy(context.Background(), "alice", hex.EncodeToString(sum[:]), keyadmin.CreateOptions{})
	require.NoError(t, err)
	close(s.release)
	require.ErrorIs(t, <-inFlight, mcpauth.ErrUnknownKey)

	p, err := authWith(g, raw)
	require.NoError(t, err, "the imported key works at once")
	assert.Equal(t, "alice", p.UserID)
}

// Finding 8 under load: no request that starts after Revoke returned is
// allowed, whatever lookups are in flight. Run with -race.
func TestRevokeRaceStress(t *testing.T) {
	t.Parallel()
	s := newHookStore()
	s.yield.Store(true)
	g, c, _ := guardOn(t, s, &mcpauth.Options{CacheTTL: time.Hour})
	const n = 24
	keys := make([]keyadmin.CreatedKey, n)
	var revoked [n]atomic.Bool
	for i := range keys {
		k, err := managerFor(t, g, s, c.Now).Create(context.Background(), "alice", keyadmin.CreateOptions{})
		require.NoError(t, err)
		keys[i] = k
	}
	var violations atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			for i := w; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				j := i % n
				if i%7 == 0 {
					g.Forget(keys[j].Key.ID) // force fresh lookups that race revocations
				}
				wasRevoked := revoked[j].Load()
				if _, err := authWith(g, keys[j].Raw); err == nil && wasRevoked {
					violations.Add(1)
				}
			}
		})
	}
	for j := range keys {
		require.NoError(t, managerFor(t, g, s, c.Now).Revoke(context.Background(), keys[j].Key.ID))
		revoked[j].Store(true)
		runtime.Gosched()
	}
	close(stop)
	wg.Wait()
	assert.Zero(t, violations.Load(), "requests started after Revoke returned were allowed")
	for _, k := range keys {
		_, err := authWith(g, k.Raw)
		require.ErrorIs(t, err, mcpauth.ErrKeyRevoked)
	}
}

// randomKey is a well-formed key (valid checksum) with a random ID that no
// store knows.
func randomKey(t *testing.T) string {
	const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 36)
	_, err := rand.Read(b)
	require.NoError(t, err)
	for i := range b {
		b[i] = base62[int(b[i])%62]
	}
	return mustBuild(t, "mcp", string(b[:12]), string(b[12:]))
}

// Finding 12: unknown IDs never push verified keys out of the cache.
func TestUnknownKeyFloodDoesNotEvictVerifiedKeys(t *testing.T) {
	t.Parallel()
	floods := []struct {
		name string
		opts mcpauth.Options
		junk func() string
	}{
		{"well-formed unknown keys", mcpauth.Options{CacheSize: 256}, func() string { return randomKey(t) }},
		{"legacy-shaped unknown keys", mcpauth.Options{CacheSize: 256, AcceptLegacyKeys: true}, func() string {
			b := make([]byte, 32)
			_, _ = rand.Read(b)
			return "mcp_" + hex.EncodeToString(b)
		}},
	}
	for _, fl := range floods {
		t.Run(fl.name, func(t *testing.T) {
			t.Parallel()
			s := newHookStore()
			g, c, _ := guardOn(t, s, &fl.opts)
			var good []keyadmin.CreatedKey // 8 per shard fit: no eviction among them
			for range 8 {
				k, err := managerFor(t, g, s, c.Now).Create(context.Background(), "alice", keyadmin.CreateOptions{})
				require.NoError(t, err)
				_, err = authWith(g, k.Raw)
				require.NoError(t, err)
				good = append(good, k)
			}
			for range 5000 {
				_, err := authWith(g, fl.junk())
				require.ErrorIs(t, err, mcpauth.ErrUnknownKey)
			}
			for _, k := range good {
				_, err := authWith(g, k.Raw)
				require.NoError(t, err)
				assert.Equal(t, 1, s.lookups(k.Key.ID), "the flood evicted a verified key")
			}
		})
	}
}

// Negative entries still evict each other, so their cache stays bounded
// and a repeated unknown key is still answered from it.
func TestNegativeCacheStillWorks(t *testing.T) {
	t.Parallel()
	s := newHookStore()
	g, c, _ := guardOn(t, s, &mcpauth.Options{NegativeCacheTTL: 5 * time.Second})
	unknown := randomKey(t)
	for range 100 {
		_, err := authWith(g, unknown)
		require.ErrorIs(t, err, mcpauth.ErrUnknownKey)
	}
	assert.Equal(t, 1, s.total())
	c.Advance(5 * time.Second)
	_, _ = authWith(g, unknown)
	assert.Equal(t, 2, s.total())
}

// Finding 13: what a cached key does while the store is down, with and
// without StaleIfError, on an injected clock.
func TestStoreOutageTimeline(t *testing.T) {
	t.Parallel()
	type step struct {
		at      time.Duration // since the key was cached
		wantErr error         // nil: allowed
	}
	tests := []struct {
		name    string
		opts    mcpauth.Options
		expires time.Duration // key lifetime; 0 = default
		steps   []step
	}{
		{"default: served until CacheTTL, then 503", mcpauth.Options{CacheTTL: 30 * time.Second}, 0, []step{
			{29 * time.Second, nil}, {30 * time.Second, mcpauth.ErrUnavailable}, {31 * time.Second, mcpauth.ErrUnavailable},
		}},
		{"StaleIfError: served up to that long past CacheTTL", mcpauth.Options{CacheTTL: 30 * time.Second, StaleIfError: time.Minute}, 0, []step{
			{29 * time.Second, nil}, {30 * time.Second, nil}, {89 * time.Second, nil},
			{90 * time.Second, mcpauth.ErrUnavailable}, {10 * time.Minute, mcpauth.ErrUnavailable},
		}},
		{"StaleIfError never past the key's expiry", mcpauth.Options{CacheTTL: 30 * time.Second, StaleIfError: time.Hour}, 40 * time.Second, []step{
			{35 * time.Second, nil}, {40 * time.Second, mcpauth.ErrKeyExpired}, {2 * time.Hour, mcpauth.ErrUnavailable},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, &tt.opts)
			k := f.create(t, "alice", keyadmin.CreateOptions{ExpiresIn: tt.expires})
			_, err := f.auth(k.Raw)
			require.NoError(t, err)
			f.store.broken.Store(true)
			start := f.clock.Now()
			for _, st := range tt.steps {
				f.clock.Advance(start.Add(st.at).Sub(f.clock.Now()))
				p, err := f.auth(k.Raw)
				if st.wantErr == nil {
					require.NoError(t, err, "at %v", st.at)
					assert.Equal(t, k.Key.ID, p.KeyID)
				} else {
					require.ErrorIs(t, err, st.wantErr, "at %v", st.at)
					assert.Empty(t, p.KeyID)
				}
			}
			assert.NotContains(t, f.logs.String(), k.Raw[4:4+36], "logs never carry the secret")
		})
	}
}

func TestStaleIfErrorLimits(t *testing.T) {
	t.Parallel()
	opts := mcpauth.Options{CacheTTL: 30 * time.Second, StaleIfError: time.Hour}

	t.Run("logged with the key ID", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, &opts)
		k := f.create(t, "alice", keyadmin.CreateOptions{})
		_, err := f.auth(k.Raw)
		require.NoError(t, err)
		f.store.broken.Store(true)
		f.clock.Advance(time.Minute)
		_, err = f.auth(k.Raw)
		require.NoError(t, err)
		assert.Contains(t, f.logs.String(), "level=WARN")
		assert.Contains(t, f.logs.String(), "StaleIfError")
		assert.Contains(t, f.logs.String(), "key_id="+k.Key.ID)
		assert.NotContains(t, f.logs.String(), k.Raw)
	})
	t.Run("a store that answers again wins: revocation shows at once", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, &opts)
		k := f.create(t, "alice", keyadmin.CreateOptions{})
		_, err := f.auth(k.Raw)
		require.NoError(t, err)
		require.NoError(t, f.store.RevokeKey(context.Background(), k.Key.ID, f.clock.Now()))
		f.store.broken.Store(true)
		f.clock.Advance(time.Minute)
		_, err = f.auth(k.Raw)
		require.NoError(t, err, "revoked elsewhere during the outage: served stale")
		f.store.broken.Store(false)
		_, err = f.auth(k.Raw)
		require.ErrorIs(t, err, mcpauth.ErrKeyRevoked)
	})
	t.Run("a known revocation time is never passed", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, &opts)
		k := f.create(t, "alice", keyadmin.CreateOptions{})
		require.NoError(t, f.store.RevokeKey(context.Background(), k.Key.ID, f.clock.Now().Add(45*time.Second)))
		_, err := f.auth(k.Raw)
		require.NoError(t, err)
		f.store.broken.Store(true)
		f.clock.Advance(44 * time.Second)
		_, err = f.auth(k.Raw)
		require.NoError(t, err)
		f.clock.Advance(time.Second)
		_, err = f.auth(k.Raw)
		require.ErrorIs(t, err, mcpauth.ErrKeyRevoked)
	})
	t.Run("Forget ends it", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, &opts)
		k := f.create(t, "alice", keyadmin.CreateOptions{})
		_, err := f.auth(k.Raw)
		require.NoError(t, err)
		f.store.broken.Store(true)
		f.guard.Forget(k.Key.ID)
		_, err = f.auth(k.Raw)
		require.ErrorIs(t, err, mcpauth.ErrUnavailable)
	})
	t.Run("unknown keys are not served from a negative entry", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, &opts)
		unknown := randomKey(t)
		_, err := f.auth(unknown)
		require.ErrorIs(t, err, mcpauth.ErrUnknownKey)
		f.store.broken.Store(true)
		f.clock.Advance(time.Minute)
		_, err = f.auth(unknown)
		require.ErrorIs(t, err, mcpauth.ErrUnavailable)
	})
}
