package sqltest

import (
	"context"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/DATA-DOG/go-sqlmock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/store"
	"github.com/mcpauth/mcpauth/store/sqlstore"
	"github.com/mcpauth/mcpauth/store/storetest"
)

// These tests pin the exact SQL the store sends and drive every failure path
// with go-sqlmock. The behaviour itself is tested against real databases in
// conformance_test.go.

const cols = "id, user_id, name, hash, pepper_version, scopes, created_at, expires_at, revoked_at, last_used_at, rate_limit, allowed_cidrs, metadata"

var errDriver = errors.New("driver: connection reset by peer")

// sqlStateError is what pgx's and lib/pq's errors look like to the store.
type sqlStateError struct{ code string }

func (e sqlStateError) Error() string    { return "ERROR: duplicate key value (SQLSTATE " + e.code + ")" }
func (e sqlStateError) SQLState() string { return e.code }

func newMock(t *testing.T, d sqlstore.Dialect, opts ...sqlmock.QueryMatcher) (*sqlstore.Store, sqlmock.Sqlmock) {
	t.Helper()
	matcher := sqlmock.QueryMatcherEqual
	if len(opts) > 0 {
		matcher = opts[0]
	}
	db, mock, err := sqlmock.New(sqlmock.QueryMatcherOption(matcher))
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = db.Close()
		assert.NoError(t, mock.ExpectationsWereMet())
	})
	s, err := sqlstore.New(db, &sqlstore.Options{Dialect: d})
	require.NoError(t, err)
	return s, mock
}

// ph renders $n placeholders for the dialect, as the store does.
func ph(d sqlstore.Dialect, q string) string {
	if d == sqlstore.SQLite {
		return strings.ReplaceAll(q, "$", "?")
	}
	return q
}

var fixedAt = time.Date(2026, 3, 14, 15, 9, 26, 535897000, time.UTC)

// ts is how the dialect sends and stores a timestamp.
func ts(d sqlstore.Dialect, t time.Time) driver.Value {
	if d == sqlstore.SQLite {
		return t.UnixMicro()
	}
	return t
}

func keyRows(d sqlstore.Dialect, k store.Key, scopes, cidrs, meta string) *sqlmock.Rows {
	return sqlmock.NewRows(strings.Split(cols, ", ")).AddRow(k.ID, k.UserID, k.Name, k.Hash, int64(k.PepperVersion), scopes,
		ts(d, k.CreatedAt), nil, nil, nil, int64(k.RateLimit), cidrs, meta)
}

var dialects = []sqlstore.Dialect{sqlstore.SQLite, sqlstore.Postgres}

func TestMockStatements(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			ctx := context.Background()
			k := storetest.NewKey("u1")
			k.CreatedAt, k.ExpiresAt = fixedAt, time.Time{}
			k.Scopes, k.AllowedCIDRs, k.Metadata = []string{"a:read"}, nil, map[string]string{"tier": "paid"}

			t.Run("lookup", func(t *testing.T) {
				s, mock := newMock(t, d)
				mock.ExpectQuery(ph(d, "SELECT "+cols+" FROM mcpauth_keys WHERE id = $1")).WithArgs(k.ID).
					WillReturnRows(keyRows(d, k, `["a:read"]`, `[]`, `{"tier":"paid"}`))
				got, err := s.LookupKey(ctx, k.ID)
				require.NoError(t, err)
				assert.Equal(t, k, got)
			})
			t.Run("create", func(t *testing.T) {
				s, mock := newMock(t, d)
				mock.ExpectExec(ph(d, "INSERT INTO mcpauth_keys ("+cols+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (id) DO NOTHING")).
					WithArgs(k.ID, "u1", k.Name, k.Hash, int64(2), `["a:read"]`, ts(d, fixedAt), nil, nil, nil, int64(300), "[]", `{"tier":"paid"}`).
					WillReturnResult(sqlmock.NewResult(0, 1))
				require.NoError(t, s.CreateKey(ctx, k))
			})
			t.Run("revoke", func(t *testing.T) {
				s, mock := newMock(t, d)
				mock.ExpectExec(ph(d, "UPDATE mcpauth_keys SET revoked_at = COALESCE(revoked_at, $2), changed_at = $3 WHERE id = $1")).
					WithArgs("k1", ts(d, fixedAt), sqlmock.AnyArg()).WillReturnResult(sqlmock.NewResult(0, 1))
				require.NoError(t, s.RevokeKey(ctx, "k1", fixedAt.In(time.FixedZone("X", 3600))))
			})
			t.Run("set expiry", func(t *testing.T) {
				s, mock := newMock(t, d)
				mock.ExpectExec(ph(d, "UPDATE mcpauth_keys SET expires_at = $2, changed_at = $3 WHERE id = $1")).
					WithArgs("k1", ts(d, fixedAt), sqlmock.AnyArg()).WillReturnResult(sqlmock.NewResult(0, 1))
				mock.ExpectExec(ph(d, "UPDATE mcpauth_keys SET expires_at = $2, changed_at = $3 WHERE id = $1")).
					WithArgs("k1", nil, sqlmock.AnyArg()).WillReturnResult(sqlmock.NewResult(0, 1))
				require.NoError(t, s.SetExpiry(ctx, "k1", fixedAt.Add(999*time.Nanosecond)))
				require.NoError(t, s.SetExpiry(ctx, "k1", time.Time{}))
			})
			t.Run("list", func(t *testing.T) {
				s, mock := newMock(t, d)
				mock.ExpectQuery(ph(d, "SELECT "+cols+" FROM mcpauth_keys WHERE user_id = $1 ORDER BY created_at, id")).WithArgs("u1").
					WillReturnRows(keyRows(d, k, `["a:read"]`, `[]`, `{"tier":"paid"}`))
				got, err := s.ListKeys(ctx, "u1")
				require.NoError(t, err)
				assert.Equal(t, []store.Key{k}, got)
			})
		})
	}
}

