package sqlaudit

import (
	"context"
	"database/sql"

	"strconv"
	"strings"

	"github.com/mcpauth/mcpauth/audit"
)

// Record writes one event; see RecordBatch.
func (s *Store) Record(ctx context.Context, e audit.Event) error {
	return s.RecordBatch(ctx, []audit.Event{e})
}

// RecordBatch writes events in one transaction: it takes the next sequence
// numbers from the audit_head row (locking it until commit), computes the
// chain hashes when Options.Chain is set, and inserts the rows with
// multi-row INSERTs of at most MaxRowsPerInsert rows. Either every event is
// written or none is. Events without an ID get one (audit.NewEventID), events
// without a Time get Options.Now. Text is stored as valid UTF-8 without NUL
// bytes (other bytes become U+FFFD); times keep microseconds.
func (s *Store) RecordBatch(ctx context.Context, events []audit.Event) (err error) {
	if len(events) == 0 {
		return nil
	}
	rows := make([]row, len(events))
	for i, e := range events {
		rows[i] = toRow(e, s.now)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fail(ctx, "record: begin", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	// The UPDATE comes first: it takes SQLite's write lock at once (no
	// read-to-write upgrade that could fail with SQLITE_BUSY) and
	// PostgreSQL's row lock, which queues other writers until commit.
	var last int64
	var prev []byte
	err = tx.QueryRowContext(ctx, s.rebind("UPDATE "+s.headTable()+" SET seq = seq + $1 WHERE id = 1 RETURNING seq, hash"), int64(len(rows))).Scan(&last, &prev)
	if err != nil {
		return fail(ctx, "record: reserve sequence", err)
	}
	first := last - int64(len(rows)) + 1
	for i := range rows {
		rows[i].seq = first + int64(i)
		if s.chain {
			rows[i].prevHash = prev
			rows[i].hash = computeHash(prev, &rows[i])
			prev = rows[i].hash
		}
	}
	// Full chunks share one prepared statement; the rest is a statement of
	// its own.
	var full *sql.Stmt
	if len(rows) >= 2*s.maxRows || (s.maxRows == 1 && len(rows) > 1) {
		if full, err = tx.PrepareContext(ctx, s.insertStatement(s.maxRows)); err != nil {
			return fail(ctx, "record: prepare insert", err)
		}
		defer full.Close()
	}
	args := make([]any, 0, min(len(rows), s.maxRows)*nColumns)
	for start := 0; start < len(rows); start += s.maxRows {
		chunk := rows[start:min(start+s.maxRows, len(rows))]
		args = args[:0]
		for i := range chunk {
			args = s.appendArgs(args, &chunk[i])
		}
		if full != nil && len(chunk) == s.maxRows {
			_, err = full.ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, s.insertStatement(len(chunk)), args...)
		}
		if err != nil {
			return fail(ctx, "record: insert", err)
		}
	}
	if s.chain {
		if _, err = tx.ExecContext(ctx, s.rebind("UPDATE "+s.headTable()+" SET hash = $1 WHERE id = 1"), prev); err != nil {
			return fail(ctx, "record: update head", err)
		}
	}
	if err = tx.Commit(); err != nil {
		return fail(ctx, "record: commit", err)
	}
	return nil
}

// insertStatement returns the INSERT for n rows, cached by n.
func (s *Store) insertStatement(n int) string {
	s.insertMu.Lock()
	defer s.insertMu.Unlock()
	if q, ok := s.insertSQL[n]; ok {
		return q
	}
	var b strings.Builder
	b.WriteString("INSERT INTO " + s.EventsTable() + " (" + columns + ") VALUES ")
	// SQLite gets anonymous "?" placeholders: modernc.org/sqlite matches
	// numbered ones to arguments by name, in time quadratic in their number.
	sqlite := s.dialect != postgres
	p := 1
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for j := range nColumns {
			if j > 0 {
				b.WriteByte(',')
			}
			if sqlite {
				b.WriteByte('?')
			} else {
				b.WriteByte('$')
				b.WriteString(strconv.Itoa(p))
			}
			p++
		}
		b.WriteByte(')')
	}
	q := b.String()
	if len(s.insertSQL) < 64 {
		s.insertSQL[n] = q
	}
	return q
}
