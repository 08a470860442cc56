package sqlaudit

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Purge deletes old events (retention) and returns how many it deleted.
//
// Without Options.Chain it deletes every event whose Time is before
// olderThan. With it, it deletes the oldest events in sequence order, up to
// (not including) the first event whose Time is not before olderThan, so the
// log stays one unbroken chain; a few events older than olderThan but
// written after a newer one may be kept until the next Purge. Before
// deleting it records an anchor (the last deleted event's seq and hash), so
// Verify checks the new first event against it. The purge is one
// transaction, serialised with writers on the head row.
func (s *Store) Purge(ctx context.Context, olderThan time.Time) (deleted int64, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fail(ctx, "purge: begin", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if !s.chain {
		res, err := tx.ExecContext(ctx, s.rebind("DELETE FROM "+s.EventsTable()+" WHERE event_time < $1"), s.timeArg(olderThan))
		if err != nil {
			return 0, fail(ctx, "purge: delete", err)
		}
		if err := tx.Commit(); err != nil {
			return 0, fail(ctx, "purge: commit", err)
		}
		n, _ := res.RowsAffected()
		return n, nil
	}
	// Lock the head first (writers wait), as RecordBatch does.
	var headSeq int64
	var headHash []byte
	if err = tx.QueryRowContext(ctx, "UPDATE "+s.headTable()+" SET seq = seq WHERE id = 1 RETURNING seq, hash").Scan(&headSeq, &headHash); err != nil {
		return 0, fail(ctx, "purge: lock head", err)
	}
	var keep sql.NullInt64
	if err = tx.QueryRowContext(ctx, s.rebind("SELECT MIN(seq) FROM "+s.EventsTable()+" WHERE event_time >= $1"), s.timeArg(olderThan)).Scan(&keep); err != nil {
		return 0, fail(ctx, "purge: find range", err)
	}
	cut := headSeq
	if keep.Valid {
		cut = keep.Int64 - 1
	}
	var cutHash []byte
	err = tx.QueryRowContext(ctx, s.rebind("SELECT hash FROM "+s.EventsTable()+" WHERE seq = $1"), cut).Scan(&cutHash)
	if errors.Is(err, sql.ErrNoRows) {
		_ = tx.Rollback()
		return 0, nil // nothing left to delete before cut
	}
	if err != nil {
		return 0, fail(ctx, "purge: read anchor event", err)
	}
	if _, err = tx.ExecContext(ctx, s.rebind("INSERT INTO "+s.anchorsTable()+" (seq, hash, purged_at) VALUES ($1, $2, $3)"), cut, cutHash, s.timeArg(s.now())); err != nil {
		return 0, fail(ctx, "purge: record anchor", err)
	}
	res, err := tx.ExecContext(ctx, s.rebind("DELETE FROM "+s.EventsTable()+" WHERE seq <= $1"), cut)
	if err != nil {
		return 0, fail(ctx, "purge: delete", err)
	}
	if err = tx.Commit(); err != nil {
		return 0, fail(ctx, "purge: commit", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