const pgTouchPlan = "SELECT set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)"

func TestMockTouchPostgres(t *testing.T) {
	ctx := context.Background()
	s, mock := newMock(t, sqlstore.Postgres)
	mock.ExpectBegin()
	mock.ExpectExec(pgTouchPlan).WillReturnResult(sqlmock.NewResult(0, 0))
	// Three distinct keys (b twice: the later time wins), sorted by ID,
	// padded to four rows by repeating the last.
	mock.ExpectExec("UPDATE mcpauth_keys AS k SET last_used_at = v.at FROM (VALUES ($1::text, $2::timestamptz), ($3, $4), ($5, $6), ($7, $8)) AS v (id, at) "+
		"WHERE k.id = v.id AND (k.last_used_at IS NULL OR k.last_used_at < v.at)").
		WithArgs("a", fixedAt, "b", fixedAt.Add(time.Second), "c", fixedAt, "c", fixedAt).
		WillReturnResult(sqlmock.NewResult(0, 3))
	mock.ExpectCommit()
	require.NoError(t, s.TouchKeys(ctx, []store.Touch{
		{ID: "c", At: fixedAt}, {ID: "b", At: fixedAt.Add(time.Second)}, {ID: "a", At: fixedAt},
		{ID: "b", At: fixedAt}, {ID: "z", At: time.Time{}},
	}))
	require.NoError(t, s.TouchKeys(ctx, nil), "an empty batch sends nothing")
}

func TestMockTouchPostgresChunks(t *testing.T) {
	var rowsPerStatement []int
	counting := sqlmock.QueryMatcherFunc(func(expected, actual string) error {
		if expected == pgTouchPlan {
			return sqlmock.QueryMatcherEqual.Match(expected, actual)
		}
		rowsPerStatement = append(rowsPerStatement, strings.Count(actual, "($"))
		return nil
	})
	s, mock := newMock(t, sqlstore.Postgres, counting)
	mock.ExpectBegin()
	mock.ExpectExec(pgTouchPlan).WillReturnResult(sqlmock.NewResult(0, 0))
	mock.ExpectExec("chunk 1").WillReturnResult(sqlmock.NewResult(0, 16384))
	mock.ExpectExec("chunk 2").WillReturnResult(sqlmock.NewResult(0, 3616))
	mock.ExpectCommit()
	touches := make([]store.Touch, 20000)
	for i := range touches {
		touches[i] = store.Touch{ID: fmt.Sprintf("k%05d", i), At: fixedAt}
	}
	require.NoError(t, s.TouchKeys(context.Background(), touches))
	assert.Equal(t, []int{16384, 4096}, rowsPerStatement, "at most 16,384 rows (32,768 parameters) a statement, padded to a multiple of 1,024")
}

const sqliteTouch = "UPDATE mcpauth_keys SET last_used_at = ?2 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2)"

