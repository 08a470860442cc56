package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL driver "pgx"
	_ "modernc.org/sqlite"             // SQLite driver "sqlite", pure Go

	"github.com/mcpauth/mcpauth/audit/sqlaudit"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/store/sqlstore"
)

// resources are what a command opened; close releases them.
type resources struct {
	db      *sql.DB
	dialect sqlstore.Dialect
	where   string // the database, for messages: a file path or "PostgreSQL" (a DSN may hold a password)
	keys    *sqlstore.Store
	audit   *sqlaudit.Store
	mgr     *keyadmin.Manager
	unpub   func() // closes the change publisher, if any
}

func (r *resources) close() {
	if r.mgr != nil {
		_ = r.mgr.Close(context.Background())
	}
	if r.unpub != nil {
		r.unpub()
	}
	if r.db != nil {
		_ = r.db.Close()
	}
}

func isPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// open opens the database and both stores. create allows a new SQLite file
// (migrate); other commands refuse a missing file rather than create an
// empty database.
func (a *app) open(create bool) (*resources, error) {
	if a.res != nil {
		return a.res, nil
	}
	spec := strings.TrimSpace(a.g.db)
	if spec == "" {
		return nil, usagef("--db must not be empty")
	}
	r := &resources{}
	var driver, dsn string
	if isPostgresURL(spec) {
		driver, dsn, r.where, r.dialect = "pgx", spec, "PostgreSQL database", sqlstore.Postgres
	} else {
		if strings.Contains(spec, "://") {
			return nil, usagef("--db: %q is neither a file path nor a postgres:// URL", redactURL(spec))
		}
		if !create {
			if _, err := os.Stat(spec); errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("database file %s does not exist: run \"mcpauth migrate\" first, or check --db", spec)
			}
		}
		driver, r.where, r.dialect = "sqlite", "SQLite database "+spec, sqlstore.SQLite
		dsn = "file:" + spec + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", r.where, err)
	}
	r.db = db
	a.res = r
	if err := db.PingContext(a.ctx); err != nil {
		return nil, fmt.Errorf("connect to %s: %w", r.where, err)
	}
	r.keys, err = sqlstore.New(db, &sqlstore.Options{Dialect: r.dialect, TablePrefix: a.g.tablePrefix, Now: a.deps.now})
	if errors.Is(err, sqlstore.ErrInvalidOption) {
		return nil, usagef("--table-prefix: %q must match [a-z_][a-z0-9_]* and be at most 40 bytes", a.g.tablePrefix)
	}
	if err != nil {
		return nil, err
	}
	// Key changes made with the CLI are audited in the servers' chain.
	r.audit, err = sqlaudit.New(db, &sqlaudit.Options{Dialect: r.dialect, TablePrefix: a.g.tablePrefix, Chain: true, Now: a.deps.now})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// redactURL drops the user info of a URL-looking string.
func redactURL(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		rest = "…@" + rest[at+1:]
	}
	return scheme + "://" + rest
}

// peppers reads the current pepper from the --pepper-env variable and the
// retired ones from MCPAUTH_PEPPERS_RETIRED. Errors never hold a secret.
func (a *app) peppers() ([]apikey.Pepper, error) {
	name := a.g.pepperEnv
	if name == "" {
		return nil, usagef("--pepper-env must not be empty")
	}
	var out []apikey.Pepper
	cur := a.env(name)
	if strings.TrimSpace(cur) != "" {
		p, err := apikey.ParsePepper(cur)
		if err != nil {
			return nil, usagef("$%s: %s", name, strings.TrimPrefix(err.Error(), "mcpauth: "))
		}
		out = append(out, p)
	}
	retired := a.env("MCPAUTH_PEPPERS_RETIRED")
	for i, s := range strings.Split(retired, ",") {
		if strings.TrimSpace(s) == "" {
			continue
		}
		p, err := apikey.ParsePepper(s)
		if err != nil {
			return nil, usagef("$MCPAUTH_PEPPERS_RETIRED entry %d: %s", i+1, strings.TrimPrefix(err.Error(), "mcpauth: "))
		}
		if len(out) == 0 {
			return nil, usagef("$MCPAUTH_PEPPERS_RETIRED is set but $%s is not: new keys need a current pepper", name)
		}
		out = append(out, p)
	}
	return out, nil
}

// manager opens the database and returns a key manager configured like the
// server's (prefix, peppers). lifetime is the default key lifetime: 0 for
// the library default, negative for keys that never expire. ceiling, if
// given, is the scope ceiling for the keys it issues or rotates; without it
// the library's default refuses admin and wildcard scopes.
func (a *app) manager(lifetime time.Duration, ceiling ...string) (*keyadmin.Manager, error) {
	peppers, err := a.peppers()
	if err != nil {
		return nil, err
	}
	r, err := a.open(false)
	if err != nil {
		return nil, err
	}
	// The CLI is the operator's tool: no per-user key count limit. Privileged
	// scopes still need an explicit --ceiling.
	o := &keyadmin.Options{
		Prefix:          a.g.prefix,
		Peppers:         peppers,
		Now:             a.deps.now,
		Rand:            a.deps.rand,
		Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
		MaxActiveKeys:   -1,
		DefaultLifetime: lifetime,
		Audit:           r.audit,
		Actor:           a.actor(),
		Instance:        strings.TrimSpace(a.env(envInstance)),
	}
	o.Changes, r.unpub = a.changePublisher()
	if len(ceiling) > 0 {
		o.ScopeCeiling = keyadmin.FixedScopeCeiling(ceiling...)
	}
	m, err := keyadmin.New(r.keys, o)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "mcpauth: ")
		if strings.Contains(msg, "Prefix") {
			return nil, usagef("--prefix: %s", msg)
		}
		return nil, usagef("peppers: %s", msg)
	}
	r.mgr = m
	return m, nil
}
