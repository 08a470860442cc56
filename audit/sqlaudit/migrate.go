package sqlaudit

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/mcpauth/mcpauth/store/sqlstore"
)

//go:embed migrations
var migrationFS embed.FS

// migrationComponent names this package's rows in the <prefix>schema_migrations
// table it shares with the key store (store/sqlstore, component "keys").
const migrationComponent = "audit"

type migration struct {
	version int
	name    string
	stmts   []string
}

// loadMigrations reads the embedded migrations of a dialect in version
// order, with {{prefix}} replaced. Files are named NNNN_name.sql; statements
// end with ";" at the end of a line; "--" comment lines are dropped.
func loadMigrations(d sqlstore.Dialect, prefix string) ([]migration, error) {
	dir := path.Join("migrations", d.String())
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("bad migration file name %q", e.Name())
		}
		b, err := fs.ReadFile(migrationFS, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: name, stmts: splitStatements(strings.ReplaceAll(string(b), "{{prefix}}", prefix))})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	return out, nil
}

func splitStatements(src string) []string {
	var (
		out []string
		cur strings.Builder
	)
	for line := range strings.Lines(src) {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		if strings.HasSuffix(trimmed, ";") {
			out = append(out, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if rest := strings.TrimSpace(cur.String()); rest != "" {
		out = append(out, rest)
	}
	return out
}

// MigrationsTable returns the name of the table recording applied
// migrations, such as "mcpauth_schema_migrations" (shared with the key
// store; this package's rows have component "audit").
func (s *Store) MigrationsTable() string { return s.prefix + "schema_migrations" }

func (s *Store) createMigrationsTableSQL() string {
	ts := "TIMESTAMPTZ"
	if s.dialect == sqlstore.SQLite {
		ts = "INTEGER"
	}
	return "CREATE TABLE IF NOT EXISTS " + s.MigrationsTable() + " (\n" +
		"    component  TEXT    NOT NULL,\n" +
		"    version    INTEGER NOT NULL,\n" +
		"    name       TEXT    NOT NULL,\n" +
		"    applied_at " + ts + " NOT NULL,\n" +
		"    PRIMARY KEY (component, version)\n)"
}

// Schema returns the SQL Migrate runs on an empty database, for people who
// manage their schema with their own tools.
func (s *Store) Schema() (string, error) {
	ms, err := loadMigrations(s.dialect, s.prefix)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString(s.createMigrationsTableSQL() + ";\n")
	for _, m := range ms {
		for _, st := range m.stmts {
			b.WriteString(st + ";\n")
		}
	}
	return b.String(), nil
}

type execQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Migrate brings the audit schema up to date: it creates the migrations
// table if needed and applies, in one transaction, every embedded migration
// not yet recorded there. Running it again is a no-op, and several processes
// may run it at once: on PostgreSQL the transaction first takes
// pg_advisory_xact_lock(hashtext('<prefix>schema_migrations')) (the key
// store's lock too), on SQLite it is a BEGIN IMMEDIATE transaction, which
// holds the write lock (give the DSN a busy timeout). Versions this package
// does not know (a newer release migrated the database) are left alone.
func (s *Store) Migrate(ctx context.Context) error {
	ms, err := loadMigrations(s.dialect, s.prefix)
	if err != nil {
		return fmt.Errorf("mcpauth/sqlaudit: migrate: %w", err)
	}
	if s.dialect == sqlstore.Postgres {
		return s.migratePostgres(ctx, ms)
	}
	return s.migrateSQLite(ctx, ms)
}

func (s *Store) migratePostgres(ctx context.Context, ms []migration) (err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fail(ctx, "migrate: begin", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", s.MigrationsTable()); err != nil {
		return fail(ctx, "migrate: lock", err)
	}
	if err := s.applyMigrations(ctx, tx, ms); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fail(ctx, "migrate: commit", err)
	}
	return nil
}

func (s *Store) migrateSQLite(ctx context.Context, ms []migration) (err error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fail(ctx, "migrate: connect", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fail(ctx, "migrate: begin", err)
	}
	defer func() {
		if err == nil {
			return
		}
		if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	if err := s.applyMigrations(ctx, conn, ms); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fail(ctx, "migrate: commit", err)
	}
	return nil
}

func (s *Store) applyMigrations(ctx context.Context, db execQuerier, ms []migration) error {
	if _, err := db.ExecContext(ctx, s.createMigrationsTableSQL()); err != nil {
		return fail(ctx, "migrate: create migrations table", err)
	}
	applied, err := s.appliedVersions(ctx, db)
	if err != nil {
		return fail(ctx, "migrate: read applied versions", err)
	}
	record := s.rebind("INSERT INTO " + s.MigrationsTable() + " (component, version, name, applied_at) VALUES ($1, $2, $3, $4)")
	for _, m := range ms {
		if applied[m.version] {
			continue
		}
		for _, st := range m.stmts {
			if _, err := db.ExecContext(ctx, st); err != nil {
				return fail(ctx, fmt.Sprintf("migrate: apply %04d_%s", m.version, m.name), err)
			}
		}
		if _, err := db.ExecContext(ctx, record, migrationComponent, m.version, m.name, s.timeArg(s.now())); err != nil {
			return fail(ctx, fmt.Sprintf("migrate: record %04d_%s", m.version, m.name), err)
		}
	}
	return nil
}

func (s *Store) appliedVersions(ctx context.Context, db execQuerier) (map[int]bool, error) {
	rows, err := db.QueryContext(ctx, s.rebind("SELECT version FROM "+s.MigrationsTable()+" WHERE component = $1"), migrationComponent)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	applied := make(map[int]bool)
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		applied[v] = true
	}
	return applied, rows.Err()
}
