package sqlaudit

import (
	"context"
	"database/sql"
	"encoding/hex"
	"strconv"
	"strings"
)

// How rows reach the database, by dialect.
//
// PostgreSQL: one JSON document per statement, an array of objects, one
// per row, keyed by jsonKeys in column order, expanded by
// json_to_recordset. One bound parameter per statement instead of 28 per
// row: binding, boxing every value into an interface and the driver's
// per-argument encoding were most of the write path's cost (COPY is not
// reachable through database/sql without importing a driver). What is stored is what the placeholder INSERT
// stored: the text exactly (JSON strings round-trip every valid UTF-8
// string, and toRow has made every string valid UTF-8 without NUL), the
// integers exactly, NULL for no arguments, attributes or hashes, the hashes
// as bytes (sent as hex), the time from its microseconds.
//
// SQLite: one prepared single-row INSERT per batch with 28 anonymous
// parameters, run once per row. SQLite is in process, so there is no round
// trip to save; modernc.org/sqlite binds in time growing faster than the
// number of parameters, and expanding a JSON document with json_each was
// ten times slower than binding (measured: docs/BENCHMARKS.md).

// jsonKeys names the columns of `columns` in the JSON rows (lower case:
// PostgreSQL folds the record's column names).
var jsonKeys = func() [nColumns]string {
	var k [nColumns]string
	for i := range k {
		if i < 26 {
			k[i] = string(rune('a' + i))
		} else {
			k[i] = "a" + string(rune('a'+i-26))
		}
	}
	return k
}()

// maxJSONBytes ends a statement's document early once it is this long, so
// that batches of large events do not build one huge parameter.
const maxJSONBytes = 4 << 20

// appendJSONRow appends r as a JSON object to buf.
func appendJSONRow(buf []byte, r *row) []byte {
	k := 0
	key := func() {
		if k == 0 {
			buf = append(buf, '{')
		} else {
			buf = append(buf, ',')
		}
		buf = append(buf, '"')
		buf = append(buf, jsonKeys[k]...)
		buf = append(buf, '"', ':')
		k++
	}
	num := func(v int64) { key(); buf = strconv.AppendInt(buf, v, 10) }
	str := func(s string) { key(); buf = appendJSONString(buf, s) }
	nullable := func(s string) {
		key()
		if s == "" {
			buf = append(buf, "null"...)
		} else {
			buf = appendJSONString(buf, s)
		}
	}
	hexBytes := func(b []byte) {
		key()
		if b == nil {
			buf = append(buf, "null"...)
			return
		}
		buf = append(buf, '"')
		buf = hex.AppendEncode(buf, b)
		buf = append(buf, '"')
	}
	num(r.seq)
	str(r.id)
	num(r.timeUS)
	for _, s := range r.strs {
		str(s)
	}
	num(r.status)
	num(r.durationNS)
	nullable(r.arguments)
	nullable(r.attributes)
	num(r.count)
	str(r.instance)
	str(r.actor)
	str(r.credential)
	hexBytes(r.prevHash)
	hexBytes(r.hash)
	return append(buf, '}')
}

// appendJSONString appends s as a JSON string. s is valid UTF-8 (toRow
// made it so); only '"', '\\' and control characters are escaped.
func appendJSONString(buf []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		buf = append(buf, s[start:i]...)
		switch c {
		case '"', '\\':
			buf = append(buf, '\\', c)
		case '\n':
			buf = append(buf, '\\', 'n')
		case '\t':
			buf = append(buf, '\\', 't')
		case '\r':
			buf = append(buf, '\\', 'r')
		default:
			buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}

// insertJSONStatement returns PostgreSQL's INSERT that expands one JSON
// document of rows, its only parameter.
func (s *Store) insertJSONStatement() string {
	var b strings.Builder
	b.WriteString("INSERT INTO " + s.EventsTable() + " (" + columns + ") SELECT ")
	for i, k := range jsonKeys {
		if i > 0 {
			b.WriteByte(',')
		}
		switch i {
		case 2: // event_time: whole seconds, then the microseconds, both exact
			b.WriteString("to_timestamp(x." + k + " / 1000000) + (x." + k + " % 1000000) * interval '1 microsecond'")
		case 26, 27:
			b.WriteString("decode(x." + k + ", 'hex')")
		default:
			b.WriteString("x." + k)
		}
	}
	b.WriteString(" FROM json_to_recordset($1::json) AS x(")
	for i, k := range jsonKeys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k + " " + pgJSONType(i))
	}
	b.WriteByte(')')
	return b.String()
}

