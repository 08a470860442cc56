package sqltest

import (
	"context"
	"database/sql"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/store/sqlstore"
	"github.com/mcpauth/mcpauth/store/storetest"
)

// keyMigrations is how many migrations the key store has (0003 added the
// key_addresses table, 0004 changed_at).
const keyMigrations = 4

func countRows(t *testing.T, db *sql.DB, table string) int {
	t.Helper()
	var n int
	require.NoError(t, db.QueryRowContext(context.Background(), "SELECT count(*) FROM "+table).Scan(&n))
	return n
}

func TestMigrateIsIdempotent(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		k := storetest.NewKey("u")
		require.NoError(t, s.CreateKey(ctx, k))
		for range 3 {
			require.NoError(t, s.Migrate(ctx))
		}
		got, err := s.LookupKey(ctx, k.ID)
		require.NoError(t, err, "a second Migrate must keep the data")
		assert.Equal(t, k.Hash, got.Hash)
	})
}

// TestMigrateConcurrently runs Migrate from several *sql.DB (separate
// connection pools, as separate processes would have) at once against one
// fresh database: all succeed and each migration is recorded once.
func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	const procs = 6
	run := func(t *testing.T, open func() *sql.DB, prefix string) {
		var wg sync.WaitGroup
		errs := make([]error, procs)
		stores := make([]*sqlstore.Store, procs)
		for i := range procs {
			s, err := sqlstore.New(open(), &sqlstore.Options{TablePrefix: prefix})
			require.NoError(t, err)
			stores[i] = s
		}
		for i := range procs {
			wg.Go(func() { errs[i] = stores[i].Migrate(context.Background()) })
		}
		wg.Wait()
		for i, err := range errs {
			require.NoError(t, err, "process %d", i)
		}
		db := open()
		assert.Equal(t, keyMigrations, countRows(t, db, prefix+"schema_migrations"))
		require.NoError(t, stores[0].CreateKey(context.Background(), storetest.NewKey("u")))
		assert.Equal(t, 1, countRows(t, db, prefix+"keys"))
	}
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		_, path := openSQLite(t)
		run(t, func() *sql.DB {
			db, err := sql.Open("sqlite", sqliteDSN(path))
			require.NoError(t, err)
			t.Cleanup(func() { _ = db.Close() })
			return db
		}, "mcpauth_")
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		prefix := uniquePrefix()
		dropTables(t, openPostgres(t), prefix)
		run(t, func() *sql.DB { return openPostgres(t) }, prefix)
	})
}

// TestMigrateRecordsVersion checks the migrations table's content.
func TestMigrateRecordsVersion(t *testing.T) {
	t.Parallel()
	db, _ := openSQLite(t)
	now := time.Date(2026, 2, 3, 4, 5, 6, 789000000, time.UTC)
	s, err := sqlstore.New(db, &sqlstore.Options{TablePrefix: "app_", Now: func() time.Time { return now }})
	require.NoError(t, err)
	require.NoError(t, s.Migrate(context.Background()))
	var (
		component, name string
		version         int
		appliedAt       int64
	)
	require.NoError(t, db.QueryRow("SELECT component, version, name, applied_at FROM app_schema_migrations").
		Scan(&component, &version, &name, &appliedAt))
	assert.Equal(t, "keys", component)
	assert.Equal(t, 1, version)
	assert.Equal(t, "keys", name)
	assert.Equal(t, now.UnixMicro(), appliedAt)
	assert.Equal(t, "app_keys", s.KeysTable())
	assert.Equal(t, "app_schema_migrations", s.MigrationsTable())
}

// docSchema returns the SQL block that follows the given line in doc.go.
func docSchema(t *testing.T, heading string) string {
	t.Helper()
	src, err := os.ReadFile("../doc.go") // the sqlstore package documentation
	require.NoError(t, err)
	_, after, ok := strings.Cut(string(src), "// "+heading+"\n//\n")
	require.True(t, ok, "doc.go has no %q block", heading)
	var b strings.Builder
	for line := range strings.Lines(after) {
		code, ok := strings.CutPrefix(line, "//\t")
		if !ok {
			break
		}
		b.WriteString(code)
	}
	return b.String()
}