func TestMockTouchSQLite(t *testing.T) {
	ctx := context.Background()
	touches := []store.Touch{{ID: "b", At: fixedAt}, {ID: "a", At: fixedAt.Add(time.Second)}}
	t.Run("ok", func(t *testing.T) {
		s, mock := newMock(t, sqlstore.SQLite)
		mock.ExpectBegin()
		p := mock.ExpectPrepare(sqliteTouch)
		p.ExpectExec().WithArgs("a", fixedAt.Add(time.Second).UnixMicro()).WillReturnResult(sqlmock.NewResult(0, 1))
		p.ExpectExec().WithArgs("b", fixedAt.UnixMicro()).WillReturnResult(sqlmock.NewResult(0, 0))
		mock.ExpectCommit()
		require.NoError(t, s.TouchKeys(ctx, touches))
	})
	for _, c := range []struct {
		name   string
		expect func(mock sqlmock.Sqlmock)
	}{
		{"begin fails", func(mock sqlmock.Sqlmock) { mock.ExpectBegin().WillReturnError(errDriver) }},
		{"prepare fails", func(mock sqlmock.Sqlmock) {
			mock.ExpectBegin()
			mock.ExpectPrepare(sqliteTouch).WillReturnError(errDriver)
			mock.ExpectRollback()
		}},
		{"update fails mid-transaction", func(mock sqlmock.Sqlmock) {
			mock.ExpectBegin()
			p := mock.ExpectPrepare(sqliteTouch)
			p.ExpectExec().WithArgs("a", sqlmock.AnyArg()).WillReturnResult(sqlmock.NewResult(0, 1))
			p.ExpectExec().WithArgs("b", sqlmock.AnyArg()).WillReturnError(errDriver)
			mock.ExpectRollback()
		}},
		{"commit fails", func(mock sqlmock.Sqlmock) {
			mock.ExpectBegin()
			p := mock.ExpectPrepare(sqliteTouch)
			p.ExpectExec().WillReturnResult(sqlmock.NewResult(0, 1))
			p.ExpectExec().WillReturnResult(sqlmock.NewResult(0, 1))
			mock.ExpectCommit().WillReturnError(errDriver)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, mock := newMock(t, sqlstore.SQLite)
			c.expect(mock)
			err := s.TouchKeys(ctx, touches)
			require.ErrorIs(t, err, errDriver)
			assert.NotErrorIs(t, err, store.ErrNotFound)
			assert.True(t, strings.HasPrefix(err.Error(), "mcpauth/sqlstore: touch keys"), err.Error())
		})
	}
	for _, c := range []struct {
		name   string
		expect func(mock sqlmock.Sqlmock)
	}{
		{"begin fails", func(mock sqlmock.Sqlmock) { mock.ExpectBegin().WillReturnError(errDriver) }},
		{"set plan fails", func(mock sqlmock.Sqlmock) {
			mock.ExpectBegin()
			mock.ExpectExec("SELECT set_config").WillReturnError(errDriver)
			mock.ExpectRollback()
		}},
		{"update fails mid-transaction", func(mock sqlmock.Sqlmock) {
			mock.ExpectBegin()
			mock.ExpectExec("SELECT set_config").WillReturnResult(sqlmock.NewResult(0, 0))
			mock.ExpectExec("UPDATE mcpauth_keys AS k").WillReturnError(errDriver)
			mock.ExpectRollback()
		}},
		{"commit fails", func(mock sqlmock.Sqlmock) {
			mock.ExpectBegin()
			mock.ExpectExec("SELECT set_config").WillReturnResult(sqlmock.NewResult(0, 0))
			mock.ExpectExec("UPDATE mcpauth_keys AS k").WillReturnResult(sqlmock.NewResult(0, 2))
			mock.ExpectCommit().WillReturnError(errDriver)
		}},
	} {
		t.Run("postgres/"+c.name, func(t *testing.T) {
			s, mock := newMock(t, sqlstore.Postgres, sqlmock.QueryMatcherRegexp)
			c.expect(mock)
			err := s.TouchKeys(ctx, touches)
			require.ErrorIs(t, err, errDriver)
			assert.True(t, strings.HasPrefix(err.Error(), "mcpauth/sqlstore: touch keys"), err.Error())
		})
	}
}

