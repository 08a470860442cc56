package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL driver "pgx"
	_ "modernc.org/sqlite"             // SQLite driver "sqlite", pure Go

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/audit/sqlaudit"
	"github.com/mcpauth/mcpauth/store"
	"github.com/mcpauth/mcpauth/store/sqlstore"
)

// backend is where the quickstart keeps keys and audit events.
type backend struct {
	keys  store.KeyStore
	audit audit.Sink // the SQL audit store, or a JSON-lines log on stderr for "memory"
	close func()
}

// openStore opens the key store named by spec: "memory", a postgres:// or
// postgresql:// URL, or a SQLite file path. SQL stores are migrated.
func openStore(ctx context.Context, spec string) (store.KeyStore, func(), error) {
	b, err := openBackend(ctx, spec)
	if err != nil {
		return nil, nil, err
	}
	return b.keys, b.close, nil
}

// openBackend opens keys and audit on the same database.
func openBackend(ctx context.Context, spec string) (*backend, error) {
	if spec == "memory" {
		return &backend{keys: store.NewMemory(), audit: audit.NewJSONSink(os.Stderr), close: func() {}}, nil
	}
	driver, dialect := "sqlite", sqlstore.SQLite
	dsn := "file:" + spec + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)"
	if strings.HasPrefix(spec, "postgres://") || strings.HasPrefix(spec, "postgresql://") {
		driver, dialect, dsn = "pgx", sqlstore.Postgres, spec
	} else if strings.ContainsAny(spec, "?#") {
		return nil, fmt.Errorf("SQLite path %q: '?' and '#' are not allowed in the file name", spec)
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", driver, err)
	}
	// The pool settings of docs/sqlstore.md: keep the connections a burst
	// opened instead of reconnecting (database/sql keeps 2 idle by default).
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(20)
	db.SetConnMaxIdleTime(5 * time.Minute)
	db.SetConnMaxLifetime(30 * time.Minute)
	keys, err := sqlstore.New(db, &sqlstore.Options{Dialect: dialect})
	if err == nil {
		err = keys.Migrate(ctx)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("%s key store: %w", driver, err)
	}
	events, err := sqlaudit.New(db, &sqlaudit.Options{Dialect: dialect, Chain: true})
	if err == nil {
		err = events.Migrate(ctx)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("%s audit store: %w", driver, err)
	}
	return &backend{keys: keys, audit: events, close: func() { db.Close() }}, nil
}
