package sqlstore

import (
	"context"
	"embed"
	"io/fs"
)

//go:embed migrations
var migrationFS embed.FS

// migrationComponent names this package's rows in the shared
// <prefix>schema_migrations table; other mcpauth packages using the same
// prefix record theirs under their own component.
const migrationComponent = "keys"

func (s *Store) migrations() *Migrations {
	sub, _ := fs.Sub(migrationFS, "migrations") // a constant path: cannot fail
	return &Migrations{FS: sub, Component: migrationComponent, Dialect: s.dialect, TablePrefix: s.prefix, Now: s.now}
}

// Schema returns the SQL that Migrate runs to bring an empty database to the
// current schema for the store's dialect and prefix, migrations table
// included, one statement per line group ending in ";". It is for people who
// manage the schema with their own tools.
func (s *Store) Schema() (string, error) { return s.migrations().Schema() }

// Migrate brings the schema up to date: it creates the migrations table if
// needed and applies, in order and in one transaction, every embedded
// migration not yet recorded there. Running it again is a no-op, and it is
// safe to run from several processes at once: on PostgreSQL the transaction
// first takes pg_advisory_xact_lock(hashtext('<prefix>schema_migrations')),
// on SQLite it is a BEGIN IMMEDIATE transaction, which holds the database's
// write lock (give the SQLite DSN a busy timeout, such as modernc.org/sqlite's
// _pragma=busy_timeout(5000), so that waiting processes wait rather than
// fail). A database migrated by a newer version of this package, with
// versions this one does not know, is left alone.
func (s *Store) Migrate(ctx context.Context) error { return s.migrations().Apply(ctx, s.db) }