func TestMockLookupFailures(t *testing.T) {
	ctx := context.Background()
	lookup := "SELECT " + cols + " FROM mcpauth_keys WHERE id = $1"
	k := storetest.NewKey("u1")
	k.CreatedAt = fixedAt
	for _, d := range dialects {
		for _, c := range []struct {
			name    string
			rows    func() *sqlmock.Rows
			err     error
			wantErr string
		}{
			{"no row", func() *sqlmock.Rows { return sqlmock.NewRows(strings.Split(cols, ", ")) }, nil, "not found"},
			{"driver error", nil, errDriver, "connection reset"},
			{"bad scopes JSON", func() *sqlmock.Rows { return keyRows(d, k, `["a"`, `[]`, `{}`) }, nil, "decode scopes column"},
			{"scopes not a list", func() *sqlmock.Rows { return keyRows(d, k, `{"a":1}`, `[]`, `{}`) }, nil, "decode scopes column"},
			{"bad CIDRs JSON", func() *sqlmock.Rows { return keyRows(d, k, `[]`, `nope`, `{}`) }, nil, "decode allowed_cidrs column"},
			{"bad metadata JSON", func() *sqlmock.Rows { return keyRows(d, k, `[]`, `[]`, `{"tier":1}`) }, nil, "decode metadata column"},
			{"bad timestamp type", func() *sqlmock.Rows {
				return sqlmock.NewRows(strings.Split(cols, ", ")).AddRow(k.ID, "u", "", k.Hash, int64(0), "[]", "yesterday", nil, nil, nil, int64(0), "[]", "{}")
			}, nil, "unsupported timestamp column type string"},
			{"row error", func() *sqlmock.Rows { return keyRows(d, k, `[]`, `[]`, `{}`).RowError(0, errDriver) }, nil, "connection reset"},
		} {
			t.Run(d.String()+"/"+c.name, func(t *testing.T) {
				s, mock := newMock(t, d)
				q := mock.ExpectQuery(ph(d, lookup)).WithArgs(k.ID)
				if c.err != nil {
					q.WillReturnError(c.err)
				} else {
					q.WillReturnRows(c.rows())
				}
				_, err := s.LookupKey(ctx, k.ID)
				require.ErrorContains(t, err, c.wantErr)
				if c.wantErr == "not found" {
					require.ErrorIs(t, err, store.ErrNotFound)
					return
				}
				assert.NotErrorIs(t, err, store.ErrNotFound, "a broken store must not look like a missing key")
				assert.NotContains(t, err.Error(), hex.EncodeToString(k.Hash))
				assert.NotContains(t, err.Error(), string(k.Hash))
			})
		}
	}
}

func TestMockCreateFailures(t *testing.T) {
	ctx := context.Background()
	insert := "INSERT INTO mcpauth_keys (" + cols + ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (id) DO NOTHING"
	for _, c := range []struct {
		name   string
		result driver.Result
		err    error
		want   error
	}{
		{"conflict: no row inserted", sqlmock.NewResult(0, 0), nil, store.ErrDuplicate},
		{"unique violation from another index", nil, sqlStateError{"23505"}, store.ErrDuplicate},
		{"other constraint", nil, sqlStateError{"23502"}, sqlStateError{"23502"}},
		{"driver error", nil, errDriver, errDriver},
		{"rows affected fails", sqlmock.NewErrorResult(errDriver), nil, errDriver},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, mock := newMock(t, sqlstore.Postgres)
			e := mock.ExpectExec(insert)
			if c.err != nil {
				e.WillReturnError(c.err)
			} else {
				e.WillReturnResult(c.result)
			}
			k := storetest.NewKey("u1")
			err := s.CreateKey(ctx, k)
			require.ErrorIs(t, err, c.want)
			assert.NotContains(t, err.Error(), hex.EncodeToString(k.Hash))
		})
	}
}

func TestMockUpdateFailures(t *testing.T) {
	ctx := context.Background()
	for _, op := range []struct {
		name  string
		query string
		call  func(s *sqlstore.Store) error
	}{
		{"revoke", "UPDATE mcpauth_keys SET revoked_at = COALESCE(revoked_at, ?2), changed_at = ?3 WHERE id = ?1", func(s *sqlstore.Store) error { return s.RevokeKey(ctx, "k1", fixedAt) }},
		{"set expiry", "UPDATE mcpauth_keys SET expires_at = ?2, changed_at = ?3 WHERE id = ?1", func(s *sqlstore.Store) error { return s.SetExpiry(ctx, "k1", fixedAt) }},
	} {
		for _, c := range []struct {
			name   string
			result driver.Result
			err    error
			want   error
		}{
			{"no such key", sqlmock.NewResult(0, 0), nil, store.ErrNotFound},
			{"driver error", nil, errDriver, errDriver},
			{"rows affected fails", sqlmock.NewErrorResult(errDriver), nil, errDriver},
		} {
			t.Run(op.name+"/"+c.name, func(t *testing.T) {
				s, mock := newMock(t, sqlstore.SQLite)
				e := mock.ExpectExec(op.query)
				if c.err != nil {
					e.WillReturnError(c.err)
				} else {
					e.WillReturnResult(c.result)
				}
				err := op.call(s)
				require.ErrorIs(t, err, c.want)
				if c.want != store.ErrNotFound {
					assert.NotErrorIs(t, err, store.ErrNotFound)
				}
			})
		}
	}
}

