package sqlaudit

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"github.com/mcpauth/mcpauth/audit"
)

const (
	defaultLimit = 100
	maxLimit     = 1000
)

// cursor is the position after the last event of a page: its time and seq.
type cursor struct{ timeUS, seq int64 }

func (c cursor) String() string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "v1.%d.%d", c.timeUS, c.seq))
}

func parseCursor(s string) (cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, ErrInvalidCursor
	}
	parts := strings.Split(string(b), ".")
	if len(parts) != 3 || parts[0] != "v1" {
		return cursor{}, ErrInvalidCursor
	}
	t, err1 := strconv.ParseInt(parts[1], 10, 64)
	q, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || q <= 0 {
		return cursor{}, ErrInvalidCursor
	}
	return cursor{timeUS: t, seq: q}, nil
}

// where builds the WHERE clause (with a leading " WHERE ", or empty) and its
// arguments for the filter's field conditions and time range.
func (s *Store) where(f audit.Filter, c *cursor) (string, []any) {
	var conds []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		conds = append(conds, strings.ReplaceAll(cond, "$?", "$"+strconv.Itoa(len(args))))
	}
	eq := func(col, v string) {
		if v != "" {
			add(col+" = $?", v)
		}
	}
	eq("user_id", f.UserID)
	eq("key_id", f.KeyID)
	eq("outcome", string(f.Outcome))
	eq("method", f.Method)
	eq("tool", f.Tool)
	eq("action", string(f.Action))
	eq("instance", f.Instance)
	if !f.From.IsZero() {
		add("event_time >= $?", s.timeArg(f.From))
	}
	if !f.To.IsZero() {
		add("event_time < $?", s.timeArg(f.To))
	}
	if c != nil {
		args = append(args, s.timeArgUS(c.timeUS), c.seq)
		conds = append(conds, fmt.Sprintf("(event_time, seq) < ($%d, $%d)", len(args)-1, len(args)))
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// Query returns one page of events matching f, newest first (by Time, then
// by write order). The cursor is the (time, seq) of the page's last event,
// so pages stay consistent while events are being written: a new event is
// either newer than the cursor (and shows up when the listing is started
// again) or, if its Time is older, in a later page.
func (s *Store) Query(ctx context.Context, f audit.Filter) (audit.Page, error) {
	if f.Limit < 0 {
		return audit.Page{}, fmt.Errorf("%w: negative Limit", ErrInvalidFilter)
	}
	limit := f.Limit
	if limit == 0 {
		limit = defaultLimit
	}
	limit = min(limit, maxLimit)
	var c *cursor
	if f.Cursor != "" {
		cur, err := parseCursor(f.Cursor)
		if err != nil {
			return audit.Page{}, err
		}
		c = &cur
	}
	where, args := s.where(f, c)
	q := "SELECT " + columns + " FROM " + s.EventsTable() + where +
		" ORDER BY event_time DESC, seq DESC LIMIT " + strconv.Itoa(limit+1)
	rows, err := s.db.QueryContext(ctx, s.rebind(q), args...)
	if err != nil {
		return audit.Page{}, fail(ctx, "query", err)
	}
	defer rows.Close()
	var page audit.Page
	var last row
	for rows.Next() {
		if len(page.Events) == limit {
			page.Next = cursor{timeUS: last.timeUS, seq: last.seq}.String()
			break
		}
		if err := scanRow(rows, &last); err != nil {
			return audit.Page{}, fail(ctx, "query: scan", err)
		}
		page.Events = append(page.Events, last.event())
	}
	if err := rows.Err(); err != nil {
		return audit.Page{}, fail(ctx, "query", err)
	}
	return page, nil
}

// timeArgUS is timeArg for a time in Unix microseconds.
func (s *Store) timeArgUS(us int64) any {
	if s.dialect == postgres {
		return unixMicroUTC(us)
	}
	return us
}