// TestDocumentedSchema checks that the schema in the package doc is the one
// Migrate creates, and that a database created from the doc by hand works and
// is left alone by Migrate.
func TestDocumentedSchema(t *testing.T) {
	t.Parallel()
	check := func(t *testing.T, db *sql.DB, d sqlstore.Dialect, heading, prefix string) {
		doc := docSchema(t, heading)
		ref, err := sqlstore.New(db, &sqlstore.Options{Dialect: d})
		require.NoError(t, err)
		schema, err := ref.Schema()
		require.NoError(t, err)
		assert.Contains(t, doc, schema, "doc.go's %s schema differs from Store.Schema", heading)

		ctx := context.Background()
		_, err = db.ExecContext(ctx, strings.ReplaceAll(doc, "mcpauth_", prefix))
		require.NoError(t, err)
		s, err := sqlstore.New(db, &sqlstore.Options{Dialect: d, TablePrefix: prefix})
		require.NoError(t, err)
		require.NoError(t, s.Migrate(ctx))
		assert.Equal(t, keyMigrations, countRows(t, db, prefix+"schema_migrations"))
		k := storetest.NewKey("u")
		require.NoError(t, s.CreateKey(ctx, k))
		got, err := s.LookupKey(ctx, k.ID)
		require.NoError(t, err)
		assert.Equal(t, k.Scopes, got.Scopes)
	}
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		db, _ := openSQLite(t)
		check(t, db, sqlstore.SQLite, "SQLite (timestamps are INTEGER Unix microseconds, UTC):", "doc_")
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		db := openPostgres(t)
		prefix := uniquePrefix()
		dropTables(t, db, prefix)
		check(t, db, sqlstore.Postgres, "PostgreSQL:", prefix)
	})
}

func TestNewOptions(t *testing.T) {
	t.Parallel()
	db, _ := openSQLite(t)
	for _, c := range []struct {
		name string
		opts *sqlstore.Options
		ok   bool
	}{
		{"nil options", nil, true},
		{"custom prefix", &sqlstore.Options{TablePrefix: "my_app_2_"}, true},
		{"explicit postgres", &sqlstore.Options{Dialect: sqlstore.Postgres}, true},
		{"upper case prefix", &sqlstore.Options{TablePrefix: "Mcp_"}, false},
		{"injection", &sqlstore.Options{TablePrefix: "x; DROP TABLE users; --"}, false},
		{"leading digit", &sqlstore.Options{TablePrefix: "1x_"}, false},
		{"too long", &sqlstore.Options{TablePrefix: strings.Repeat("a", 41)}, false},
		{"unknown dialect", &sqlstore.Options{Dialect: sqlstore.Dialect(42)}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := sqlstore.New(db, c.opts)
			if !c.ok {
				require.ErrorIs(t, err, sqlstore.ErrInvalidOption)
				return
			}
			require.NoError(t, err)
			if c.opts != nil && c.opts.Dialect != sqlstore.DialectAuto {
				assert.Equal(t, c.opts.Dialect, s.Dialect())
			} else {
				assert.Equal(t, sqlstore.SQLite, s.Dialect(), "detected")
			}
		})
	}
	_, err := sqlstore.New(nil, nil)
	require.ErrorIs(t, err, sqlstore.ErrInvalidOption)
}

func TestDetectDialectPostgres(t *testing.T) {
	t.Parallel()
	db := openPostgres(t)
	d, err := sqlstore.DetectDialect(context.Background(), db)
	require.NoError(t, err)
	assert.Equal(t, sqlstore.Postgres, d)
	s, err := sqlstore.New(db, nil)
	require.NoError(t, err)
	assert.Equal(t, sqlstore.Postgres, s.Dialect())
}

func TestNewOnClosedDBWithAutoDialect(t *testing.T) {
	t.Parallel()
	db, _ := openSQLite(t)
	require.NoError(t, db.Close())
	_, err := sqlstore.New(db, nil)
	require.ErrorContains(t, err, "database is closed")
}

// TestMigrateSharesTableWithOtherComponents checks that rows other mcpauth
// packages (audit/sqlaudit, component "audit") keep in the same migrations
// table do not count as this package's versions.
func TestMigrateSharesTableWithOtherComponents(t *testing.T) {
	t.Parallel()
	check := func(t *testing.T, db *sql.DB, d sqlstore.Dialect, prefix string, at any) {
		ctx := context.Background()
		s, err := sqlstore.New(db, &sqlstore.Options{Dialect: d, TablePrefix: prefix})
		require.NoError(t, err)
		schema, err := s.Schema()
		require.NoError(t, err)
		createMigrations, _, _ := strings.Cut(schema, ";")
		_, err = db.ExecContext(ctx, createMigrations)
		require.NoError(t, err)
		_, err = db.ExecContext(ctx, ph(d, "INSERT INTO "+s.MigrationsTable()+" (component, version, name, applied_at) VALUES ('audit', 1, 'events', $1)"), at)
		require.NoError(t, err)
		require.NoError(t, s.Migrate(ctx))
		assert.Equal(t, keyMigrations+1, countRows(t, db, s.MigrationsTable()))
		require.NoError(t, s.CreateKey(ctx, storetest.NewKey("u")), "the key table must exist")
	}
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		db, _ := openSQLite(t)
		check(t, db, sqlstore.SQLite, "mcpauth_", time.Now().UnixMicro())
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		db := openPostgres(t)
		prefix := uniquePrefix()
		dropTables(t, db, prefix)
		check(t, db, sqlstore.Postgres, prefix, time.Now())
	})
}
