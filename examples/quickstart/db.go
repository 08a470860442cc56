package main

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL driver "pgx"
	_ "modernc.org/sqlite"             // SQLite driver "sqlite", pure Go

	"github.com/mcpauth/mcpauth/store"
	"github.com/mcpauth/mcpauth/store/sqlstore"
)

// openStore opens the key store named by spec: "memory", a postgres:// or
// postgresql:// URL, or a SQLite file path. SQL stores are migrated.
func openStore(ctx context.Context, spec string) (store.KeyStore, func(), error) {
	if spec == "memory" {
		return store.NewMemory(), func() {}, nil
	}
	driver, dialect := "sqlite", sqlstore.SQLite
	dsn := "file:" + spec + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)"
	if strings.HasPrefix(spec, "postgres://") || strings.HasPrefix(spec, "postgresql://") {
		driver, dialect, dsn = "pgx", sqlstore.Postgres, spec
	} else if strings.ContainsAny(spec, "?#") {
		return nil, nil, fmt.Errorf("SQLite path %q: '?' and '#' are not allowed in the file name", spec)
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s database: %w", driver, err)
	}
	s, err := sqlstore.New(db, &sqlstore.Options{Dialect: dialect})
	if err == nil {
		err = s.Migrate(ctx)
	}
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("%s key store: %w", driver, err)
	}
	return s, func() { db.Close() }, nil
}
