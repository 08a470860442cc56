package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// Dialect is the SQL flavour a store speaks. The store imports no driver:
// the caller opens the *sql.DB with the driver of its choice and either names
// the dialect or lets DetectDialect ask the server.
type Dialect int

const (
	// DialectAuto asks the database which one it is (see DetectDialect).
	DialectAuto Dialect = iota
	// SQLite is SQLite 3.35 or later (modernc.org/sqlite, mattn/go-sqlite3).
	SQLite
	// Postgres is PostgreSQL 12 or later (pgx's stdlib driver, lib/pq).
	Postgres
)

// String returns "sqlite", "postgres" or "auto".
func (d Dialect) String() string {
	switch d {
	case SQLite:
		return "sqlite"
	case Postgres:
		return "postgres"
	default:
		return "auto"
	}
}

// ErrUnknownDialect is returned by DetectDialect for a database that is
// neither SQLite nor PostgreSQL.
var ErrUnknownDialect = errors.New("mcpauth/sqlstore: cannot tell the SQL dialect: neither SQLite nor PostgreSQL")

// DetectDialect asks the database which dialect it speaks: SQLite answers
// sqlite_version(), PostgreSQL answers version(). It makes at most two small
// queries and returns the connection error, if any, wrapped.
func DetectDialect(ctx context.Context, db *sql.DB) (Dialect, error) {
	var v string
	err := db.QueryRowContext(ctx, "SELECT sqlite_version()").Scan(&v)
	if err == nil {
		return SQLite, nil
	}
	if ctx.Err() != nil {
		return DialectAuto, fmt.Errorf("mcpauth/sqlstore: detect dialect: %w", ctx.Err())
	}
	err = db.QueryRowContext(ctx, "SELECT version()").Scan(&v)
	if err != nil {
		return DialectAuto, fmt.Errorf("mcpauth/sqlstore: detect dialect: %w", err)
	}
	if strings.Contains(v, "PostgreSQL") {
		return Postgres, nil
	}
	return DialectAuto, ErrUnknownDialect
}
