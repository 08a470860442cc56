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

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/audit/sqlaudit"
	"github.com/mcpauth/mcpauth/store/sqlstore"
)

// sqliteDSN opens SQLite with a busy timeout (writers queue instead of
// failing) and WAL (readers do not block the writer).
func sqliteDSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)"
}

func openSQLite(t testing.TB) *sql.DB {
	t.Helper()
	return openDSN(t, "sqlite", sqliteDSN(filepath.Join(t.TempDir(), "audit.db")))
}

// openDSN opens a database handle (its own connection pool) closed at the
// end of the test.
func openDSN(t testing.TB, driver, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	require.NoError(t, db.PingContext(context.Background()))
	return db
}

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

func openPostgres(t testing.TB) *sql.DB {
	t.Helper()
	return openDSN(t, "pgx", postgresDSN(t))
}

// uniquePrefix returns a table prefix no other test (or package) uses.
func uniquePrefix() string {
	return "ta" + strings.ToLower(rand.Text()[:12]) + "_"
}

// dropTables removes a store's tables (and the shared migrations table of
// its prefix) when the test ends.
func dropTables(t testing.TB, db *sql.DB, s *sqlaudit.Store) {
	t.Helper()
	t.Cleanup(func() {
		for _, table := range append(s.Tables(), s.MigrationsTable()) {
			if _, err := db.ExecContext(context.Background(), "DROP TABLE IF EXISTS "+table); err != nil {
				t.Errorf("drop %s: %v", table, err)
			}
		}
	})
}

// backend is a database the tests run against.
type backend struct {
	name    string
	dialect sqlstore.Dialect
	open    func(t testing.TB) *sql.DB
	// dsn returns the driver and DSN of a fresh database, for tests that
	// open it several times.
	dsn func(t testing.TB) (driver, dsn string)
}

var backends = []backend{
	{"sqlite", sqlstore.SQLite, openSQLite, func(t testing.TB) (string, string) {
		return "sqlite", sqliteDSN(filepath.Join(t.TempDir(), "audit.db"))
	}},
	{"postgres", sqlstore.Postgres, openPostgres, func(t testing.TB) (string, string) {
		return "pgx", postgresDSN(t)
	}},
}

// newStore returns a migrated store with a fresh prefix on db.
func newStore(t testing.TB, db *sql.DB, chain bool) *sqlaudit.Store {
	t.Helper()
	s, err := sqlaudit.New(db, &sqlaudit.Options{TablePrefix: uniquePrefix(), Chain: chain})
	require.NoError(t, err)
	dropTables(t, db, s)
	require.NoError(t, s.Migrate(context.Background()))
	return s
}

// eachBackend runs f against SQLite and PostgreSQL, chained or not.
func eachBackend(t *testing.T, chain bool, f func(t *testing.T, db *sql.DB, s *sqlaudit.Store)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			db := b.open(t)
			s := newStore(t, db, chain)
			require.Equal(t, b.dialect, s.Dialect())
			f(t, db, s)
		})
	}
}

// queryAll reads every page of a listing.
func queryAll(t testing.TB, s *sqlaudit.Store, f audit.Filter) []audit.Event {
	t.Helper()
	var out []audit.Event
	for {
		p, err := s.Query(context.Background(), f)
		require.NoError(t, err)
		out = append(out, p.Events...)
		if p.Next == "" {
			return out
		}
		f.Cursor = p.Next
	}
}

func count(t testing.TB, db *sql.DB, s *sqlaudit.Store) int {
	t.Helper()
	var n int
	require.NoError(t, db.QueryRow("SELECT COUNT(*) FROM "+s.EventsTable()).Scan(&n))
	return n
}
