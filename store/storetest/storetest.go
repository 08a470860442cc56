// Package storetest is the conformance suite for store.KeyStore
// implementations. Every store, in memory or in a database, calls Run from
// its tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.KeyStore { return newStore(t) })
//	}
//
// newStore must return an empty store, or one in which IDs made by the suite
// (random, prefixed "st") do not exist. Optional interfaces (KeyLister,
// KeyUpdater, Toucher, RevocationLister, ExpiringLister, AddressRecorder)
// are tested when the store implements them.
//
// A store whose keys must belong to existing users (a foreign key to the
// host's users table) calls RunWithOptions with an Options.User function
// that creates the suite's users:
//
//	storetest.RunWithOptions(t, newStore, &storetest.Options{
//		User: func(t *testing.T, s store.KeyStore, name string) string { return createUser(t, name) },
//	})
package storetest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/store"
)

// Options adapts the suite to a store. A nil *Options means the defaults.
type Options struct {
	// User returns the user ID to store in the keys of the suite's user
	// called name ("user-1", "user-2", "lister", ...), creating that user
	// first if the store needs it (a keys table with a foreign key to the
	// host's users table). It is called on the subtest's goroutine, once
	// per name and subtest, with the subtest's store; the same name in two
	// subtests may reach one shared database, so create the user only if
	// missing. Default: the name itself.
	User func(t *testing.T, s store.KeyStore, name string) string
}

// Run runs the conformance suite with the default options. newStore is
// called once per subtest.
func Run(t *testing.T, newStore func(t *testing.T) store.KeyStore) {
	t.Helper()
	RunWithOptions(t, newStore, nil)
}

// userFunc maps a suite user name to the store's user ID.
type userFunc func(name string) string

// RunWithOptions runs the conformance suite. newStore is called once per
// subtest; opts may be nil.
func RunWithOptions(t *testing.T, newStore func(t *testing.T) store.KeyStore, opts *Options) {
	t.Helper()
	var o Options
	if opts != nil {
		o = *opts
	}
	run := func(name string, test func(t *testing.T, s store.KeyStore, u userFunc)) {
		t.Run(name, func(t *testing.T) {
			s := newStore(t)
			ids := make(map[string]string)
			u := func(name string) string {
				if o.User == nil {
					return name
				}
				id, ok := ids[name]
				if !ok {
					id = o.User(t, s, name)
					ids[name] = id
				}
				return id
			}
			test(t, s, u)
		})
	}
	run("LookupMissing", testLookupMissing)
	run("CreateAndLookup", testCreateAndLookup)
	run("Duplicate", testDuplicate)
	run("ReturnedCopyIsIsolated", testIsolation)
	run("Revoke", testRevoke)
	run("Expiry", testExpiry)
	run("List", testList)
	run("SetExpiry", testSetExpiry)
	run("Touch", testTouch)
	run("RevokedSince", testRevokedSince)
	run("ChangedSince", testChangedSince)
	run("ListExpiring", testListExpiring)
	run("RecordAddress", testRecordAddress)
	run("CanceledContext", testCanceled)
	run("Concurrent", testConcurrent)
}

// base is a fixed instant with sub-second precision (microseconds, which
// every supported database keeps) in a non-UTC zone, so that stores are
// checked for both precision and time-zone handling.
var base = time.Date(2026, 3, 14, 15, 9, 26, 535897000, time.FixedZone("X", 5*3600+1800))

// NewID returns a random key ID that no other test uses.
func NewID() string {
	return "st" + rand.Text()[:10]
}

// NewKey returns a fully populated key record with a fresh ID.
func NewKey(userID string) store.Key {
	hash := make([]byte, 32)
	_, _ = rand.Read(hash)
	return store.Key{
		ID:            NewID(),
		UserID:        userID,
		Name:          "laptop agent — ünïcode",
		Hash:          hash,
		PepperVersion: 2,
		Scopes:        []string{"documents:read", "write"},
		CreatedAt:     base,
		ExpiresAt:     base.Add(90 * 24 * time.Hour),
		RateLimit:     300,
		AllowedCIDRs:  []string{"10.0.0.0/8", "2001:db8::/32"},
		Metadata:      map[string]string{"tier": "paid", "team": "a"},
	}
}

