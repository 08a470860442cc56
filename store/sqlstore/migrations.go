package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Migrations applies one component's embedded, versioned schema changes,
// the way the key store applies its own; audit/sqlaudit uses it for the
// audit tables, so that every mcpauth table is migrated alike and recorded
// in one <prefix>schema_migrations table, each component under its name.
//
// FS holds one directory per dialect ("postgres", "sqlite") of files named
// NNNN_name.sql; "{{prefix}}" in them is replaced by TablePrefix;
// statements end with ";" at the end of a line; "--" lines are comments.
type Migrations struct {
	FS          fs.FS
	Component   string
	Dialect     Dialect // SQLite or Postgres
	TablePrefix string
	// Now stamps applied_at. Default time.Now.
	Now func() time.Time
	// ErrPrefix starts every error, such as "mcpauth/sqlaudit". Default
	// "mcpauth/sqlstore".
	ErrPrefix string
}

// Table is the migrations table: <prefix>schema_migrations.
func (m *Migrations) Table() string { return m.TablePrefix + "schema_migrations" }

// migration is one embedded schema change.
type migration struct {
	version int
	name    string
	stmts   []string
}

// load reads the migrations of the dialect, in version order.
func (m *Migrations) load() ([]migration, error) {
	dir := m.Dialect.String()
	entries, err := fs.ReadDir(m.FS, dir)
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
		b, err := fs.ReadFile(m.FS, dir+"/"+e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: name, stmts: splitStatements(strings.ReplaceAll(string(b), "{{prefix}}", m.TablePrefix))})
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

// Schema returns the SQL Apply runs on an empty database, migrations table
// included, one statement per line group ending in ";", for people who
// manage the schema with their own tools.
func (m *Migrations) Schema() (string, error) {
	ms, err := m.load()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString(m.createTableSQL() + ";\n")
	for _, mg := range ms {
		for _, st := range mg.stmts {
			b.WriteString(st + ";\n")
		}
	}
	return b.String(), nil
}

func (m *Migrations) createTableSQL() string {
	ts := "TIMESTAMPTZ"
	if m.Dialect == SQLite {
		ts = "INTEGER"
	}
	return "CREATE TABLE IF NOT EXISTS " + m.Table() + " (\n" +
		"    component  TEXT    NOT NULL,\n" +
		"    version    INTEGER NOT NULL,\n" +
		"    name       TEXT    NOT NULL,\n" +
		"    applied_at " + ts + " NOT NULL,\n" +
		"    PRIMARY KEY (component, version)\n)"
}

// execQuerier is what Apply needs from a *sql.Tx or a *sql.Conn.
type execQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Apply brings the component's schema up to date: it creates the
// migrations table if needed and applies, in order and in one transaction,
// every migration not yet recorded there. Running it again is a no-op, and
// it is safe from several processes at once: on PostgreSQL the transaction
// first takes pg_advisory_xact_lock(hashtext('<prefix>schema_migrations'))
// (one lock for every component), on SQLite it is a BEGIN IMMEDIATE
// transaction, which holds the write lock (give the DSN a busy timeout so
// waiting processes wait rather than fail). Versions it does not know (a
// newer release migrated the database) are left alone.
func (m *Migrations) Apply(ctx context.Context, db *sql.DB) error {
	ms, err := m.load()
	if err != nil {
		return fmt.Errorf("%s: migrate: %w", m.errPrefix(), err)
	}
	if m.Dialect == Postgres {
		return m.applyPostgres(ctx, db, ms)
	}
	return m.applySQLite(ctx, db, ms)
}

func (m *Migrations) errPrefix() string {
	if m.ErrPrefix == "" {
		return "mcpauth/sqlstore"
	}
	return m.ErrPrefix
}

// fail is this package's fail with the caller's error prefix.
func (m *Migrations) fail(ctx context.Context, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%s: %s: %w: %w", m.errPrefix(), op, cerr, err)
	}
	return fmt.Errorf("%s: %s: %w", m.errPrefix(), op, err)
}

func (m *Migrations) applyPostgres(ctx context.Context, db *sql.DB, ms []migration) (err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return m.fail(ctx, "migrate: begin", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", m.Table()); err != nil {
		return m.fail(ctx, "migrate: lock", err)
	}
	if err := m.applyAll(ctx, tx, ms); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return m.fail(ctx, "migrate: commit", err)
	}
	return nil
}

func (m *Migrations) applySQLite(ctx context.Context, db *sql.DB, ms []migration) (err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return m.fail(ctx, "migrate: connect", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return m.fail(ctx, "migrate: begin", err)
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
	if err := m.applyAll(ctx, conn, ms); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return m.fail(ctx, "migrate: commit", err)
	}
	return nil
}

// applyAll runs inside the locked transaction.
func (m *Migrations) applyAll(ctx context.Context, db execQuerier, ms []migration) error {
	if _, err := db.ExecContext(ctx, m.createTableSQL()); err != nil {
		return m.fail(ctx, "migrate: create migrations table", err)
	}
	applied, err := m.appliedVersions(ctx, db)
	if err != nil {
		return m.fail(ctx, "migrate: read applied versions", err)
	}
	record := rebind(m.Dialect, "INSERT INTO "+m.Table()+" (component, version, name, applied_at) VALUES ($1, $2, $3, $4)")
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}
	for _, mg := range ms {
		if applied[mg.version] {
			continue
		}
		for _, st := range mg.stmts {
			if _, err := db.ExecContext(ctx, st); err != nil {
				return m.fail(ctx, fmt.Sprintf("migrate: apply %04d_%s", mg.version, mg.name), err)
			}
		}
		if _, err := db.ExecContext(ctx, record, m.Component, mg.version, mg.name, timeArg(m.Dialect, now())); err != nil {
			return m.fail(ctx, fmt.Sprintf("migrate: record %04d_%s", mg.version, mg.name), err)
		}
	}
	return nil
}

func (m *Migrations) appliedVersions(ctx context.Context, db execQuerier) (map[int]bool, error) {
	rows, err := db.QueryContext(ctx, rebind(m.Dialect, "SELECT version FROM "+m.Table()+" WHERE component = $1"), m.Component)
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
