package sqltest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/store"
	"github.com/mcpauth/mcpauth/store/sqlstore"
	"github.com/mcpauth/mcpauth/store/storetest"
)

func TestSQLiteConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.KeyStore {
		s := newSQLiteStore(t)
		require.Equal(t, sqlstore.SQLite, s.Dialect())
		return s
	})
}

func TestPostgresConformance(t *testing.T) {
	t.Parallel()
	postgresDSN(t)
	storetest.Run(t, func(t *testing.T) store.KeyStore { return newPostgresStore(t) })
}

// backends runs f against every database available.
func backends(t *testing.T, f func(t *testing.T, s *sqlstore.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		f(t, newSQLiteStore(t))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		f(t, newPostgresStore(t))
	})
}

// TestConcurrentCreateRevokeVerify has 8 goroutines create, revoke, list,
// touch and verify keys at once; run it with -race.
func TestConcurrentCreateRevokeVerify(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		const workers, perWorker = 8, 15
		base := time.Date(2026, 1, 2, 3, 4, 5, 678901000, time.UTC)
		user := "conc-" + storetest.NewID()
		var wg sync.WaitGroup
		errs := make(chan error, workers*perWorker)
		for w := range workers {
			wg.Go(func() {
				for i := range perWorker {
					k := storetest.NewKey(user)
					k.CreatedAt = base.Add(time.Duration(w*perWorker+i) * time.Microsecond)
					if err := s.CreateKey(ctx, k); err != nil {
						errs <- fmt.Errorf("create: %w", err)
						return
					}
					if err := s.CreateKey(ctx, k); !errors.Is(err, store.ErrDuplicate) {
						errs <- fmt.Errorf("second create: got %v, want ErrDuplicate", err)
						return
					}
					revoke := i%2 == 0
					if revoke {
						if err := s.RevokeKey(ctx, k.ID, base.Add(time.Hour)); err != nil {
							errs <- fmt.Errorf("revoke: %w", err)
							return
						}
					}
					if err := s.TouchKeys(ctx, []store.Touch{{ID: k.ID, At: base.Add(time.Duration(i) * time.Second)}}); err != nil {
						errs <- fmt.Errorf("touch: %w", err)
						return
					}
					got, err := s.LookupKey(ctx, k.ID)
					switch {
					case err != nil:
						errs <- fmt.Errorf("lookup: %w", err)
						return
					case !assert.Equal(t, k.Hash, got.Hash):
						return
					case revoke != !got.RevokedAt.IsZero():
						errs <- fmt.Errorf("key %s: revoked=%v but RevokedAt=%v", k.ID, revoke, got.RevokedAt)
						return
					}
					if _, err := s.ListKeys(ctx, user); err != nil {
						errs <- fmt.Errorf("list: %w", err)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		keys, err := s.ListKeys(ctx, user)
		require.NoError(t, err)
		require.Len(t, keys, workers*perWorker)
		revoked := 0
		for i, k := range keys {
			if i > 0 {
				assert.True(t, keys[i-1].CreatedAt.Before(k.CreatedAt), "ListKeys must be oldest first")
			}
			if !k.RevokedAt.IsZero() {
				revoked++
			}
		}
		assert.Equal(t, workers*((perWorker+1)/2), revoked)
	})
}

// TestTimestampRoundTrip checks that instants keep their microseconds and
// come back in UTC, whatever zone they went in with, including instants
// before 1970 and far in the future.
func TestTimestampRoundTrip(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		zones := []*time.Location{time.UTC, time.FixedZone("minus", -(9*3600 + 30*60)), time.FixedZone("plus", 14*3600)}
		instants := []time.Time{
			time.Date(2026, 3, 14, 15, 9, 26, 535897000, time.UTC),
			time.Date(1969, 12, 31, 23, 59, 59, 999999000, time.UTC),
			time.Date(2999, 1, 1, 0, 0, 0, 1000, time.UTC),
		}
		for _, zone := range zones {
			for _, at := range instants {
				k := storetest.NewKey("tz")
				k.CreatedAt = at.In(zone)
				k.ExpiresAt = at.Add(time.Microsecond).In(zone)
				k.RevokedAt = at.Add(2 * time.Microsecond).In(zone)
				k.LastUsedAt = at.Add(3 * time.Microsecond).In(zone)
				require.NoError(t, s.CreateKey(ctx, k))
				got, err := s.LookupKey(ctx, k.ID)
				require.NoError(t, err)
				for _, c := range []struct {
					name      string
					want, got time.Time
				}{{"CreatedAt", k.CreatedAt, got.CreatedAt}, {"ExpiresAt", k.ExpiresAt, got.ExpiresAt}, {"RevokedAt", k.RevokedAt, got.RevokedAt}, {"LastUsedAt", k.LastUsedAt, got.LastUsedAt}} {
					assert.True(t, c.want.Equal(c.got), "%s in %s: want %v, got %v", c.name, zone, c.want, c.got)
					assert.Equal(t, time.UTC, c.got.Location(), c.name)
				}
			}
		}
		// Nanoseconds below the microsecond are truncated, never rounded up.
		k := storetest.NewKey("tz")
		k.CreatedAt = time.Date(2026, 1, 1, 0, 0, 0, 999999999, time.UTC)
		require.NoError(t, s.CreateKey(ctx, k))
		got, err := s.LookupKey(ctx, k.ID)
		require.NoError(t, err)
		assert.Equal(t, time.Date(2026, 1, 1, 0, 0, 0, 999999000, time.UTC), got.CreatedAt)
	})
}

func TestCreateKeyValidatesAndDefaults(t *testing.T) {
	t.Parallel()
	db, _ := openSQLite(t)
	now := time.Date(2026, 5, 6, 7, 8, 9, 123456000, time.UTC)
	s, err := sqlstore.New(db, &sqlstore.Options{Now: func() time.Time { return now }})
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, s.Migrate(ctx))

	for name, k := range map[string]store.Key{
		"no ID":   {UserID: "u", Hash: []byte{1}},
		"no user": {ID: "x", Hash: []byte{1}},
		"no hash": {ID: "x", UserID: "u"},
	} {
		t.Run(name, func(t *testing.T) {
			require.ErrorIs(t, s.CreateKey(ctx, k), sqlstore.ErrInvalidKey)
		})
	}
	require.ErrorIs(t, s.RevokeKey(ctx, "x", time.Time{}), sqlstore.ErrInvalidKey)

	k := store.Key{ID: storetest.NewID(), UserID: "u", Hash: []byte{1}}
	require.NoError(t, s.CreateKey(ctx, k))
	got, err := s.LookupKey(ctx, k.ID)
	require.NoError(t, err)
	assert.Equal(t, now, got.CreatedAt, "a zero CreatedAt is set from Options.Now")
	assert.Nil(t, got.Scopes)
	assert.Nil(t, got.AllowedCIDRs)
	assert.Nil(t, got.Metadata)
}

