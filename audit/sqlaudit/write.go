package sqlaudit

import (
	"context"
	"crypto/sha256"

	"github.com/mcpauth/mcpauth/audit"
)

// Record writes one event; see RecordBatch.
func (s *Store) Record(ctx context.Context, e audit.Event) error {
	return s.RecordBatch(ctx, []audit.Event{e})
}

// RecordBatch writes events in one transaction: it takes the next sequence
// numbers from the audit_head row (locking it until commit), computes the
// chain hashes when Options.Chain is set, and inserts the rows in
// statements of at most MaxRowsPerInsert rows (see insert.go). Either every
// event is written or none is. Events without an ID get one (audit.NewEventID), events
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
	var hashes, canon []byte
	if s.chain {
		hashes = make([]byte, 0, sha256.Size*len(rows))
	}
	for i := range rows {
		rows[i].seq = first + int64(i)
		if s.chain {
			rows[i].prevHash = prev
			canon = appendCanonical(canon[:0], prev, &rows[i])
			sum := sha256.Sum256(canon)
			hashes = append(hashes, sum[:]...)
			rows[i].hash = hashes[len(hashes)-sha256.Size : len(hashes) : len(hashes)]
			prev = rows[i].hash
		}
	}
	if s.dialect == postgres {
		err = s.insertJSON(ctx, tx, rows)
	} else {
		err = s.insertArgs(ctx, tx, rows)
	}
	if err != nil {
		return err
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
