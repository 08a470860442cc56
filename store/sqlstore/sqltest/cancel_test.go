package sqltest

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/store"
	"github.com/mcpauth/mcpauth/store/sqlstore"
	"github.com/mcpauth/mcpauth/store/storetest"
)

// TestContextCancelWhileBlocked starts a write that has to wait for a lock
// another session holds, and checks that the context's deadline ends the
// call with an error that says so (never ErrNotFound), within maxWait.
//
// On PostgreSQL, pgx's default reaction to a done context is to close the
// socket; the server finishes the statement once the lock is free, so the
// write may still land, as with any connection lost mid-write. Retrying is
// safe: RevokeKey is idempotent. On SQLite the statement never got the lock,
// so nothing happened; but SQLite's busy handler does not watch the context,
// so the call returns only when the DSN's busy_timeout has run out.
func TestContextCancelWhileBlocked(t *testing.T) {
	t.Parallel()
	check := func(t *testing.T, s *sqlstore.Store, maxWait time.Duration, mayLand bool, lock func(id string) (unlock func())) {
		ctx := context.Background()
		k := storetest.NewKey("u")
		require.NoError(t, s.CreateKey(ctx, k))
		unlock := lock(k.ID)
		short, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := s.RevokeKey(short, k.ID, time.Now())
		elapsed := time.Since(start)
		unlock()
		require.Error(t, err)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.NotErrorIs(t, err, store.ErrNotFound)
		assert.Less(t, elapsed, maxWait, "the deadline must end the wait")
		if !mayLand {
			got, err := s.LookupKey(ctx, k.ID)
			require.NoError(t, err)
			assert.True(t, got.RevokedAt.IsZero(), "a cancelled revoke must not take effect")
		}
		require.NoError(t, s.RevokeKey(ctx, k.ID, time.Now()), "a retry succeeds")
		got, err := s.LookupKey(ctx, k.ID)
		require.NoError(t, err)
		assert.False(t, got.RevokedAt.IsZero())
	}
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		s := newPostgresStore(t)
		db := openPostgres(t)
		check(t, s, time.Second, true, func(id string) func() {
			tx, err := db.Begin()
			require.NoError(t, err)
			_, err = tx.Exec("SELECT id FROM "+s.KeysTable()+" WHERE id = $1 FOR UPDATE", id)
			require.NoError(t, err)
			return func() { require.NoError(t, tx.Rollback()) }
		})
	})
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "k.db")+"?_pragma=busy_timeout(400)&_pragma=journal_mode(WAL)")
		require.NoError(t, err)
		t.Cleanup(func() { _ = db.Close() })
		s, err := sqlstore.New(db, nil)
		require.NoError(t, err)
		require.NoError(t, s.Migrate(context.Background()))
		check(t, s, 2*time.Second, false, func(string) func() {
			conn, err := db.Conn(context.Background())
			require.NoError(t, err)
			_, err = conn.ExecContext(context.Background(), "BEGIN IMMEDIATE")
			require.NoError(t, err)
			return func() {
				_, err := conn.ExecContext(context.Background(), "ROLLBACK")
				require.NoError(t, err)
				require.NoError(t, conn.Close())
			}
		})
	})
}