func TestMockListFailures(t *testing.T) {
	ctx := context.Background()
	list := "SELECT " + cols + " FROM mcpauth_keys WHERE user_id = ?1 ORDER BY created_at, id"
	k := storetest.NewKey("u1")
	good := func() *sqlmock.Rows { return keyRows(sqlstore.SQLite, k, `[]`, `[]`, `{}`) }
	for _, c := range []struct {
		name    string
		rows    *sqlmock.Rows
		err     error
		wantErr string
	}{
		{"query fails", nil, errDriver, "connection reset"},
		{"rows error after the first row", good().AddRow(k.ID+"2", "u1", "", k.Hash, int64(0), "[]", int64(1), nil, nil, nil, int64(0), "[]", "{}").RowError(1, errDriver), nil, "connection reset"},
		{"bad JSON in the second row", good().AddRow(k.ID+"2", "u1", "", k.Hash, int64(0), "[", int64(1), nil, nil, nil, int64(0), "[]", "{}"), nil, "decode scopes column"},
		{"wrong column count", sqlmock.NewRows([]string{"id"}).AddRow("x"), nil, "expected 1 destination arguments"},
		{"close error", good().CloseError(errDriver), nil, "connection reset"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, mock := newMock(t, sqlstore.SQLite)
			q := mock.ExpectQuery(list).WithArgs("u1")
			if c.err != nil {
				q.WillReturnError(c.err)
			} else {
				q.WillReturnRows(c.rows)
			}
			keys, err := s.ListKeys(ctx, "u1")
			require.ErrorContains(t, err, c.wantErr)
			assert.Nil(t, keys)
			assert.True(t, strings.HasPrefix(err.Error(), "mcpauth/sqlstore: list keys: "), err.Error())
		})
	}
	t.Run("no keys is an empty slice", func(t *testing.T) {
		s, mock := newMock(t, sqlstore.SQLite)
		mock.ExpectQuery(list).WithArgs("nobody").WillReturnRows(sqlmock.NewRows(strings.Split(cols, ", ")))
		keys, err := s.ListKeys(ctx, "nobody")
		require.NoError(t, err)
		assert.NotNil(t, keys)
		assert.Empty(t, keys)
	})
}

const (
	pgMigrationsTable = "CREATE TABLE IF NOT EXISTS mcpauth_schema_migrations (\n" +
		"    component  TEXT    NOT NULL,\n    version    INTEGER NOT NULL,\n    name       TEXT    NOT NULL,\n" +
		"    applied_at TIMESTAMPTZ NOT NULL,\n    PRIMARY KEY (component, version)\n)"
	pgCreateIndex  = "CREATE INDEX mcpauth_keys_user_id_idx ON mcpauth_keys (user_id, created_at)"
	pgRevokedIndex = "CREATE INDEX mcpauth_keys_revoked_at_idx ON mcpauth_keys (revoked_at) WHERE revoked_at IS NOT NULL"
	pgExpiresIndex = "CREATE INDEX mcpauth_keys_expires_at_idx ON mcpauth_keys (expires_at) WHERE expires_at IS NOT NULL"
)

