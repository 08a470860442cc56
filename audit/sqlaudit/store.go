package sqlaudit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/store/sqlstore"
)

// DefaultTablePrefix is the table prefix used when Options.TablePrefix is
// empty; it is the key store's too, so both share one migrations table.
const DefaultTablePrefix = "mcpauth_"

const (
	defaultRowsPostgres = 1000
	maxRowsPostgres     = 10_000
	maxRowsSQLite       = 32766 / nColumns
)

// Errors returned by this package.
var (
	// ErrInvalidOption: New was given options it cannot use.
	ErrInvalidOption = errors.New("mcpauth/sqlaudit: invalid option")
	// ErrInvalidCursor: a Filter.Cursor was not made by this store.
	ErrInvalidCursor = errors.New("mcpauth/sqlaudit: invalid cursor")
	// ErrInvalidFilter: a filter or usage request is malformed.
	ErrInvalidFilter = errors.New("mcpauth/sqlaudit: invalid filter")
	// ErrChainBroken: Verify found a link of the hash chain that does not
	// hold. The error is a *ChainError saying where.
	ErrChainBroken = errors.New("mcpauth/sqlaudit: audit chain broken")
	// ErrNotChained: Verify was called on a store without Options.Chain.
	ErrNotChained = errors.New("mcpauth/sqlaudit: store does not chain events")
)

// Options configure a Store. A nil *Options means all defaults.
type Options struct {
	// Dialect is the SQL flavour of db. Default sqlstore.DialectAuto: New
	// asks the database, which must then be reachable.
	Dialect sqlstore.Dialect
	// TablePrefix is put in front of every table and index name. It must
	// match [a-z_][a-z0-9_]* and be at most 40 bytes. Default "mcpauth_"
	// (tables mcpauth_audit_events, mcpauth_audit_head,
	// mcpauth_audit_anchors; migrations recorded in
	// mcpauth_schema_migrations under the component "audit").
	TablePrefix string
	// Chain makes the store tamper-evident: every event stores the SHA-256
	// of the previous event's hash and its own canonical form, so that
	// Verify finds edited, deleted or reordered rows. Turn it on before the
	// first event is written and keep it on: rows written without it fail
	// Verify. Default false.
	Chain bool
	// MaxRowsPerInsert is the number of rows per INSERT statement; a batch
	// prepares its statement once. On PostgreSQL the rows of a statement go
	// as one JSON document (its only parameter), ended early at 4 MiB:
	// default 1,000, at most 10,000. On SQLite: default 1, and then each
	// row's INSERT binds only the columns the row sets (it is in process,
	// so there is no round trip to save, and modernc.org/sqlite binds in
	// time growing faster than the number of parameters); above 1, every
	// row binds all 28 columns, at most 1,170 rows (32,766 parameters per
	// statement).
	MaxRowsPerInsert int
	// Now stamps events without a Time and Purge anchors. Default time.Now.
	Now func() time.Time
}

// Store is an audit sink on a SQL database (SQLite or PostgreSQL). It
// implements audit.Sink, audit.BatchSink and audit.Querier, and offers
// export, usage summaries, retention (Purge) and, with Options.Chain, a hash
// chain checked by Verify. It is safe for concurrent use, also from several
// processes sharing the database: a batch is one transaction that locks the
// single audit_head row, so sequence numbers (and the chain) follow commit
// order. It starts no goroutine; put an audit.Writer in front of it to take
// it off the request path.
type Store struct {
	db      *sql.DB
	dialect sqlstore.Dialect
	prefix  string
	chain   bool
	maxRows int
	now     func() time.Time

	insertSQL string // PostgreSQL's, see insertJSONStatement

	insertMu        sync.Mutex
	insertByRows    map[int]string    // SQLite's, by rows per statement
	insertByColumns map[uint32]string // SQLite's single-row ones, by the columns they name
}

var (
	_ audit.Sink      = (*Store)(nil)
	_ audit.BatchSink = (*Store)(nil)
	_ audit.Querier   = (*Store)(nil)
)

