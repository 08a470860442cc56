package sqlaudit

import (
	"context"
	"database/sql"
	"encoding/base64"
	"strconv"
	"strings"
)

// How rows reach the database, by dialect.
//
// PostgreSQL: one JSON document per statement, an array of objects, one
// per row, keyed by jsonKeys in column order and without the values that
// equal their column's default, expanded by json_to_recordset. One bound
// parameter per statement instead of 28 per row: binding, boxing every
// value into an interface and the driver's per-argument encoding were most
// of the write path's cost (COPY is not reachable through database/sql
// without importing a driver). What is stored is what the placeholder
// INSERT stored: the text exactly (JSON strings round-trip every valid
// UTF-8 string, and toRow has made every string valid UTF-8 without NUL),
// the integers exactly, NULL for no arguments, attributes or hashes, the
// hashes as bytes (sent as base64), the time from its microseconds.
//
// SQLite: one single-row INSERT per row, naming only the columns the row
// sets, prepared once per batch for each set of columns (insertRows).
// SQLite is in process, so there is no round trip to save; modernc.org/sqlite
// binds in time growing faster than the number of parameters, and expanding
// a JSON document with json_each was ten times slower than binding
// (measured: docs/BENCHMARKS.md).

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

// appendJSONRow appends r as a JSON object to buf, leaving out every value
// equal to its column's default (” for text, 0 for numbers, null for
// arguments, attributes and the hashes): json_to_recordset reads a missing
// key as NULL, and insertJSONStatement turns that back into the default.
// seq, id and event_time are always written.
func appendJSONRow(buf []byte, r *row) []byte {
	buf = append(buf, '{')
	k := 0
	key := func(col int) {
		if k > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '"')
		buf = append(buf, jsonKeys[col]...)
		buf = append(buf, '"', ':')
		k++
	}
	num := func(col int, v int64) {
		if v != 0 || col < colFirstStr {
			key(col)
			buf = strconv.AppendInt(buf, v, 10)
		}
	}
	str := func(col int, s string) {
		if s != "" || col < colFirstStr {
			key(col)
			buf = appendJSONString(buf, s)
		}
	}
	b64Bytes := func(col int, b []byte) {
		if b != nil {
			key(col)
			buf = append(buf, '"')
			buf = base64.StdEncoding.AppendEncode(buf, b)
			buf = append(buf, '"')
		}
	}
	num(0, r.seq)
	str(1, r.id)
	num(2, r.timeUS)
	for i, s := range r.strs {
		str(colFirstStr+i, s)
	}
	num(colStatus, r.status)
	num(colDuration, r.durationNS)
	str(colArguments, r.arguments)
	str(colAttributes, r.attributes)
	num(colCount, r.count)
	str(colInstance, r.instance)
	str(colActor, r.actor)
	str(colCredential, r.credential)
	b64Bytes(colPrevHash, r.prevHash)
	b64Bytes(colHash, r.hash)
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
		switch {
		case i == 2: // event_time: whole seconds, then the microseconds, both exact
			b.WriteString("to_timestamp(x." + k + " / 1000000) + (x." + k + " % 1000000) * interval '1 microsecond'")
		case i == colPrevHash || i == colHash:
			b.WriteString("decode(x." + k + ", 'base64')")
		case i < colFirstStr || i == colArguments || i == colAttributes: // always sent, or NULL when missing
			b.WriteString("x." + k)
		case pgJSONType(i) == "text":
			b.WriteString("COALESCE(x." + k + ", '')")
		default:
			b.WriteString("COALESCE(x." + k + ", 0)")
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

// insertArgs inserts rows into SQLite. With one row per statement (the
// default) each row's INSERT names only the columns whose value differs
// from the column's default (see appendSetArgs): what is stored is the same,
// and every column left out is a parameter modernc.org/sqlite does not copy
// into C memory. A batch prepares one statement per set of columns. With
// MaxRowsPerInsert above 1, full chunks share one prepared statement of
// every column and the rest is a statement of its own.
//
// The statements run under a context without ctx's deadline, and ctx is
// checked before each one: modernc.org/sqlite starts a goroutine per
// statement to watch a context that can end, which cost more than the
// insert itself. ctx still bounds the transaction (BeginTx, the head row's
// lock and the commit watch it) and ends the batch at the next row.
func (s *Store) insertArgs(ctx context.Context, tx *sql.Tx, rows []row) error {
	if s.maxRows == 1 {
		return s.insertRows(ctx, tx, rows)
	}
	stepCtx := context.WithoutCancel(ctx)
	var full *sql.Stmt
	if len(rows) >= 2*s.maxRows {
		var err error
		if full, err = tx.PrepareContext(ctx, s.insertStatement(s.maxRows)); err != nil {
			return fail(ctx, "record: prepare insert", err)
		}
		defer full.Close()
	}
	args := make([]any, 0, min(len(rows), s.maxRows)*nColumns)
	for start := 0; start < len(rows); start += s.maxRows {
		if err := ctx.Err(); err != nil {
			return fail(ctx, "record: insert", err)
		}
		chunk := rows[start:min(start+s.maxRows, len(rows))]
		args = args[:0]
		for i := range chunk {
			args = appendArgs(args, &chunk[i])
		}
		var err error
		if full != nil && len(chunk) == s.maxRows {
			_, err = full.ExecContext(stepCtx, args...)
		} else {
			_, err = tx.ExecContext(stepCtx, s.insertStatement(len(chunk)), args...)
		}
		if err != nil {
			return fail(ctx, "record: insert", err)
		}
	}
	return nil
}

// insertRows inserts rows into SQLite one per statement, each naming only
// its set columns; see insertArgs.
func (s *Store) insertRows(ctx context.Context, tx *sql.Tx, rows []row) error {
	stepCtx := context.WithoutCancel(ctx)
	var stmts map[uint32]*sql.Stmt // by columns, when the batch has several rows
	defer func() {
		for _, st := range stmts {
			_ = st.Close()
		}
	}()
	args := make([]any, 0, nColumns)
	for i := range rows {
		if err := ctx.Err(); err != nil {
			return fail(ctx, "record: insert", err)
		}
		var cols uint32
		args, cols = appendSetArgs(args[:0], &rows[i])
		q := s.insertColumnsStatement(cols)
		var err error
		if len(rows) == 1 {
			_, err = tx.ExecContext(stepCtx, q, args...)
		} else {
			st, ok := stmts[cols]
			if !ok {
				if st, err = tx.PrepareContext(ctx, q); err != nil {
					return fail(ctx, "record: prepare insert", err)
				}
				if stmts == nil {
					stmts = make(map[uint32]*sql.Stmt, 2)
				}
				stmts[cols] = st
			}
			_, err = st.ExecContext(stepCtx, args...)
		}
		if err != nil {
			return fail(ctx, "record: insert", err)
		}
	}
	return nil
}

// Bits of the column set appendSetArgs returns: bit i is column i of
// `columns`.
const (
	colRequiredBits = 1<<0 | 1<<1 | 1<<2 // seq, id, event_time
	colFirstStr     = 3                  // request_id; the nStr text columns follow
	colStatus       = 18
	colDuration     = 19
	colArguments    = 20
	colAttributes   = 21
	colCount        = 22
	colInstance     = 23
	colActor        = 24
	colCredential   = 25
	colPrevHash     = 26
	colHash         = 27
)

// appendSetArgs appends r's values for SQLite (the time as Unix
// microseconds) in column order, leaving out every value equal to its
// column's default (” for text, 0 for numbers, NULL for arguments,
// attributes and the hashes), and returns the set of columns it kept.
// seq, id and event_time have no default and are always kept.
func appendSetArgs(args []any, r *row) ([]any, uint32) {
	cols := uint32(colRequiredBits)
	args = append(args, r.seq, r.id, r.timeUS)
	set := func(col int, v any) {
		args = append(args, v)
		cols |= 1 << col
	}
	for i, v := range r.strs {
		if v != "" {
			set(colFirstStr+i, v)
		}
	}
	for _, c := range [...]struct {
		col int
		v   int64
	}{{colStatus, r.status}, {colDuration, r.durationNS}} {
		if c.v != 0 {
			set(c.col, c.v)
		}
	}
	for _, c := range [...]struct {
		col int
		v   string
	}{{colArguments, r.arguments}, {colAttributes, r.attributes}} {
		if c.v != "" {
			set(c.col, c.v)
		}
	}
	if r.count != 0 {
		set(colCount, r.count)
	}
	for _, c := range [...]struct {
		col int
		v   string
	}{{colInstance, r.instance}, {colActor, r.actor}, {colCredential, r.credential}} {
		if c.v != "" {
			set(c.col, c.v)
		}
	}
	if r.prevHash != nil {
		set(colPrevHash, r.prevHash)
	}
	if r.hash != nil {
		set(colHash, r.hash)
	}
	return args, cols
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

// insertColumnsStatement returns SQLite's single-row INSERT of the
// columns in cols (see appendSetArgs), cached by cols.
func (s *Store) insertColumnsStatement(cols uint32) string {
	s.insertMu.Lock()
	defer s.insertMu.Unlock()
	if q, ok := s.insertByColumns[cols]; ok {
		return q
	}
	var kept []string
	for i, name := range strings.Split(columns, ", ") {
		if cols&(1<<i) != 0 {
			kept = append(kept, name)
		}
	}
	q := "INSERT INTO " + s.EventsTable() + " (" + strings.Join(kept, ", ") + ") VALUES (" +
		strings.TrimSuffix(strings.Repeat("?,", len(kept)), ",") + ")"
	if len(s.insertByColumns) < 256 {
		s.insertByColumns[cols] = q
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
