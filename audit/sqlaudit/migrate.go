package sqlaudit

import (
	"context"
	"embed"
	"io/fs"

	"github.com/mcpauth/mcpauth/store/sqlstore"
)

//go:embed migrations
var migrationFS embed.FS

// migrationComponent names this package's rows in the <prefix>schema_migrations
// table it shares with the key store (store/sqlstore, component "keys").
const migrationComponent = "audit"

func (s *Store) migrations() *sqlstore.Migrations {
	sub, _ := fs.Sub(migrationFS, "migrations") // a constant path: cannot fail
	return &sqlstore.Migrations{FS: sub, Component: migrationComponent, Dialect: s.dialect,
		TablePrefix: s.prefix, Now: s.now, ErrPrefix: "mcpauth/sqlaudit"}
}

// MigrationsTable returns the name of the table recording applied
// migrations, such as "mcpauth_schema_migrations" (shared with the key
// store; this package's rows have component "audit").
func (s *Store) MigrationsTable() string { return s.migrations().Table() }

// Schema returns the SQL Migrate runs on an empty database, for people who
// manage their schema with their own tools.
func (s *Store) Schema() (string, error) { return s.migrations().Schema() }

// Migrate brings the audit schema up to date: it creates the migrations
// table if needed and applies, in one transaction, every embedded migration
// not yet recorded there. Running it again is a no-op, and several processes
// may run it at once: on PostgreSQL the transaction first takes
// pg_advisory_xact_lock(hashtext('<prefix>schema_migrations')) (the key
// store's lock too), on SQLite it is a BEGIN IMMEDIATE transaction, which
// holds the write lock (give the DSN a busy timeout). Versions this package
// does not know (a newer release migrated the database) are left alone.
func (s *Store) Migrate(ctx context.Context) error { return s.migrations().Apply(ctx, s.db) }