// insertJSON inserts rows into PostgreSQL, MaxRowsPerInsert rows (or 4 MiB
// of JSON) per statement, prepared once when there are several.
func (s *Store) insertJSON(ctx context.Context, tx *sql.Tx, rows []row) error {
	exec := func(doc []byte) (sql.Result, error) { return tx.ExecContext(ctx, s.insertSQL, string(doc)) }
	if len(rows) > s.maxRows {
		stmt, err := tx.PrepareContext(ctx, s.insertSQL)
		if err != nil {
			return fail(ctx, "record: prepare insert", err)
		}
		defer stmt.Close()
		exec = func(doc []byte) (sql.Result, error) { return stmt.ExecContext(ctx, string(doc)) }
	}
	doc := make([]byte, 0, min(len(rows), s.maxRows)*400)
	for start := 0; start < len(rows); {
		doc = append(doc[:0], '[')
		n := 0
		for start+n < len(rows) && n < s.maxRows && (n == 0 || len(doc) < maxJSONBytes) {
			if n > 0 {
				doc = append(doc, ',')
			}
			doc = appendJSONRow(doc, &rows[start+n])
			n++
		}
		doc = append(doc, ']')
		if _, err := exec(doc); err != nil {
			return fail(ctx, "record: insert", err)
		}
		start += n
	}
	return nil
}

// insertArgs inserts rows into SQLite, MaxRowsPerInsert rows per
// statement: full chunks share one prepared statement, the rest is a
// statement of its own.
func (s *Store) insertArgs(ctx context.Context, tx *sql.Tx, rows []row) error {
	var full *sql.Stmt
	if len(rows) >= 2*s.maxRows || (s.maxRows == 1 && len(rows) > 1) {
		var err error
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
			args = appendArgs(args, &chunk[i])
		}
		var err error
		if full != nil && len(chunk) == s.maxRows {
			_, err = full.ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, s.insertStatement(len(chunk)), args...)
		}
		if err != nil {
			return fail(ctx, "record: insert", err)
		}
	}
	return nil
}

// appendArgs appends r's values in column order, for SQLite (the time as
// Unix microseconds).
func appendArgs(args []any, r *row) []any {
	args = append(args, r.seq, r.id, r.timeUS)
	for _, v := range r.strs {
		args = append(args, v)
	}
	args = append(args, r.status, r.durationNS, nullString(r.arguments), nullString(r.attributes), r.count, r.instance, r.actor, r.credential, nullBytes(r.prevHash), nullBytes(r.hash))
	return args
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

// insertStatement returns SQLite's INSERT for n rows, cached by n. The
// placeholders are anonymous "?": modernc.org/sqlite matches numbered ones
// to arguments by name, in time quadratic in their number.
func (s *Store) insertStatement(n int) string {
	s.insertMu.Lock()
	defer s.insertMu.Unlock()
	if q, ok := s.insertByRows[n]; ok {
		return q
	}
	var b strings.Builder
	b.WriteString("INSERT INTO " + s.EventsTable() + " (" + columns + ") VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for j := range nColumns {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('?')
		}
		b.WriteByte(')')
	}
	q := b.String()
	if len(s.insertByRows) < 64 {
		s.insertByRows[n] = q
	}
	return q
}

// pgJSONType is the record type of column i in json_to_recordset.
func pgJSONType(i int) string {
	switch i {
	case 0, 2, 19, 22: // seq, event_time (µs), duration_ns, event_count
		return "bigint"
	case 18: // status
		return "integer"
	default:
		return "text"
	}
}
