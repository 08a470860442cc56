package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/mcpauth/mcpauth/store"
)

// DefaultTablePrefix is the table prefix used when Options.TablePrefix is empty.
const DefaultTablePrefix = "mcpauth_"

// maxPrefixLen keeps "<prefix>schema_migrations" and the index names under
// PostgreSQL's 63-byte identifier limit.
const maxPrefixLen = 40

var (
	// ErrInvalidOption is returned by New for options it cannot use.
	ErrInvalidOption = errors.New("mcpauth/sqlstore: invalid option")
	// ErrInvalidKey is returned by CreateKey for a record it cannot store.
	ErrInvalidKey = errors.New("mcpauth/sqlstore: invalid key record")
)

var prefixRE = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// CheckTablePrefix reports whether prefix can begin the names of mcpauth's
// tables and indexes: it must match [a-z_][a-z0-9_]* and be at most 40
// bytes. The key store and the audit store (audit/sqlaudit) check their
// TablePrefix with it, as they share the migrations table.
func CheckTablePrefix(prefix string) error {
	if len(prefix) > maxPrefixLen || !prefixRE.MatchString(prefix) {
		return fmt.Errorf("TablePrefix %q must match [a-z_][a-z0-9_]* and be at most %d bytes", prefix, maxPrefixLen)
	}
	return nil
}

// Options configures a Store. A nil *Options means all defaults.
type Options struct {
	// Dialect is the SQL flavour of db. Default DialectAuto: New asks the
	// database with DetectDialect, which needs the database to be reachable.
	// Name it to skip that round trip.
	Dialect Dialect
	// TablePrefix is put in front of every table and index name. It must
	// match [a-z_][a-z0-9_]* and be at most 40 bytes long, since it is
	// written into SQL unquoted. Default "mcpauth_" (tables mcpauth_keys and
	// mcpauth_schema_migrations).
	TablePrefix string
	// Now tells the time. It is used for CreatedAt when CreateKey is given a
	// record without one, and for the applied_at column of migrations.
	// Default time.Now.
	Now func() time.Time
}

// Store is a store.KeyStore on a SQL database (SQLite or PostgreSQL). It also
// implements store.KeyLister, store.KeyUpdater, store.Toucher,
// store.RevocationLister, store.ChangeLister, store.ExpiringLister and
// store.AddressRecorder. It is safe
// for concurrent use; it holds no connection of its own and starts no
// goroutine, so it needs no Close: close the *sql.DB when done.
type Store struct {
	db      *sql.DB
	dialect Dialect
	prefix  string
	now     func() time.Time
	q       queries

	touchMu  sync.Mutex
	touchSQL map[int]string // PostgreSQL TouchKeys statements by row count
}

var (
	_ store.KeyStore   = (*Store)(nil)
	_ store.KeyLister  = (*Store)(nil)
	_ store.KeyUpdater = (*Store)(nil)
	_ store.Toucher    = (*Store)(nil)

	_ store.RevocationLister = (*Store)(nil)
	_ store.ChangeLister     = (*Store)(nil)
	_ store.ExpiringLister   = (*Store)(nil)
	_ store.AddressRecorder  = (*Store)(nil)
)

// detectTimeout bounds the DetectDialect round trip New makes.
const detectTimeout = 30 * time.Second

// New returns a store on db. It does not create or change any table: call
// Migrate once (at start-up, or from a deploy step) before using it, or
// create the schema documented in the package doc with your own tools.
// With Options.Dialect left to DialectAuto, New queries the database once.
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
	if err := CheckTablePrefix(o.TablePrefix); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidOption, err)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	switch o.Dialect {
	case SQLite, Postgres:
	case DialectAuto:
		ctx, cancel := context.WithTimeout(context.Background(), detectTimeout)
		d, err := DetectDialect(ctx, db)
		cancel()
		if err != nil {
			return nil, err
		}
		o.Dialect = d
	default:
		return nil, fmt.Errorf("%w: unknown Dialect %d", ErrInvalidOption, int(o.Dialect))
	}
	return &Store{
		db:       db,
		dialect:  o.Dialect,
		prefix:   o.TablePrefix,
		now:      o.Now,
		q:        buildQueries(o.Dialect, o.TablePrefix),
		touchSQL: make(map[int]string),
	}, nil
}

