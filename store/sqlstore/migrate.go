package sqlstore

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
)

//go:embed migrations
var migrationFS embed.FS

// migrationComponent names this package's rows in the shared
// <prefix>schema_migrations table; other mcpauth packages using the same
// prefix record theirs under their own component.
const migrationComponent = "keys"

// migration is one embedded schema change.
type migration struct {
	version int
	name    string
	stmts   []string
}

// loadMigrations reads the embedded migrations of a dialect, in version
// order, with {{prefix}} replaced. Files are named NNNN_name.sql; statements
// end with ";" at the end of a line and "--" comment lines are dropped.
func loadMigrations(d Dialect, prefix string) ([]migration, error) {
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

// Schema returns the SQL that Migrate runs to bring an empty database to the
// current schema for the store's dialect and prefix, migrations table
// included, one statement per line group ending in ";". It is for people who
// manage the schema with their own tools.
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

func (s *Store) createMigrationsTableSQL() string {
	ts := "TIMESTAMPTZ"
	if s.dialect == SQLite {
		ts = "INTEGER"
	}
	return "CREATE TABLE IF NOT EXISTS " + s.MigrationsTable() + " (\n" +
		"    component  TEXT    NOT NULL,\n" +
		"    version    INTEGER NOT NULL,\n" +
		"    name       TEXT    NOT NULL,\n" +
		"    applied_at " + ts + " NOT NULL,\n" +
		"    PRIMARY KEY (component, version)\n)"
}

// execQuerier is what Migrate needs from a *sql.Tx or a *sql.Conn.
type execQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

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
func (s *Store) Migrate(ctx context.Context) error {
	ms, err := loadMigrations(s.dialect, s.prefix)
	if err != nil {
		return fmt.Errorf("mcpauth/sqlstore: migrate: %w", err)
	}
	if s.dialect == Postgres {
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
		// Roll back even if ctx is done; a connection that cannot be rolled
		// back is discarded rather than returned to the pool mid-transaction.
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

// applyMigrations runs inside the locked transaction.
func (s *Store) applyMigrations(ctx context.Context, db execQuerier, ms []migration) error {
	if _, err := db.ExecContext(ctx, s.createMigrationsTableSQL()); err != nil {
		return fail(ctx, "migrate: create migrations table", err)
	}
	applied, err := s.appliedVersions(ctx, db)
	if err != nil {
		return fail(ctx, "migrate: read applied versions", err)
	}
	record := rebind(s.dialect, "INSERT INTO "+s.MigrationsTable()+" (component, version, name, applied_at) VALUES ($1, $2, $3, $4)")
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
	rows, err := db.QueryContext(ctx, rebind(s.dialect, "SELECT version FROM "+s.MigrationsTable()+" WHERE component = $1"), migrationComponent)
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
