package sqltest

import (
	"context"
	"database/sql"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/store"
	"github.com/mcpauth/mcpauth/store/sqlstore"
)

// revocationPepper hashes the keys of the Guards below.
var revocationPepper = apikey.Pepper{Version: 1, Secret: []byte("a pepper for the revocation test")}

// TestRevocationReachesOtherInstances runs two Guards, as two processes
// would, on one SQLite file with an hour-long cache: a key revoked through
// one stops working on the other within the poll interval.
func TestRevocationReachesOtherInstances(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := t.TempDir() + "/keys.db"
	open := func() *sqlstore.Store {
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
		require.NoError(t, err)
		t.Cleanup(func() { db.Close() })
		s, err := sqlstore.New(db, &sqlstore.Options{Dialect: sqlstore.SQLite})
		require.NoError(t, err)
		require.NoError(t, s.Migrate(ctx))
		return s
	}
	guard := func(s *sqlstore.Store, poll time.Duration) *mcpauth.Guard {
		g, err := mcpauth.New(s, &mcpauth.Options{Peppers: []apikey.Pepper{revocationPepper}, CacheTTL: time.Hour, RevocationPollInterval: poll})
		require.NoError(t, err)
		t.Cleanup(func() { _ = g.Close(ctx) })
		return g
	}
	a := guard(open(), 20*time.Millisecond)
	b := guard(open(), 20*time.Millisecond)
	noPoll := guard(open(), -1)

	mgr := newManager(t, open(), revocationPepper, a)
	k, err := mgr.Create(ctx, "alice", keyadmin.CreateOptions{})
	require.NoError(t, err)
	fx := &guardAuth{}
	for _, g := range []*mcpauth.Guard{a, b, noPoll} {
		fx.guard = g
		_, err := fx.auth(k.Raw)
		require.NoError(t, err) // cached for an hour everywhere
	}
	require.NoError(t, mgr.Revoke(ctx, k.Key.ID))
	fx.guard = a
	_, err = fx.auth(k.Raw)
	require.ErrorIs(t, err, mcpauth.ErrKeyRevoked, "at once on the revoking instance")
	fx.guard = b
	require.Eventually(t, func() bool {
		_, err := fx.auth(k.Raw)
		return err != nil
	}, 5*time.Second, 10*time.Millisecond, "the other instance stops accepting within a poll")
	_, err = fx.auth(k.Raw)
	assert.ErrorIs(t, err, mcpauth.ErrKeyRevoked)
	fx.guard = noPoll
	_, err = fx.auth(k.Raw)
	assert.NoError(t, err, "without polling, the cache holds until its TTL (the documented trade-off)")
}

// guardAuth authenticates a request carrying a key with one Guard.
type guardAuth struct{ guard *mcpauth.Guard }

func (f *guardAuth) auth(raw string) (mcpauth.Principal, error) {
	r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	r.Header.Set("Authorization", "Bearer "+raw)
	return f.guard.Authenticate(r)
}

// newManager returns a key manager over keys that issues keys with pepper,
// whose changes reach g's cache at once.
func newManager(t testing.TB, keys store.KeyStore, pepper apikey.Pepper, g *mcpauth.Guard) *keyadmin.Manager {
	t.Helper()
	m, err := keyadmin.New(keys, &keyadmin.Options{Peppers: []apikey.Pepper{pepper}, OnChange: g.Forget})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	return m
}

// TestRotationGraceReachesOtherInstancesByPoll: without a change channel,
// a rotation's shortened expiry reaches another instance (an hour-long
// cache) through the change poll, and the old key is refused there once
// its grace ends. Before changed_at, only revocations were polled and the
// other instance kept the old expiry until its cache ran out.
func TestRotationGraceReachesOtherInstancesByPoll(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := t.TempDir() + "/keys.db"
	open := func() *sqlstore.Store {
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
		require.NoError(t, err)
		t.Cleanup(func() { db.Close() })
		s, err := sqlstore.New(db, &sqlstore.Options{Dialect: sqlstore.SQLite})
		require.NoError(t, err)
		require.NoError(t, s.Migrate(ctx))
		return s
	}
	a, err := mcpauth.New(open(), &mcpauth.Options{Peppers: []apikey.Pepper{revocationPepper}, CacheTTL: time.Hour, RevocationPollInterval: 20 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Close(ctx) })
	mgr := newManager(t, open(), revocationPepper, a)
	k, err := mgr.Create(ctx, "alice", keyadmin.CreateOptions{})
	require.NoError(t, err)
	other, err := mcpauth.New(open(), &mcpauth.Options{Peppers: []apikey.Pepper{revocationPepper}, CacheTTL: time.Hour, RevocationPollInterval: 20 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { _ = other.Close(ctx) })
	fx := &guardAuth{guard: other}
	_, err = fx.auth(k.Raw)
	require.NoError(t, err, "cached for an hour")

	const grace = 300 * time.Millisecond
	start := time.Now()
	_, err = mgr.Rotate(ctx, k.Key.ID, grace)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := fx.auth(k.Raw)
		return err != nil
	}, 5*time.Second, 5*time.Millisecond, "the old key stops on the other instance")
	_, err = fx.auth(k.Raw)
	assert.ErrorIs(t, err, mcpauth.ErrKeyExpired)
	assert.GreaterOrEqual(t, time.Since(start), grace, "not before its grace ended")
}
