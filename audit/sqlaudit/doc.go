// Package sqlaudit stores audit events in SQLite or PostgreSQL, and answers
// the questions asked of them afterwards: what did this key touch, when,
// and with what result.
//
// The package imports no driver: open the *sql.DB with modernc.org/sqlite
// ("sqlite") or pgx's stdlib driver ("pgx") and name the dialect, or let New
// ask the database (the dialect support is store/sqlstore's). For SQLite use
// WAL and a busy timeout:
//
//	file:audit.db?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)
//
// # Schema and migrations
//
// Migrate creates <prefix>audit_events, <prefix>audit_head and
// <prefix>audit_anchors (prefix "mcpauth_" by default) and records its
// versions in <prefix>schema_migrations under the component "audit", the
// table the key store uses too. It is explicit (New changes nothing),
// idempotent and safe to run from several processes at once (PostgreSQL
// advisory transaction lock, SQLite BEGIN IMMEDIATE). Schema returns the SQL
// for people who manage migrations themselves.
//
// # Writing
//
// [Store.RecordBatch] writes a batch in one transaction: it reserves the next
// sequence numbers by updating the single audit_head row (which also locks
// it, so writers in several processes append one batch at a time and seq
// follows commit order with no gaps) and inserts the rows: on PostgreSQL
// with INSERT ... SELECT FROM json_to_recordset, Options.MaxRowsPerInsert
// rows (default 1,000) sent as one JSON parameter per statement; on SQLite
// with a one-row INSERT per row that names only the columns the row sets,
// prepared once per batch. Either way a value left out is its column's
// default, so what is stored does not depend on how it was sent. Put an
// audit.Writer in front of the store so that requests only enqueue; see
// package audit for the delivery modes.
//
// # Tamper evidence
//
// With Options.Chain each row stores prev_hash, the hash of the event before
// it, and hash = SHA-256(prev_hash || canonical form), where the canonical
// form covers the sequence number and every stored field (the event count
// only on aggregated events; instance and actor only on events that carry
// one, in a second version of the form; the credential kind only on events
// that carry one, in a third; so that chains written before those columns
// existed verify unchanged). [Store.Verify]
// recomputes the chain over a time range and returns a *ChainError for the
// first link that does not hold: an edited row (hash mismatch), an edited
// and re-hashed row (the next row's previous hash mismatch), a deleted row
// (missing event), reordered rows (the sequence number is hashed), or
// deleted tail rows (head mismatch). Someone with write access who rewrites
// every later row and the head can still forge a consistent chain; to catch
// that too, copy [Store.Head] somewhere they cannot write, regularly.
//
// # Reading
//
// [Store.Query] (audit.Querier) filters by user, key, outcome, method, tool,
// key action, instance and time range, newest first, with an opaque cursor on
// (time, seq) that stays correct while events are being written.
// [Store.Export] streams JSON lines or CSV. [Store.Usage] counts calls,
// denials, rate-limited calls and errors per key and/or tool, per hour or
// day.
//
// # Retention
//
// [Store.Purge] deletes events older than a time. On a chained log it
// deletes a prefix of the chain and records an anchor (the last deleted
// event's seq and hash) in the same transaction, so Verify keeps working
// from the new first event.
//
// # Concurrency
//
// A Store is safe for concurrent use and starts no goroutine; it needs no
// Close (close the *sql.DB).
package sqlaudit
