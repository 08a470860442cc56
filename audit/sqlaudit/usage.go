package sqlaudit

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Bucket is the time granularity of a usage summary.
type Bucket int

const (
	// Hour buckets start on the hour, UTC.
	Hour Bucket = iota
	// Day buckets start at midnight UTC.
	Day
)

// GroupBy says what a usage summary counts per bucket.
type GroupBy int

const (
	// ByKey gives one row per API key and bucket.
	ByKey GroupBy = iota
	// ByTool gives one row per tool and bucket (tools/call only).
	ByTool
	// ByKeyAndTool gives one row per key, tool and bucket (tools/call only).
	ByKeyAndTool
)

// UsageQuery selects a usage summary.
type UsageQuery struct {
	// From and To bound the event Time: From <= Time < To. Zero means
	// unbounded.
	From, To time.Time
	// Bucket is the time granularity. Default Hour.
	Bucket Bucket
	// By is the grouping. Default ByKey.
	By GroupBy
	// KeyID and UserID, if set, restrict the summary to one key or user.
	KeyID, UserID string
}

// UsageRow counts the MCP messages of one bucket and group. Key lifecycle
// events are not counted.
type UsageRow struct {
	// Start is the bucket's start, UTC.
	Start time.Time
	// KeyID is set for ByKey and ByKeyAndTool, Tool for ByTool and ByKeyAndTool.
	KeyID, Tool string
	// Calls counts every message (an aggregated event counts as its
	// audit.Event.Count messages); the others count outcomes.
	Calls, Allowed, Denied, Unauthenticated, RateLimited, Errors int64
}

// Usage returns call counts per key and/or tool and per hour or day, oldest
// bucket first, for the "usage per API key" pages and reports.
func (s *Store) Usage(ctx context.Context, q UsageQuery) ([]UsageRow, error) {
	var width int64
	switch q.Bucket {
	case Hour:
		width = 3600
	case Day:
		width = 86400
	default:
		return nil, fmt.Errorf("%w: unknown Bucket %d", ErrInvalidFilter, int(q.Bucket))
	}
	var groupCols string
	conds := []string{"action = ''"}
	switch q.By {
	case ByKey:
		groupCols = "key_id AS k, '' AS t"
	case ByTool:
		groupCols = "'' AS k, tool AS t"
		conds = append(conds, "method = 'tools/call'")
	case ByKeyAndTool:
		groupCols = "key_id AS k, tool AS t"
		conds = append(conds, "method = 'tools/call'")
	default:
		return nil, fmt.Errorf("%w: unknown GroupBy %d", ErrInvalidFilter, int(q.By))
	}
	bucket := fmt.Sprintf("(event_time / %d) * %d", width*1_000_000, width) // Unix micros -> seconds
	if s.dialect == postgres {
		bucket = fmt.Sprintf("CAST(floor(extract(epoch FROM event_time) / %d) AS BIGINT) * %d", width, width)
	}
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		conds = append(conds, fmt.Sprintf(cond, len(args)))
	}
	if q.KeyID != "" {
		add("key_id = $%d", q.KeyID)
	}
	if q.UserID != "" {
		add("user_id = $%d", q.UserID)
	}
	if !q.From.IsZero() {
		add("event_time >= $%d", s.timeArg(q.From))
	}
	if !q.To.IsZero() {
		add("event_time < $%d", s.timeArg(q.To))
	}
	// n is the number of messages a row stands for; the sums are cast
	// because PostgreSQL's SUM of a BIGINT is a NUMERIC.
	count := func(o string) string {
		return "CAST(SUM(CASE WHEN outcome = '" + o + "' THEN n ELSE 0 END) AS BIGINT)"
	}
	sqlText := "SELECT b, k, t, CAST(SUM(n) AS BIGINT), " + strings.Join([]string{
		count("allowed"), count("denied"), count("unauthenticated"), count("rate_limited"), count("error"),
	}, ", ") +
		" FROM (SELECT " + bucket + " AS b, " + groupCols + ", outcome, CASE WHEN event_count > 1 THEN event_count ELSE 1 END AS n FROM " + s.EventsTable() +
		" WHERE " + strings.Join(conds, " AND ") + ") AS x" +
		" GROUP BY b, k, t ORDER BY b, k, t"
	rows, err := s.db.QueryContext(ctx, s.rebind(sqlText), args...)
	if err != nil {
		return nil, fail(ctx, "usage", err)
	}
	defer rows.Close()
	var out []UsageRow
	for rows.Next() {
		var r UsageRow
		var b int64
		if err := rows.Scan(&b, &r.KeyID, &r.Tool, &r.Calls, &r.Allowed, &r.Denied, &r.Unauthenticated, &r.RateLimited, &r.Errors); err != nil {
			return nil, fail(ctx, "usage: scan", err)
		}
		r.Start = time.Unix(b, 0).UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fail(ctx, "usage", err)
	}
	return out, nil
}