func TestMockMigratePostgres(t *testing.T) {
	ctx := context.Background()
	expectStart := func(mock sqlmock.Sqlmock) {
		mock.ExpectBegin()
		mock.ExpectExec("SELECT pg_advisory_xact_lock(hashtext($1))").WithArgs("mcpauth_schema_migrations").WillReturnResult(sqlmock.NewResult(0, 0))
		mock.ExpectExec(pgMigrationsTable).WillReturnResult(sqlmock.NewResult(0, 0))
	}
	versions := "SELECT version FROM mcpauth_schema_migrations WHERE component = $1"
	createKeys := sqlmock.QueryMatcherFunc(func(expected, actual string) error {
		if strings.HasPrefix(expected, "CREATE TABLE mcpauth_") && strings.HasPrefix(actual, expected+" (") {
			return nil
		}
		return sqlmock.QueryMatcherEqual.Match(expected, actual)
	})
	t.Run("fresh database", func(t *testing.T) {
		s, mock := newMock(t, sqlstore.Postgres, createKeys)
		expectStart(mock)
		mock.ExpectQuery(versions).WithArgs("keys").WillReturnRows(sqlmock.NewRows([]string{"version"}))
		mock.ExpectExec("CREATE TABLE mcpauth_keys").WillReturnResult(sqlmock.NewResult(0, 0))
		mock.ExpectExec(pgCreateIndex).WillReturnResult(sqlmock.NewResult(0, 0))
		mock.ExpectExec("INSERT INTO mcpauth_schema_migrations (component, version, name, applied_at) VALUES ($1, $2, $3, $4)").
			WithArgs("keys", 1, "keys", sqlmock.AnyArg()).WillReturnResult(sqlmock.NewResult(0, 1))
		mock.ExpectExec(pgRevokedIndex).WillReturnResult(sqlmock.NewResult(0, 0))
		mock.ExpectExec(pgExpiresIndex).WillReturnResult(sqlmock.NewResult(0, 0))
		mock.ExpectExec("INSERT INTO mcpauth_schema_migrations (component, version, name, applied_at) VALUES ($1, $2, $3, $4)").
			WithArgs("keys", 2, "indexes", sqlmock.AnyArg()).WillReturnResult(sqlmock.NewResult(0, 1))
		mock.ExpectExec("CREATE TABLE mcpauth_key_addresses").WillReturnResult(sqlmock.NewResult(0, 0))
		mock.ExpectExec("INSERT INTO mcpauth_schema_migrations (component, version, name, applied_at) VALUES ($1, $2, $3, $4)").
			WithArgs("keys", 3, "key_addresses", sqlmock.AnyArg()).WillReturnResult(sqlmock.NewResult(0, 1))
		mock.ExpectExec("ALTER TABLE mcpauth_keys ADD COLUMN changed_at TIMESTAMPTZ").WillReturnResult(sqlmock.NewResult(0, 0))
		mock.ExpectExec("CREATE INDEX mcpauth_keys_changed_at_idx ON mcpauth_keys (changed_at) WHERE changed_at IS NOT NULL").WillReturnResult(sqlmock.NewResult(0, 0))
		mock.ExpectExec("INSERT INTO mcpauth_schema_migrations (component, version, name, applied_at) VALUES ($1, $2, $3, $4)").
			WithArgs("keys", 4, "changed_at", sqlmock.AnyArg()).WillReturnResult(sqlmock.NewResult(0, 1))
		mock.ExpectCommit()
		require.NoError(t, s.Migrate(ctx))
	})
	t.Run("up to date", func(t *testing.T) {
		s, mock := newMock(t, sqlstore.Postgres)
		expectStart(mock)
		mock.ExpectQuery(versions).WithArgs("keys").WillReturnRows(sqlmock.NewRows([]string{"version"}).AddRow(1).AddRow(2).AddRow(3).AddRow(4))
		mock.ExpectCommit()
		require.NoError(t, s.Migrate(ctx))
	})
	for _, c := range []struct {
		name   string
		expect func(mock sqlmock.Sqlmock)
	}{
		{"begin fails", func(mock sqlmock.Sqlmock) { mock.ExpectBegin().WillReturnError(errDriver) }},
		{"lock fails", func(mock sqlmock.Sqlmock) {
			mock.ExpectBegin()
			mock.ExpectExec("SELECT pg_advisory_xact_lock(hashtext($1))").WillReturnError(errDriver)
			mock.ExpectRollback()
		}},
		{"reading versions fails", func(mock sqlmock.Sqlmock) {
			expectStart(mock)
			mock.ExpectQuery(versions).WillReturnError(errDriver)
			mock.ExpectRollback()
		}},
		{"versions rows error", func(mock sqlmock.Sqlmock) {
			expectStart(mock)
			mock.ExpectQuery(versions).WillReturnRows(sqlmock.NewRows([]string{"version"}).AddRow(1).RowError(0, errDriver))
			mock.ExpectRollback()
		}},
		{"DDL fails mid-transaction", func(mock sqlmock.Sqlmock) {
			expectStart(mock)
			mock.ExpectQuery(versions).WillReturnRows(sqlmock.NewRows([]string{"version"}))
			mock.ExpectExec("CREATE TABLE mcpauth_keys").WillReturnResult(sqlmock.NewResult(0, 0))
			mock.ExpectExec(pgCreateIndex).WillReturnError(errDriver)
			mock.ExpectRollback()
		}},
		{"commit fails", func(mock sqlmock.Sqlmock) {
			expectStart(mock)
			mock.ExpectQuery(versions).WillReturnRows(sqlmock.NewRows([]string{"version"}).AddRow(1).AddRow(2).AddRow(3).AddRow(4))
			mock.ExpectCommit().WillReturnError(errDriver)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, mock := newMock(t, sqlstore.Postgres, createKeys)
			c.expect(mock)
			err := s.Migrate(ctx)
			require.ErrorIs(t, err, errDriver)
			assert.True(t, strings.HasPrefix(err.Error(), "mcpauth/sqlstore: migrate: "), err.Error())
		})
	}
}

