package sqlstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/mcpauth/mcpauth/store"
)

// maxTouchRows is the most rows one PostgreSQL TouchKeys statement carries:
// two bind parameters a row keeps it far under the protocol's 65,535.
const maxTouchRows = 16384

// TouchKeys implements store.Toucher. The batch is first reduced to one
// touch per key (the latest) and sorted by ID, so that concurrent flushes
// from several processes lock rows in the same order. On PostgreSQL it is one
// transaction: a set_config telling the planner to probe the primary key (see
// touchPlanSQL), then one UPDATE ... FROM (VALUES ...) per 16,384 keys. On
// SQLite it is one transaction of one prepared UPDATE run once per key.
// Either way a stored last_used_at only ever moves forward, and unknown IDs
// are skipped.
func (s *Store) TouchKeys(ctx context.Context, touches []store.Touch) error {
	if err := ctx.Err(); err != nil {
		return fail(ctx, "touch keys", err)
	}
	touches = latestTouches(touches)
	if len(touches) == 0 {
		return nil
	}
	if s.dialect == Postgres {
		return s.touchPostgres(ctx, touches)
	}
	return s.touchSQLite(ctx, touches)
}

// latestTouches keeps the latest non-zero time of each key, sorted by ID.
func latestTouches(touches []store.Touch) []store.Touch {
	latest := make(map[string]int, len(touches))
	out := make([]store.Touch, 0, len(touches))
	for _, t := range touches {
		if t.At.IsZero() {
			continue
		}
		if i, ok := latest[t.ID]; ok {
			if t.At.After(out[i].At) {
				out[i].At = t.At
			}
			continue
		}
		latest[t.ID] = len(out)
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b store.Touch) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

func (s *Store) touchPostgres(ctx context.Context, touches []store.Touch) (err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fail(ctx, "touch keys: begin", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	// Probe the primary key for each row of the batch. Left to itself, the
	// planner may prefer hashing a sequential scan of the whole table once
	// the batch has a few thousand rows, which on a large table is several
	// times slower. The settings last until the end of this transaction.
	if _, err := tx.ExecContext(ctx, touchPlanSQL); err != nil {
		return fail(ctx, "touch keys: set plan", err)
	}
	for len(touches) > 0 {
		chunk := touches[:min(len(touches), maxTouchRows)]
		touches = touches[len(chunk):]
		rows := paddedRows(len(chunk))
		args := make([]any, 0, 2*rows)
		for i := range rows {
			t := chunk[min(i, len(chunk)-1)]
			args = append(args, t.ID, s.timeArg(t.At))
		}
		if _, err := tx.ExecContext(ctx, s.touchPostgresSQL(rows), args...); err != nil {
			return fail(ctx, "touch keys", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fail(ctx, "touch keys: commit", err)
	}
	return nil
}

// touchPlanSQL turns hash and merge joins off for the current transaction.
const touchPlanSQL = "SELECT set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)"

// paddedRows rounds a row count up, to a power of two up to 1,024 and to a
// multiple of 1,024 above, so that drivers which cache prepared statements by
// their text (pgx does) see at most 26 different TouchKeys statements, while
// a large batch carries less than 1,024 extra rows. The extra rows repeat the
// last one, which changes nothing.
func paddedRows(n int) int {
	if n > 1024 {
		return (n + 1023) / 1024 * 1024
	}
	rows := 1
	for rows < n {
		rows *= 2
	}
	return rows
}

// touchPostgresSQL returns the UPDATE ... FROM (VALUES ...) statement for n
// rows, built once per n.
func (s *Store) touchPostgresSQL(n int) string {
	s.touchMu.Lock()
	defer s.touchMu.Unlock()
	if q, ok := s.touchSQL[n]; ok {
		return q
	}
	var b strings.Builder
	b.Grow(200 + n*16)
	b.WriteString("UPDATE ")
	b.WriteString(s.KeysTable())
	b.WriteString(" AS k SET last_used_at = v.at FROM (VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		p := strconv.Itoa(2*i + 1)
		q := strconv.Itoa(2*i + 2)
		if i == 0 {
			b.WriteString("($" + p + "::text, $" + q + "::timestamptz)")
		} else {
			b.WriteString("($" + p + ", $" + q + ")")
		}
	}
	b.WriteString(") AS v (id, at) WHERE k.id = v.id AND (k.last_used_at IS NULL OR k.last_used_at < v.at)")
	q := b.String()
	s.touchSQL[n] = q
	return q
}

func (s *Store) touchSQLite(ctx context.Context, touches []store.Touch) (err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fail(ctx, "touch keys: begin", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	stmt, err := tx.PrepareContext(ctx, s.q.touchOne)
	if err != nil {
		return fail(ctx, "touch keys: prepare", err)
	}
	defer stmt.Close()
	for _, t := range touches {
		if _, err := stmt.ExecContext(ctx, t.ID, s.timeArg(t.At)); err != nil {
			return fail(ctx, fmt.Sprintf("touch keys: update key %q", t.ID), err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fail(ctx, "touch keys: commit", err)
	}
	return nil
}