func assertSameKey(t *testing.T, want, got store.Key) {
	t.Helper()
	assert.Equal(t, want.ID, got.ID)
	assert.Equal(t, want.UserID, got.UserID)
	assert.Equal(t, want.Name, got.Name)
	assert.Equal(t, want.Hash, got.Hash)
	assert.Equal(t, want.PepperVersion, got.PepperVersion)
	assert.ElementsMatch(t, want.Scopes, got.Scopes)
	assert.ElementsMatch(t, want.AllowedCIDRs, got.AllowedCIDRs)
	assert.Equal(t, want.RateLimit, got.RateLimit)
	if len(want.Metadata) == 0 {
		assert.Empty(t, got.Metadata)
	} else {
		assert.Equal(t, want.Metadata, got.Metadata)
	}
	assertSameTime(t, "CreatedAt", want.CreatedAt, got.CreatedAt)
	assertSameTime(t, "ExpiresAt", want.ExpiresAt, got.ExpiresAt)
	assertSameTime(t, "RevokedAt", want.RevokedAt, got.RevokedAt)
	assertSameTime(t, "LastUsedAt", want.LastUsedAt, got.LastUsedAt)
}

func assertSameTime(t *testing.T, field string, want, got time.Time) {
	t.Helper()
	if want.IsZero() {
		assert.True(t, got.IsZero(), "%s: want zero time, got %v", field, got)
		return
	}
	assert.True(t, want.Equal(got), "%s: want %v, got %v", field, want, got)
}