func TestMockMigrateSQLite(t *testing.T) {
	ctx := context.Background()
	anyDDL := sqlmock.QueryMatcherFunc(func(expected, actual string) error {
		if strings.HasPrefix(actual, expected) {
			return nil
		}
		return fmt.Errorf("want a statement starting %q, got %q", expected, actual)
	})
	t.Run("fresh database", func(t *testing.T) {
		s, mock := newMock(t, sqlstore.SQLite, anyDDL)
		mock.ExpectExec("BEGIN IMMEDIATE").WillReturnResult(sqlmock.NewResult(0, 0))
		mock.ExpectExec("CREATE TABLE IF NOT EXISTS mcpauth_schema_migrations (").WillReturnResult(sqlmock.NewResult(0, 0))
		mock.ExpectQuery("SELECT version FROM mcpauth_schema_migrations WHERE component = ?1").WithArgs("keys").WillReturnRows(sqlmock.NewRows([]string{"version"}))
		mock.ExpectExec("CREATE TABLE mcpauth_keys (").WillReturnResult(sqlmock.NewResult(0, 0))
		mock.ExpectExec("CREATE INDEX mcpauth_keys_user_id_idx ON mcpauth_keys (user_id, created_at)").WillReturnResult(sqlmock.NewResult(0, 0))
		mock.ExpectExec("INSERT INTO mcpauth_schema_migrations (component, version, name, applied_at) VALUES (?1, ?2, ?3, ?4)").
			WithArgs("keys", 1, "keys", sqlmock.AnyArg()).WillReturnResult(sqlmock.NewResult(0, 1))
		mock.ExpectExec(pgRevokedIndex).WillReturnResult(sqlmock.NewResult(0, 0))
		mock.ExpectExec(pgExpiresIndex).WillReturnResult(sqlmock.NewResult(0, 0))
		mock.ExpectExec("INSERT INTO mcpauth_schema_migrations (component, version, name, applied_at) VALUES (?1, ?2, ?3, ?4)").
			WithArgs("keys", 2, "indexes", sqlmock.AnyArg()).WillReturnResult(sqlmock.NewResult(0, 1))
		mock.ExpectExec("CREATE TABLE mcpauth_key_addresses (").WillReturnResult(sqlmock.NewResult(0, 0))
		mock.ExpectExec("INSERT INTO mcpauth_schema_migrations (component, version, name, applied_at) VALUES (?1, ?2, ?3, ?4)").
			WithArgs("keys", 3, "key_addresses", sqlmock.AnyArg()).WillReturnResult(sqlmock.NewResult(0, 1))
		mock.ExpectExec("ALTER TABLE mcpauth_keys ADD COLUMN changed_at INTEGER").WillReturnResult(sqlmock.NewResult(0, 0))
		mock.ExpectExec("CREATE INDEX mcpauth_keys_changed_at_idx ON mcpauth_keys (changed_at) WHERE changed_at IS NOT NULL").WillReturnResult(sqlmock.NewResult(0, 0))
		mock.ExpectExec("INSERT INTO mcpauth_schema_migrations (component, version, name, applied_at) VALUES (?1, ?2, ?3, ?4)").
			WithArgs("keys", 4, "changed_at", sqlmock.AnyArg()).WillReturnResult(sqlmock.NewResult(0, 1))
		mock.ExpectExec("COMMIT").WillReturnResult(sqlmock.NewResult(0, 0))
		require.NoError(t, s.Migrate(ctx))
	})
	t.Run("failure mid-transaction rolls back", func(t *testing.T) {
		s, mock := newMock(t, sqlstore.SQLite, anyDDL)
		mock.ExpectExec("BEGIN IMMEDIATE").WillReturnResult(sqlmock.NewResult(0, 0))
		mock.ExpectExec("CREATE TABLE IF NOT EXISTS mcpauth_schema_migrations (").WillReturnResult(sqlmock.NewResult(0, 0))
		mock.ExpectQuery("SELECT version FROM").WillReturnRows(sqlmock.NewRows([]string{"version"}))
		mock.ExpectExec("CREATE TABLE mcpauth_keys (").WillReturnError(errDriver)
		mock.ExpectExec("ROLLBACK").WillReturnResult(sqlmock.NewResult(0, 0))
		require.ErrorIs(t, s.Migrate(ctx), errDriver)
	})
	t.Run("failed rollback discards the connection", func(t *testing.T) {
		db, mock, err := sqlmock.New(sqlmock.QueryMatcherOption(anyDDL))
		require.NoError(t, err)
		defer db.Close()
		s, err := sqlstore.New(db, &sqlstore.Options{Dialect: sqlstore.SQLite})
		require.NoError(t, err)
		mock.ExpectExec("BEGIN IMMEDIATE").WillReturnResult(sqlmock.NewResult(0, 0))
		mock.ExpectExec("CREATE TABLE IF NOT EXISTS").WillReturnError(errDriver)
		mock.ExpectExec("ROLLBACK").WillReturnError(errDriver)
		mock.ExpectClose()
		require.ErrorIs(t, s.Migrate(ctx), errDriver)
		assert.Equal(t, 0, db.Stats().OpenConnections, "a connection left mid-transaction must not go back to the pool")
		assert.NoError(t, mock.ExpectationsWereMet())
	})
	t.Run("begin fails", func(t *testing.T) {
		s, mock := newMock(t, sqlstore.SQLite, anyDDL)
		mock.ExpectExec("BEGIN IMMEDIATE").WillReturnError(errDriver)
		require.ErrorIs(t, s.Migrate(ctx), errDriver)
	})
	t.Run("commit fails", func(t *testing.T) {
		s, mock := newMock(t, sqlstore.SQLite, anyDDL)
		mock.ExpectExec("BEGIN IMMEDIATE").WillReturnResult(sqlmock.NewResult(0, 0))
		mock.ExpectExec("CREATE TABLE IF NOT EXISTS").WillReturnResult(sqlmock.NewResult(0, 0))
		mock.ExpectQuery("SELECT version FROM").WillReturnRows(sqlmock.NewRows([]string{"version"}).AddRow(1).AddRow(2).AddRow(3).AddRow(4))
		mock.ExpectExec("COMMIT").WillReturnError(errDriver)
		mock.ExpectExec("ROLLBACK").WillReturnResult(sqlmock.NewResult(0, 0))
		require.ErrorIs(t, s.Migrate(ctx), errDriver)
	})
}

