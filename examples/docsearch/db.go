package main

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"strings"

	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL driver "pgx"
	_ "modernc.org/sqlite"             // SQLite driver "sqlite", pure Go, FTS5 built in

	"github.com/mcpauth/mcpauth/audit/sqlaudit"
	"github.com/mcpauth/mcpauth/store/sqlstore"
)

//go:embed migrations
var migrationFiles embed.FS

// database is the one database the app keeps everything in: its users,
// documents and sessions, mcpauth's keys, and the hash-chained audit log.
type database struct {
	db      *sql.DB
	dialect sqlstore.Dialect
	keys    *sqlstore.Store
	audit   *sqlaudit.Store
}

// openDatabase opens spec, a SQLite file path or a postgres:// URL, and
// migrates every table: the app's (component "docsearch"), the key store's and
// the audit log's, all recorded in one mcpauth_schema_migrations table.
func openDatabase(ctx context.Context, spec string) (*database, error) {
	driver, dialect := "sqlite", sqlstore.SQLite
	dsn := "file:" + spec + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)"
	if strings.HasPrefix(spec, "postgres://") || strings.HasPrefix(spec, "postgresql://") {
		driver, dialect, dsn = "pgx", sqlstore.Postgres, spec
	} else if spec == "" || strings.ContainsAny(spec, "?#") {
		return nil, fmt.Errorf("-db: SQLite path %q: give a file name without '?' or '#', or a postgres:// URL", spec)
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", driver, err)
	}
	d, err := migrate(ctx, db, dialect)
	if err != nil {
		db.Close()
		return nil, err
	}
	return d, nil
}

func migrate(ctx context.Context, db *sql.DB, dialect sqlstore.Dialect) (*database, error) {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	app := &sqlstore.Migrations{FS: sub, Component: "docsearch", Dialect: dialect, TablePrefix: sqlstore.DefaultTablePrefix, ErrPrefix: "docsearch"}
	if err := app.Apply(ctx, db); err != nil {
		return nil, fmt.Errorf("%s: migrate the app's tables: %w", dialect, err)
	}
	keys, err := sqlstore.New(db, &sqlstore.Options{Dialect: dialect})
	if err == nil {
		err = keys.Migrate(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("%s key store: %w", dialect, err)
	}
	events, err := sqlaudit.New(db, &sqlaudit.Options{Dialect: dialect, Chain: true})
	if err == nil {
		err = events.Migrate(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("%s audit store: %w", dialect, err)
	}
	return &database{db: db, dialect: dialect, keys: keys, audit: events}, nil
}

// q rewrites a statement written with PostgreSQL's $n placeholders for the
// database's dialect: SQLite takes ?n.
func (d *database) q(stmt string) string {
	if d.dialect == sqlstore.Postgres {
		return stmt
	}
	return strings.ReplaceAll(stmt, "$", "?")
}

func (d *database) close() error { return d.db.Close() }