const detectTimeout = 30 * time.Second

// New returns a store on db. It changes nothing in the database: call
// Migrate first (at start-up or from a deploy step).
func New(db *sql.DB, opts *Options) (*Store, error) {
	if db == nil {
		return nil, fmt.Errorf("%w: nil *sql.DB", ErrInvalidOption)
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.TablePrefix == "" {
		o.TablePrefix = DefaultTablePrefix
	}
	if err := sqlstore.CheckTablePrefix(o.TablePrefix); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidOption, err)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	switch o.Dialect {
	case sqlstore.SQLite, sqlstore.Postgres:
	case sqlstore.DialectAuto:
		ctx, cancel := context.WithTimeout(context.Background(), detectTimeout)
		d, err := sqlstore.DetectDialect(ctx, db)
		cancel()
		if err != nil {
			return nil, err
		}
		o.Dialect = d
	default:
		return nil, fmt.Errorf("%w: unknown Dialect %d", ErrInvalidOption, int(o.Dialect))
	}
	maxRows, defaultRows := maxRowsPostgres, defaultRowsPostgres
	if o.Dialect == sqlstore.SQLite {
		maxRows, defaultRows = maxRowsSQLite, 1
	}
	if o.MaxRowsPerInsert < 0 || o.MaxRowsPerInsert > maxRows {
		return nil, fmt.Errorf("%w: MaxRowsPerInsert %d not in 1..%d", ErrInvalidOption, o.MaxRowsPerInsert, maxRows)
	}
	if o.MaxRowsPerInsert == 0 {
		o.MaxRowsPerInsert = defaultRows
	}
	s := &Store{
		db: db, dialect: o.Dialect, prefix: o.TablePrefix, chain: o.Chain,
		maxRows: o.MaxRowsPerInsert, now: o.Now, insertByRows: make(map[int]string), insertByColumns: make(map[uint32]string),
	}
	s.insertSQL = s.insertJSONStatement()
	return s, nil
}

// Dialect returns the dialect the store speaks (never DialectAuto).
func (s *Store) Dialect() sqlstore.Dialect { return s.dialect }

// EventsTable returns the name of the events table, such as "mcpauth_audit_events".
func (s *Store) EventsTable() string { return s.prefix + "audit_events" }

func (s *Store) headTable() string    { return s.prefix + "audit_head" }
func (s *Store) anchorsTable() string { return s.prefix + "audit_anchors" }

// Tables returns the names of every table the store's migrations create, the
// shared migrations table excluded.
func (s *Store) Tables() []string {
	return []string{s.EventsTable(), s.headTable(), s.anchorsTable()}
}

// rebind turns $1-style placeholders into SQLite's ?1 style.
func (s *Store) rebind(q string) string {
	if s.dialect == sqlstore.SQLite {
		return strings.ReplaceAll(q, "$", "?")
	}
	return q
}

// timeArg converts t for the event_time column: Unix microseconds on
// SQLite, a UTC time.Time (microsecond precision) on PostgreSQL.
func (s *Store) timeArg(t time.Time) any {
	t = t.UTC().Truncate(time.Microsecond)
	if s.dialect == sqlstore.SQLite {
		return t.UnixMicro()
	}
	return t
}

// fail wraps err with the operation that failed, making sure the result
// satisfies errors.Is(err, ctx.Err()) when the context is done.
func fail(ctx context.Context, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("mcpauth/sqlaudit: %s: %w: %w", op, cerr, err)
	}
	return fmt.Errorf("mcpauth/sqlaudit: %s: %w", op, err)
}

// timeCol scans an event_time column from either dialect.
type timeCol struct{ us int64 }

func (c *timeCol) Scan(src any) error {
	switch v := src.(type) {
	case int64:
		c.us = v
	case time.Time:
		c.us = v.UnixMicro()
	default:
		return fmt.Errorf("unsupported timestamp column type %T", src)
	}
	return nil
}

const postgres = sqlstore.Postgres

func unixMicroUTC(us int64) time.Time { return time.UnixMicro(us).UTC() }