// Dialect returns the dialect the store speaks (never DialectAuto).
func (s *Store) Dialect() Dialect { return s.dialect }

// KeysTable returns the name of the key table, such as "mcpauth_keys".
func (s *Store) KeysTable() string { return s.prefix + "keys" }

// AddressesTable returns the name of the table of addresses seen per key
// (store.AddressRecorder), such as "mcpauth_key_addresses".
func (s *Store) AddressesTable() string { return s.prefix + "key_addresses" }

// MigrationsTable returns the name of the table that records applied
// migrations, such as "mcpauth_schema_migrations".
func (s *Store) MigrationsTable() string { return s.prefix + "schema_migrations" }

// keyColumns lists the key table's columns in the order scanKey reads them.
const keyColumns = "id, user_id, name, hash, pepper_version, scopes, created_at, expires_at, revoked_at, last_used_at, rate_limit, allowed_cidrs, metadata"

// queries holds the statements of one store, written for its dialect.
type queries struct {
	lookup, insert, revoke, setExpiry, list, touchOne, revokedSince, expiring string
	changedSince, recordAddress                                               string
}

func buildQueries(d Dialect, prefix string) queries {
	t := prefix + "keys"
	a := prefix + "key_addresses"
	return queries{
		lookup:       rebind(d, "SELECT "+keyColumns+" FROM "+t+" WHERE id = $1"),
		insert:       rebind(d, "INSERT INTO "+t+" ("+keyColumns+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (id) DO NOTHING"),
		revoke:       rebind(d, "UPDATE "+t+" SET revoked_at = COALESCE(revoked_at, $2), changed_at = $3 WHERE id = $1"),
		setExpiry:    rebind(d, "UPDATE "+t+" SET expires_at = $2, changed_at = $3 WHERE id = $1"),
		list:         rebind(d, "SELECT "+keyColumns+" FROM "+t+" WHERE user_id = $1 ORDER BY created_at, id"),
		touchOne:     rebind(d, "UPDATE "+t+" SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)"),
		revokedSince: rebind(d, "SELECT id FROM "+t+" WHERE revoked_at IS NOT NULL AND revoked_at >= $1 ORDER BY revoked_at DESC LIMIT $2"),
		// revoked_at too: rows revoked before changed_at existed, or by an
		// instance still running an older release.
		changedSince: rebind(d, "SELECT id FROM "+t+" WHERE (changed_at IS NOT NULL AND changed_at >= $1) OR (revoked_at IS NOT NULL AND revoked_at >= $1) ORDER BY COALESCE(changed_at, revoked_at) DESC LIMIT $2"),
		expiring:     rebind(d, "SELECT "+keyColumns+" FROM "+t+" WHERE expires_at IS NOT NULL AND expires_at >= $1 AND expires_at < $2 AND revoked_at IS NULL ORDER BY expires_at, id LIMIT $3"),
		// The bound and the insert in one statement; the primary key
		// (key_id, address) serves the count.
		recordAddress: rebind(d, "INSERT INTO "+a+" (key_id, address, first_seen) SELECT $1, $2, $3 WHERE (SELECT count(*) FROM "+a+" WHERE key_id = $1) < $4 ON CONFLICT (key_id, address) DO NOTHING"),
	}
}

// rebind turns PostgreSQL's $n placeholders into SQLite's ?n. The statements
// of this package hold no literal '$'.
func rebind(d Dialect, query string) string {
	if d == SQLite {
		return strings.ReplaceAll(query, "$", "?")
	}
	return query
}

// fail wraps err with the operation that failed. When the context is done it
// makes sure the result satisfies errors.Is(err, ctx.Err()), whatever the
// driver reported. Errors never carry key hashes or secrets: only the driver's
// message and, at most, a public key ID.
func fail(ctx context.Context, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("mcpauth/sqlstore: %s: %w: %w", op, cerr, err)
	}
	return fmt.Errorf("mcpauth/sqlstore: %s: %w", op, err)
}