// TestMockContextDeadline checks that a query the database is slow to answer
// is abandoned when the context ends, and that the error says so.
func TestMockContextDeadline(t *testing.T) {
	s, mock := newMock(t, sqlstore.SQLite, sqlmock.QueryMatcherRegexp)
	mock.ExpectQuery("SELECT").WillDelayFor(time.Minute).WillReturnRows(sqlmock.NewRows([]string{"id"}))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.LookupKey(ctx, "k1")
	assert.Less(t, time.Since(start), 10*time.Second)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.NotErrorIs(t, err, store.ErrNotFound)
}

// TestMockClosedDB checks every operation on a closed *sql.DB: an error that
// is not ErrNotFound, which the middleware turns into 503.
func TestMockClosedDB(t *testing.T) {
	db, mock, err := sqlmock.New()
	require.NoError(t, err)
	s, err := sqlstore.New(db, &sqlstore.Options{Dialect: sqlstore.Postgres})
	require.NoError(t, err)
	mock.ExpectClose()
	require.NoError(t, db.Close())
	assertClosedErrors(t, s)
}

func assertClosedErrors(t *testing.T, s *sqlstore.Store) {
	t.Helper()
	ctx := context.Background()
	_, lookupErr := s.LookupKey(ctx, "k1")
	_, listErr := s.ListKeys(ctx, "u1")
	for name, err := range map[string]error{
		"lookup":  lookupErr,
		"create":  s.CreateKey(ctx, storetest.NewKey("u1")),
		"revoke":  s.RevokeKey(ctx, "k1", fixedAt),
		"expiry":  s.SetExpiry(ctx, "k1", fixedAt),
		"list":    listErr,
		"touch":   s.TouchKeys(ctx, []store.Touch{{ID: "k1", At: fixedAt}}),
		"migrate": s.Migrate(ctx),
	} {
		require.Error(t, err, name)
		assert.ErrorContains(t, err, "sql: database is closed", name)
		assert.NotErrorIs(t, err, store.ErrNotFound, name)
	}
}

func TestMockTouchPostgresPadding(t *testing.T) {
	for _, c := range []struct{ touches, rows int }{
		{1, 1}, {3, 4}, {5, 8}, {1000, 1024}, {1024, 1024}, {1025, 2048}, {10000, 10240}, {16384, 16384},
	} {
		t.Run(strconv.Itoa(c.touches), func(t *testing.T) {
			var rows int
			counting := sqlmock.QueryMatcherFunc(func(expected, actual string) error {
				if expected == "touch" {
					rows = strings.Count(actual, "($")
				}
				return nil
			})
			s, mock := newMock(t, sqlstore.Postgres, counting)
			mock.ExpectBegin()
			mock.ExpectExec("plan").WillReturnResult(sqlmock.NewResult(0, 0))
			mock.ExpectExec("touch").WillReturnResult(sqlmock.NewResult(0, int64(c.touches)))
			mock.ExpectCommit()
			touches := make([]store.Touch, c.touches)
			for i := range touches {
				touches[i] = store.Touch{ID: fmt.Sprintf("k%05d", i), At: fixedAt}
			}
			require.NoError(t, s.TouchKeys(context.Background(), touches))
			assert.Equal(t, c.rows, rows)
		})
	}
}