// TestClosedDatabase checks that every operation on a closed *sql.DB fails
// with an error that is not store.ErrNotFound (the middleware answers 503).
func TestClosedDatabase(t *testing.T) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		db, _ := openSQLite(t)
		s, err := sqlstore.New(db, nil)
		require.NoError(t, err)
		require.NoError(t, s.Migrate(context.Background()))
		require.NoError(t, db.Close())
		assertClosedErrors(t, s)
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		db := openPostgres(t)
		s, err := sqlstore.New(db, &sqlstore.Options{TablePrefix: uniquePrefix()})
		require.NoError(t, err)
		require.NoError(t, db.Close())
		assertClosedErrors(t, s)
	})
}

// TestUnreachablePostgres checks that a server that does not answer gives a
// plain error, not ErrNotFound, within the context's deadline.
func TestUnreachablePostgres(t *testing.T) {
	t.Parallel()
	db, err := sql.Open("pgx", "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
	require.NoError(t, err)
	defer db.Close()
	s, err := sqlstore.New(db, &sqlstore.Options{Dialect: sqlstore.Postgres})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = s.LookupKey(ctx, "k1")
	require.Error(t, err)
	assert.NotErrorIs(t, err, store.ErrNotFound)
	assert.NotErrorIs(t, s.RevokeKey(ctx, "k1", time.Now()), store.ErrNotFound)
}
