package sqlaudit

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ChainError says where Verify found the chain broken. It satisfies
// errors.Is(err, ErrChainBroken).
type ChainError struct {
	// Seq is the sequence number of the first event whose link does not
	// hold (for a missing event: the number that is missing).
	Seq int64
	// EventID is that event's ID, empty when the row is missing.
	EventID string
	// Reason says what is wrong: "hash mismatch" (the row was edited),
	// "previous hash mismatch" (the row before it was edited, replaced or
	// reordered), "missing event" (deleted), "not chained", "head mismatch"
	// (events after the last row were deleted, or the head was edited).
	Reason string
}

func (e *ChainError) Error() string {
	if e.EventID != "" {
		return fmt.Sprintf("mcpauth/sqlaudit: audit chain broken at seq %d (event %s): %s", e.Seq, e.EventID, e.Reason)
	}
	return fmt.Sprintf("mcpauth/sqlaudit: audit chain broken at seq %d: %s", e.Seq, e.Reason)
}

// Is makes errors.Is(err, ErrChainBroken) true.
func (e *ChainError) Is(target error) bool { return target == ErrChainBroken }

// Verification is what Verify checked.
type Verification struct {
	// Events is the number of events checked.
	Events int64
	// First and Last are the sequence numbers of the first and last event
	// checked (zero when there were none).
	First, Last int64
}

// Verify checks the hash chain of the events whose Time is in [from, to)
// (zero means unbounded): every event's hash is recomputed from its stored
// fields, its prev_hash must be the previous event's hash (or, after a
// Purge, the anchor's), sequence numbers must have no gaps, and when to is
// zero the last event must be the one the head row names. It returns the
// first broken link as a *ChainError (errors.Is(err, ErrChainBroken)), or
// nil and what it checked. It reads the range in one consistent snapshot
// (one read transaction); concurrent writes are not blocked.
//
// The chain shows changes made through SQL by someone who cannot also
// recompute every later hash and the head: keep a copy of the head (seq and
// hash, see Head) outside the database, or export regularly, to make
// rewriting the whole tail detectable too.
func (s *Store) Verify(ctx context.Context, from, to time.Time) (Verification, error) {
	if !s.chain {
		return Verification{}, ErrNotChained
	}
	txOpts := &sql.TxOptions{ReadOnly: true} // SQLite: a WAL read snapshot
	if s.dialect == postgres {
		txOpts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := s.db.BeginTx(ctx, txOpts)
	if err != nil {
		return Verification{}, fail(ctx, "verify: begin", err)
	}
	defer func() { _ = tx.Rollback() }()

	var headSeq int64
	var headHash []byte
	if err := tx.QueryRowContext(ctx, "SELECT seq, hash FROM "+s.headTable()+" WHERE id = 1").Scan(&headSeq, &headHash); err != nil {
		return Verification{}, fail(ctx, "verify: read head", err)
	}
	// The seq range to check.
	lo, hi := int64(1), headSeq
	if !from.IsZero() {
		var v sql.NullInt64
		if err := tx.QueryRowContext(ctx, s.rebind("SELECT MIN(seq) FROM "+s.EventsTable()+" WHERE event_time >= $1"), s.timeArg(from)).Scan(&v); err != nil {
			return Verification{}, fail(ctx, "verify: find range", err)
		}
		if !v.Valid {
			return Verification{}, nil
		}
		lo = v.Int64
	}
	if !to.IsZero() {
		var v sql.NullInt64
		if err := tx.QueryRowContext(ctx, s.rebind("SELECT MAX(seq) FROM "+s.EventsTable()+" WHERE event_time < $1"), s.timeArg(to)).Scan(&v); err != nil {
			return Verification{}, fail(ctx, "verify: find range", err)
		}
		if !v.Valid {
			return Verification{}, nil
		}
		hi = v.Int64
	}
	// The hash the first checked event must point to.
	var anchorSeq int64
	var anchorHash []byte
	err = tx.QueryRowContext(ctx, "SELECT seq, hash FROM "+s.anchorsTable()+" ORDER BY seq DESC LIMIT 1").Scan(&anchorSeq, &anchorHash)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Verification{}, fail(ctx, "verify: read anchor", err)
	}
	lo = max(lo, anchorSeq+1)
	if lo > hi {
		if to.IsZero() && hi == headSeq && anchorSeq == headSeq && !bytes.Equal(anchorHash, headHash) {
			return Verification{}, &ChainError{Seq: headSeq, Reason: "head mismatch"}
		}
		return Verification{}, nil
	}
	var prev []byte
	switch {
	case lo == anchorSeq+1:
		prev = anchorHash
	default:
		err := tx.QueryRowContext(ctx, s.rebind("SELECT hash FROM "+s.EventsTable()+" WHERE seq = $1"), lo-1).Scan(&prev)
		if errors.Is(err, sql.ErrNoRows) {
			return Verification{}, &ChainError{Seq: lo - 1, Reason: "missing event"}
		}
		if err != nil {
			return Verification{}, fail(ctx, "verify: read previous", err)
		}
	}

	rows, err := tx.QueryContext(ctx, s.rebind("SELECT "+columns+" FROM "+s.EventsTable()+" WHERE seq >= $1 AND seq <= $2 ORDER BY seq"), lo, hi)
	if err != nil {
		return Verification{}, fail(ctx, "verify: read events", err)
	}
	defer rows.Close()
	v := Verification{First: lo}
	want := lo
	var r row
	for rows.Next() {
		if err := scanRow(rows, &r); err != nil {
			return Verification{}, fail(ctx, "verify: scan", err)
		}
		switch {
		case r.seq != want:
			return v, &ChainError{Seq: want, Reason: "missing event"}
		case r.hash == nil:
			return v, &ChainError{Seq: r.seq, EventID: r.id, Reason: "not chained"}
		case !bytes.Equal(r.prevHash, prev):
			return v, &ChainError{Seq: r.seq, EventID: r.id, Reason: "previous hash mismatch"}
		case !bytes.Equal(computeHash(prev, &r), r.hash):
			return v, &ChainError{Seq: r.seq, EventID: r.id, Reason: "hash mismatch"}
		}
		prev = r.hash
		v.Events++
		v.Last = r.seq
		want++
	}
	if err := rows.Err(); err != nil {
		return Verification{}, fail(ctx, "verify: read events", err)
	}
	if want <= hi {
		return v, &ChainError{Seq: want, Reason: "missing event"}
	}
	if hi == headSeq && !bytes.Equal(prev, headHash) {
		return v, &ChainError{Seq: headSeq, Reason: "head mismatch"}
	}
	return v, nil
}

// Head returns the sequence number and hash of the last event written (hash
// nil without Options.Chain, seq 0 for an empty log). Keeping it outside the
// database (a log line, a timestamping service) lets Verify's result be
// checked against a rewrite of the whole tail.
func (s *Store) Head(ctx context.Context) (seq int64, hash []byte, err error) {
	if err := s.db.QueryRowContext(ctx, "SELECT seq, hash FROM "+s.headTable()+" WHERE id = 1").Scan(&seq, &hash); err != nil {
		return 0, nil, fail(ctx, "head", err)
	}
	return seq, hash, nil
}
