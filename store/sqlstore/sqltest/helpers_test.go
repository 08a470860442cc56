package sqltest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/mcpauth/mcpauth/store/sqlstore"
)

// sqliteDSN is how tests (and the docs) open SQLite with modernc.org/sqlite:
// a busy timeout so that writers queue instead of failing, and WAL so that
// readers do not block the writer.
func sqliteDSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)"
}

// openSQLite opens a fresh SQLite database file in a temporary directory.
func openSQLite(t testing.TB) (*sql.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys.db")
	db, err := sql.Open("sqlite", sqliteDSN(path))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db, path
}

// newSQLiteStore returns a migrated store on a fresh SQLite file.
func newSQLiteStore(t testing.TB) *sqlstore.Store {
	t.Helper()
	db, _ := openSQLite(t)
	s, err := sqlstore.New(db, nil)
	require.NoError(t, err)
	require.NoError(t, s.Migrate(context.Background()))
	return s
}

// postgresDSN returns MCPAUTH_TEST_POSTGRES_DSN, skipping the test when it is
// unset (failing when MCPAUTH_TEST_REQUIRE_SERVICES=1).
func postgresDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("MCPAUTH_TEST_POSTGRES_DSN")
	if dsn == "" {
		if os.Getenv("MCPAUTH_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatal("MCPAUTH_TEST_POSTGRES_DSN is not set and MCPAUTH_TEST_REQUIRE_SERVICES=1")
		}
		t.Skip("MCPAUTH_TEST_POSTGRES_DSN is not set")
	}
	return dsn
}

// openPostgres opens the test server with pgx's stdlib driver.
func openPostgres(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", postgresDSN(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	require.NoError(t, db.PingContext(context.Background()))
	return db
}

// uniquePrefix returns a table prefix no other test (or package) uses.
func uniquePrefix() string {
	return "t" + strings.ToLower(rand.Text()[:12]) + "_"
}

// dropTables removes a prefix's tables when the test ends.
func dropTables(t testing.TB, db *sql.DB, prefix string) {
	t.Helper()
	t.Cleanup(func() {
		for _, table := range []string{"key_addresses", "keys", "schema_migrations"} {
			_, err := db.ExecContext(context.Background(), "DROP TABLE IF EXISTS "+prefix+table)
			if err != nil {
				t.Errorf("drop %s%s: %v", prefix, table, err)
			}
		}
	})
}

// newPostgresStore returns a migrated store with its own table prefix on the
// test server; its tables are dropped when the test ends.
func newPostgresStore(t testing.TB) *sqlstore.Store {
	t.Helper()
	db := openPostgres(t)
	prefix := uniquePrefix()
	dropTables(t, db, prefix)
	s, err := sqlstore.New(db, &sqlstore.Options{TablePrefix: prefix})
	require.NoError(t, err)
	require.Equal(t, sqlstore.Postgres, s.Dialect())
	require.NoError(t, s.Migrate(context.Background()))
	return s
}
