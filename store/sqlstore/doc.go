// Package sqlstore keeps mcpauth API key records in a SQL database through
// database/sql: SQLite (the embedded default) or PostgreSQL. It imports no
// driver; the program opens the *sql.DB with the driver of its choice, for
// example modernc.org/sqlite (driver "sqlite", no cgo) or
// github.com/jackc/pgx/v5/stdlib (driver "pgx").
//
//	db, err := sql.Open("sqlite", "file:mcpauth.db?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
//	...
//	keys, err := sqlstore.New(db, nil) // dialect detected, tables prefixed "mcpauth_"
//	...
//	if err := keys.Migrate(ctx); err != nil { ... }
//
// A [Store] implements store.KeyStore, store.KeyLister, store.KeyUpdater,
// store.Toucher, store.RevocationLister, store.ExpiringLister and
// store.AddressRecorder, and passes the store/storetest conformance suite on both
// databases. It is safe for concurrent use, holds no state but the *sql.DB,
// and starts no goroutine.
//
// # Dialects
//
// [Options].Dialect names the database; left at [DialectAuto], New calls
// [DetectDialect], which asks the server (sqlite_version(), then version()).
// Statements are written once with $n placeholders, sent as-is to PostgreSQL
// and as ?n to SQLite. Supported: SQLite 3.35 or later, PostgreSQL 12 or later.
//
// # Migrations
//
// The store never changes a schema behind your back: [Store.Migrate] is an
// explicit call, typically made at start-up or from a deploy step. The SQL is
// embedded in the binary, one numbered file per change and per dialect, with
// the table prefix substituted. Migrate is idempotent and versioned: it
// records each applied migration in <prefix>schema_migrations under the
// component "keys" (other mcpauth packages sharing the prefix use their own
// component names in the same table), and applies every missing one, in
// order, in one transaction. It is safe to run from several processes at
// once: on PostgreSQL the transaction first takes
// pg_advisory_xact_lock(hashtext('<prefix>schema_migrations')); on SQLite it
// is a BEGIN IMMEDIATE transaction, so give the DSN a busy timeout (as
// above) for the waiting processes to wait rather than fail.
//
// [Options].TablePrefix (default "mcpauth_") must match [a-z_][a-z0-9_]*, as
// it is written into SQL unquoted.
//
// # Schema
//
// For people who run their own migration tool, here is what Migrate creates
// with the default prefix ([Store.Schema] returns it for any prefix). Record
// the migration too, so that a later Migrate does not try to repeat it.
//
// PostgreSQL:
//
//	CREATE TABLE IF NOT EXISTS mcpauth_schema_migrations (
//	    component  TEXT    NOT NULL,
//	    version    INTEGER NOT NULL,
//	    name       TEXT    NOT NULL,
//	    applied_at TIMESTAMPTZ NOT NULL,
//	    PRIMARY KEY (component, version)
//	);
//	CREATE TABLE mcpauth_keys (
//	    id             TEXT        NOT NULL PRIMARY KEY,
//	    user_id        TEXT        NOT NULL,
//	    name           TEXT        NOT NULL DEFAULT '',
//	    hash           BYTEA       NOT NULL,
//	    pepper_version INTEGER     NOT NULL DEFAULT 0,
//	    scopes         TEXT        NOT NULL DEFAULT '[]',
//	    created_at     TIMESTAMPTZ NOT NULL,
//	    expires_at     TIMESTAMPTZ,
//	    revoked_at     TIMESTAMPTZ,
//	    last_used_at   TIMESTAMPTZ,
//	    rate_limit     BIGINT      NOT NULL DEFAULT 0,
//	    allowed_cidrs  TEXT        NOT NULL DEFAULT '[]',
//	    metadata       TEXT        NOT NULL DEFAULT '{}'
//	) WITH (fillfactor = 90);
//	CREATE INDEX mcpauth_keys_user_id_idx ON mcpauth_keys (user_id, created_at);
//	CREATE INDEX mcpauth_keys_revoked_at_idx ON mcpauth_keys (revoked_at) WHERE revoked_at IS NOT NULL;
//	CREATE INDEX mcpauth_keys_expires_at_idx ON mcpauth_keys (expires_at) WHERE expires_at IS NOT NULL;
//	CREATE TABLE mcpauth_key_addresses (
//	    key_id     TEXT        NOT NULL,
//	    address    TEXT        NOT NULL,
//	    first_seen TIMESTAMPTZ NOT NULL,
//	    PRIMARY KEY (key_id, address)
//	);
//	ALTER TABLE mcpauth_keys ADD COLUMN changed_at TIMESTAMPTZ;
//	CREATE INDEX mcpauth_keys_changed_at_idx ON mcpauth_keys (changed_at) WHERE changed_at IS NOT NULL;
//	INSERT INTO mcpauth_schema_migrations (component, version, name, applied_at)
//	    VALUES ('keys', 1, 'keys', now()), ('keys', 2, 'indexes', now()), ('keys', 3, 'key_addresses', now()),
//	           ('keys', 4, 'changed_at', now());
//
// SQLite (timestamps are INTEGER Unix microseconds, UTC):
//
//	CREATE TABLE IF NOT EXISTS mcpauth_schema_migrations (
//	    component  TEXT    NOT NULL,
//	    version    INTEGER NOT NULL,
//	    name       TEXT    NOT NULL,
//	    applied_at INTEGER NOT NULL,
//	    PRIMARY KEY (component, version)
//	);
//	CREATE TABLE mcpauth_keys (
//	    id             TEXT    NOT NULL PRIMARY KEY,
//	    user_id        TEXT    NOT NULL,
//	    name           TEXT    NOT NULL DEFAULT '',
//	    hash           BLOB    NOT NULL,
//	    pepper_version INTEGER NOT NULL DEFAULT 0,
//	    scopes         TEXT    NOT NULL DEFAULT '[]',
//	    created_at     INTEGER NOT NULL,
//	    expires_at     INTEGER,
//	    revoked_at     INTEGER,
//	    last_used_at   INTEGER,
//	    rate_limit     INTEGER NOT NULL DEFAULT 0,
//	    allowed_cidrs  TEXT    NOT NULL DEFAULT '[]',
//	    metadata       TEXT    NOT NULL DEFAULT '{}'
//	);
//	CREATE INDEX mcpauth_keys_user_id_idx ON mcpauth_keys (user_id, created_at);
//	CREATE INDEX mcpauth_keys_revoked_at_idx ON mcpauth_keys (revoked_at) WHERE revoked_at IS NOT NULL;
//	CREATE INDEX mcpauth_keys_expires_at_idx ON mcpauth_keys (expires_at) WHERE expires_at IS NOT NULL;
//	CREATE TABLE mcpauth_key_addresses (
//	    key_id     TEXT    NOT NULL,
//	    address    TEXT    NOT NULL,
//	    first_seen INTEGER NOT NULL,
//	    PRIMARY KEY (key_id, address)
//	);
//	ALTER TABLE mcpauth_keys ADD COLUMN changed_at INTEGER;
//	CREATE INDEX mcpauth_keys_changed_at_idx ON mcpauth_keys (changed_at) WHERE changed_at IS NOT NULL;
//	INSERT INTO mcpauth_schema_migrations (component, version, name, applied_at)
//	    VALUES ('keys', 1, 'keys', CAST(unixepoch('subsec') * 1000000 AS INTEGER)), ('keys', 2, 'indexes', CAST(unixepoch('subsec') * 1000000 AS INTEGER)),
//	           ('keys', 3, 'key_addresses', CAST(unixepoch('subsec') * 1000000 AS INTEGER)),
//	           ('keys', 4, 'changed_at', CAST(unixepoch('subsec') * 1000000 AS INTEGER));
//
// Columns: hash is the key hash (never the raw key); scopes and
// allowed_cidrs are JSON arrays of strings, metadata a JSON object of
// strings, so both databases store them the same way and any tool can read
// them. A NULL timestamp means unset (never expires, not revoked, never
// used). Timestamps keep microseconds and are returned in UTC; finer
// precision is truncated. The primary key serves lookups by ID and the
// user_id index serves listing a user's keys oldest first; the partial
// indexes on revoked_at and expires_at serve RevokedSince and ListExpiring,
// and the one on changed_at (when the record was last revoked or given a
// new expiry) serves ChangedSince, the poll every Guard runs. On PostgreSQL the key
// table's fillfactor of 90 keeps room in each page so that last-used and
// revocation updates are HOT updates (no new index entries).
//
// key_addresses holds the client addresses each key was used from
// (store.AddressRecorder), so that key.new_ip is sent once per key and
// address whatever the number of restarts and instances: at most
// store.MaxAddressesPerKey (64) rows per key, addresses in canonical text
// form ("203.0.113.7", "2001:db8::1"). Rows outlive a key's revocation (a
// revoked key is refused before its address is recorded, and a few rows per
// key cost little). There is no foreign key to the key table, so that
// dropping or rebuilding it is never blocked; the store never deletes keys,
// and if you do, or to forget the addresses of revoked keys, delete their
// rows yourself:
//
//	DELETE FROM mcpauth_key_addresses WHERE key_id NOT IN (SELECT id FROM mcpauth_keys WHERE revoked_at IS NULL);
//
// # Operations
//
// Every operation is one statement or one transaction:
//
//   - LookupKey: SELECT by primary key.
//   - CreateKey: INSERT ... ON CONFLICT (id) DO NOTHING; no inserted row
//     means the ID was taken and the result is store.ErrDuplicate, so no
//     driver-specific error needs decoding and racing creators get exactly
//     one success.
//   - RevokeKey: UPDATE ... SET revoked_at = COALESCE(revoked_at, $2), which
//     keeps the first revocation time, and changed_at.
//   - SetExpiry: UPDATE of expires_at and changed_at.
//   - ChangedSince: SELECT on the changed_at and revoked_at indexes.
//   - ListKeys: SELECT on the user_id index.
//   - RecordAddress: INSERT ... SELECT ... WHERE (fewer than 64 rows for
//     the key) ON CONFLICT (key_id, address) DO NOTHING; a row inserted
//     means a new address, so racing instances get exactly one isNew. On
//     PostgreSQL instances recording different new addresses of one key at
//     the same instant may each pass the count and overshoot the bound by
//     one row each.
//   - TouchKeys: on PostgreSQL one transaction holding one UPDATE ... FROM
//     (VALUES ...) per 16,384 keys, after set_config turns hash and merge
//     joins off for that transaction only: otherwise, past a few thousand
//     keys, the planner may read the whole key table to join it with the
//     batch instead of probing the primary key (on a million-key table, 0.5 s
//     instead of 0.1 s). On SQLite one transaction running one prepared
//     UPDATE per key.
//     Either way last_used_at only moves forward, and each key appears once,
//     in ID order, so concurrent flushes from several instances lock rows in
//     the same order.
//
// # Errors
//
// A key that does not exist gives store.ErrNotFound, unwrapped. Anything
// else (a closed *sql.DB, an unreachable server, a cancelled context, a
// column that does not decode) is wrapped with the operation that failed and
// is never ErrNotFound, so the middleware answers 503 and fails closed. When
// the context is done the error satisfies errors.Is(err, ctx.Err()). Error
// messages hold the driver's message and at most a public key ID, never a
// hash or a secret.
package sqlstore