func testLookupMissing(t *testing.T, s store.KeyStore, _ userFunc) {
	_, err := s.LookupKey(context.Background(), NewID())
	require.ErrorIs(t, err, store.ErrNotFound)
	err = s.RevokeKey(context.Background(), NewID(), base)
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testCreateAndLookup(t *testing.T, s store.KeyStore, u userFunc) {
	ctx := context.Background()
	full := NewKey(u("user-1"))
	require.NoError(t, s.CreateKey(ctx, full))
	got, err := s.LookupKey(ctx, full.ID)
	require.NoError(t, err)
	assertSameKey(t, full, got)

	minimal := store.Key{ID: NewID(), UserID: u("user-2"), Hash: []byte{1, 2, 3}, CreatedAt: base}
	require.NoError(t, s.CreateKey(ctx, minimal))
	got, err = s.LookupKey(ctx, minimal.ID)
	require.NoError(t, err)
	assertSameKey(t, minimal, got)
	assert.Empty(t, got.Scopes)
	assert.Equal(t, store.StatusActive, got.StatusAt(base.Add(100*365*24*time.Hour)))
}

func testDuplicate(t *testing.T, s store.KeyStore, u userFunc) {
	ctx := context.Background()
	k := NewKey(u("user-1"))
	require.NoError(t, s.CreateKey(ctx, k))
	other := NewKey(u("user-2"))
	other.ID = k.ID
	require.ErrorIs(t, s.CreateKey(ctx, other), store.ErrDuplicate)
	got, err := s.LookupKey(ctx, k.ID)
	require.NoError(t, err)
	assert.Equal(t, u("user-1"), got.UserID, "a rejected duplicate must not overwrite the original")
}

func testIsolation(t *testing.T, s store.KeyStore, u userFunc) {
	ctx := context.Background()
	k := NewKey(u("user-1"))
	require.NoError(t, s.CreateKey(ctx, k))
	k.Scopes[0] = "admin" // the caller's slice must not alias the store's
	k.Hash[0] ^= 0xff
	got, err := s.LookupKey(ctx, k.ID)
	require.NoError(t, err)
	assert.Equal(t, "documents:read", got.Scopes[0])
	got.Scopes[0] = "admin"
	got.Metadata["tier"] = "free"
	again, err := s.LookupKey(ctx, k.ID)
	require.NoError(t, err)
	assert.Equal(t, "documents:read", again.Scopes[0])
	assert.Equal(t, "paid", again.Metadata["tier"])
}

func testRevoke(t *testing.T, s store.KeyStore, u userFunc) {
	ctx := context.Background()
	k := NewKey(u("user-1"))
	require.NoError(t, s.CreateKey(ctx, k))
	at := base.Add(time.Hour + 123456*time.Microsecond)
	require.NoError(t, s.RevokeKey(ctx, k.ID, at))
	got, err := s.LookupKey(ctx, k.ID)
	require.NoError(t, err)
	assertSameTime(t, "RevokedAt", at, got.RevokedAt)
	assert.Equal(t, store.StatusRevoked, got.StatusAt(at))
	assert.Equal(t, store.StatusActive, got.StatusAt(at.Add(-time.Microsecond)))

	// A second revocation keeps the first time.
	require.NoError(t, s.RevokeKey(ctx, k.ID, at.Add(time.Hour)))
	got, err = s.LookupKey(ctx, k.ID)
	require.NoError(t, err)
	assertSameTime(t, "RevokedAt", at, got.RevokedAt)
}

func testExpiry(t *testing.T, s store.KeyStore, u userFunc) {
	ctx := context.Background()
	k := NewKey(u("user-1"))
	k.ExpiresAt = base.Add(time.Minute + 987654*time.Microsecond)
	require.NoError(t, s.CreateKey(ctx, k))
	got, err := s.LookupKey(ctx, k.ID)
	require.NoError(t, err)
	assertSameTime(t, "ExpiresAt", k.ExpiresAt, got.ExpiresAt)
	assert.Equal(t, store.StatusActive, got.StatusAt(k.ExpiresAt.Add(-time.Microsecond)))
	assert.Equal(t, store.StatusExpired, got.StatusAt(k.ExpiresAt))
}

func testList(t *testing.T, s store.KeyStore, u userFunc) {
	l, ok := s.(store.KeyLister)
	if !ok {
		t.Skip("store does not implement store.KeyLister")
	}
	ctx := context.Background()
	user := u("lister")
	keys, err := l.ListKeys(ctx, user)
	require.NoError(t, err)
	assert.Empty(t, keys)

	var want []store.Key
	for i := range 3 {
		k := NewKey(user)
		k.CreatedAt = base.Add(time.Duration(i) * time.Second)
		require.NoError(t, s.CreateKey(ctx, k))
		want = append(want, k)
	}
	require.NoError(t, s.CreateKey(ctx, NewKey(u("someone-else"))))
	require.NoError(t, s.RevokeKey(ctx, want[1].ID, base.Add(time.Hour)))
	want[1].RevokedAt = base.Add(time.Hour)

	keys, err = l.ListKeys(ctx, user)
	require.NoError(t, err)
	require.Len(t, keys, 3)
	for i := range want {
		assertSameKey(t, want[i], keys[i])
	}
}

func testSetExpiry(t *testing.T, s store.KeyStore, u userFunc) {
	up, ok := s.(store.KeyUpdater)
	if !ok {
		t.Skip("store does not implement store.KeyUpdater")
	}
	ctx := context.Background()
	k := NewKey(u("user-1"))
	require.NoError(t, s.CreateKey(ctx, k))
	at := base.Add(2*time.Hour + 5*time.Microsecond)
	require.NoError(t, up.SetExpiry(ctx, k.ID, at))
	got, err := s.LookupKey(ctx, k.ID)
	require.NoError(t, err)
	assertSameTime(t, "ExpiresAt", at, got.ExpiresAt)
	require.NoError(t, up.SetExpiry(ctx, k.ID, time.Time{}))
	got, err = s.LookupKey(ctx, k.ID)
	require.NoError(t, err)
	assert.True(t, got.ExpiresAt.IsZero())
	require.ErrorIs(t, up.SetExpiry(ctx, NewID(), at), store.ErrNotFound)
}

func testTouch(t *testing.T, s store.KeyStore, u userFunc) {
	tc, ok := s.(store.Toucher)
	if !ok {
		t.Skip("store does not implement store.Toucher")
	}
	ctx := context.Background()
	a, b := NewKey(u("user-1")), NewKey(u("user-1"))
	require.NoError(t, s.CreateKey(ctx, a))
	require.NoError(t, s.CreateKey(ctx, b))
	t1 := base.Add(time.Minute + 111111*time.Microsecond)
	t2 := base.Add(2*time.Minute + 222222*time.Microsecond)
	require.NoError(t, tc.TouchKeys(ctx, []store.Touch{{ID: a.ID, At: t1}, {ID: b.ID, At: t2}, {ID: NewID(), At: t2}}))
	require.NoError(t, tc.TouchKeys(ctx, nil))
	// Earlier times never move LastUsedAt backwards.
	require.NoError(t, tc.TouchKeys(ctx, []store.Touch{{ID: b.ID, At: t1}}))
	gotA, err := s.LookupKey(ctx, a.ID)
	require.NoError(t, err)
	gotB, err := s.LookupKey(ctx, b.ID)
	require.NoError(t, err)
	assertSameTime(t, "LastUsedAt", t1, gotA.LastUsedAt)
	assertSameTime(t, "LastUsedAt", t2, gotB.LastUsedAt)

	// Many keys in one batch.
	var batch []store.Touch
	for range 250 {
		k := NewKey(u("user-batch"))
		require.NoError(t, s.CreateKey(ctx, k))
		batch = append(batch, store.Touch{ID: k.ID, At: t2})
	}
	require.NoError(t, tc.TouchKeys(ctx, batch))
	got, err := s.LookupKey(ctx, batch[249].ID)
	require.NoError(t, err)
	assertSameTime(t, "LastUsedAt", t2, got.LastUsedAt)
}

func testRevokedSince(t *testing.T, s store.KeyStore, u userFunc) {
	rl, ok := s.(store.RevocationLister)
	if !ok {
		t.Skip("store does not implement store.RevocationLister")
	}
	ctx := context.Background()
	// Far in the future, so that other subtests' revocations (at base) do
	// not show up when the store is shared.
	t0 := base.Add(1000 * 24 * time.Hour)
	var ids []string
	for i := range 4 {
		k := NewKey(u("user-1"))
		require.NoError(t, s.CreateKey(ctx, k))
		ids = append(ids, k.ID)
		if i > 0 {
			require.NoError(t, s.RevokeKey(ctx, k.ID, t0.Add(time.Duration(i)*time.Second)))
		}
	}
	got, err := rl.RevokedSince(ctx, t0.Add(2*time.Second), 100)
	require.NoError(t, err)
	assert.Equal(t, []string{ids[3], ids[2]}, got, "at or after since, most recent first; active keys never")
	got, err = rl.RevokedSince(ctx, t0, 1)
	require.NoError(t, err)
	assert.Equal(t, []string{ids[3]}, got, "limit")
	got, err = rl.RevokedSince(ctx, t0.Add(time.Hour), 100)
	require.NoError(t, err)
	assert.Empty(t, got)
}

// testChangedSince: a revocation and a new expiry (what rotation with a
// grace period does) both show as changes; an untouched key does not. The
// store's clock stamps expiry changes, so the window is wide and the check
// is membership, not order, when the store is shared.
func testChangedSince(t *testing.T, s store.KeyStore, u userFunc) {
	cl, ok := s.(store.ChangeLister)
	if !ok {
		t.Skip("store does not implement store.ChangeLister")
	}
	ku, ok := s.(store.KeyUpdater)
	if !ok {
		t.Skip("store does not implement store.KeyUpdater")
	}
	ctx := context.Background()
	since := time.Now().Add(-time.Hour)
	untouched, expiry, revoked := NewKey(u("user-1")), NewKey(u("user-1")), NewKey(u("user-1"))
	for _, k := range []store.Key{untouched, expiry, revoked} {
		require.NoError(t, s.CreateKey(ctx, k))
	}
	require.NoError(t, ku.SetExpiry(ctx, expiry.ID, time.Now().Add(5*time.Second)))
	require.NoError(t, s.RevokeKey(ctx, revoked.ID, time.Now()))
	got, err := cl.ChangedSince(ctx, since, 10_000)
	require.NoError(t, err)
	assert.Contains(t, got, expiry.ID, "a new expiry is a change")
	assert.Contains(t, got, revoked.ID, "a revocation is a change")
	assert.NotContains(t, got, untouched.ID, "a key nobody changed")
	got, err = cl.ChangedSince(ctx, since, 1)
	require.NoError(t, err)
	assert.Len(t, got, 1, "limit")
	got, err = cl.ChangedSince(ctx, since, 0)
	require.NoError(t, err)
	assert.Empty(t, got, "limit 0")
}

func testListExpiring(t *testing.T, s store.KeyStore, u userFunc) {
	el, ok := s.(store.ExpiringLister)
	if !ok {
		t.Skip("store does not implement store.ExpiringLister")
	}
	ctx := context.Background()
	t0 := base.Add(2000 * 24 * time.Hour) // clear of other subtests' keys
	var keys []store.Key
	for i := range 5 {
		k := NewKey(u(fmt.Sprintf("expiring-%d", i)))
		k.ExpiresAt = t0.Add(time.Duration(i) * time.Hour)
		require.NoError(t, s.CreateKey(ctx, k))
		keys = append(keys, k)
	}
	require.NoError(t, s.RevokeKey(ctx, keys[2].ID, base))
	got, err := el.ListExpiring(ctx, t0.Add(time.Hour), t0.Add(4*time.Hour), 100)
	require.NoError(t, err)
	require.Len(t, got, 2, "in [from, to), revoked keys left out")
	assertSameKey(t, keys[1], got[0])
	assertSameKey(t, keys[3], got[1])
	got, err = el.ListExpiring(ctx, t0, t0.Add(time.Hour*10), 2)
	require.NoError(t, err)
	require.Len(t, got, 2, "limit")
	assert.Equal(t, keys[0].ID, got[0].ID, "soonest first")
}

func testCanceled(t *testing.T, s store.KeyStore, u userFunc) {
	k := NewKey(u("user-1"))
	require.NoError(t, s.CreateKey(context.Background(), k))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.LookupKey(ctx, k.ID)
	require.Error(t, err)
	assert.False(t, errors.Is(err, store.ErrNotFound), "a canceled lookup must not look like a missing key")
	assert.ErrorIs(t, err, context.Canceled)
	assert.Error(t, s.CreateKey(ctx, NewKey(u("user-1"))))
	assert.Error(t, s.RevokeKey(ctx, k.ID, base))
	got, err := s.LookupKey(context.Background(), k.ID)
	require.NoError(t, err)
	assert.True(t, got.RevokedAt.IsZero(), "a canceled revoke must not take effect")
}

func testConcurrent(t *testing.T, s store.KeyStore, u userFunc) {
	ctx := context.Background()
	const workers, perWorker = 8, 20
	users := make([]string, workers)
	for w := range workers {
		users[w] = u(fmt.Sprintf("user-%d", w))
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				k := NewKey(users[w])
				if err := s.CreateKey(ctx, k); err != nil {
					errs <- err
					return
				}
				got, err := s.LookupKey(ctx, k.ID)
				if err != nil || got.UserID != k.UserID {
					errs <- fmt.Errorf("lookup after create: %v", err)
					return
				}
				if i%2 == 0 {
					if err := s.RevokeKey(ctx, k.ID, base); err != nil {
						errs <- err
						return
					}
					got, err := s.LookupKey(ctx, k.ID)
					if err != nil || got.RevokedAt.IsZero() {
						errs <- fmt.Errorf("lookup after revoke: %v", err)
						return
					}
				}
				if tc, ok := s.(store.Toucher); ok {
					if err := tc.TouchKeys(ctx, []store.Touch{{ID: k.ID, At: base.Add(time.Duration(i) * time.Second)}}); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func testRecordAddress(t *testing.T, s store.KeyStore, u userFunc) {
	ar, ok := s.(store.AddressRecorder)
	if !ok {
		t.Skip("store does not implement store.AddressRecorder")
	}
	ctx := context.Background()
	keys := make([]store.Key, 4)
	for i := range keys {
		keys[i] = NewKey(u("user-1"))
		require.NoError(t, s.CreateKey(ctx, keys[i]))
	}
	record := func(k store.Key, addr string) bool {
		t.Helper()
		isNew, err := ar.RecordAddress(ctx, k.ID, addr, base)
		require.NoError(t, err)
		return isNew
	}
	a, b := keys[0], keys[1]
	assert.True(t, record(a, "203.0.113.7"), "first use from an address")
	assert.False(t, record(a, "203.0.113.7"), "second use")
	assert.True(t, record(b, "203.0.113.7"), "another key's addresses are its own")
	assert.True(t, record(a, "2001:db8::1"), "another address")
	assert.False(t, record(b, "203.0.113.7"))

	bounded := keys[2]
	for i := range store.MaxAddressesPerKey {
		require.True(t, record(bounded, fmt.Sprintf("10.0.%d.%d", i/256, i%256)), "address %d of %d", i+1, store.MaxAddressesPerKey)
	}
	assert.False(t, record(bounded, "192.0.2.1"), "past MaxAddressesPerKey, addresses are not recorded")
	assert.False(t, record(bounded, "192.0.2.1"))
	assert.False(t, record(bounded, "10.0.0.0"), "a known address stays known")

	racy := keys[3]
	const callers = 8
	var (
		wg    sync.WaitGroup
		fresh atomic.Int32
	)
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			isNew, err := ar.RecordAddress(ctx, racy.ID, "198.51.100.9", base)
			if err != nil {
				errs <- err
				return
			}
			if isNew {
				fresh.Add(1)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assert.Equal(t, int32(1), fresh.Load(), "exactly one of concurrent callers sees the address as new")

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	_, err := ar.RecordAddress(canceled, a.ID, "192.0.2.99", base)
	require.Error(t, err)
	assert.True(t, record(a, "192.0.2.99"), "a canceled call records nothing")
}
