package sqltest

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/audit/sqlaudit"
)

// TestWriterLosesNothingOnClose pushes 100,000 events from concurrent
// "requests" through a Blocking Writer into a chained SQLite log, closes the
// writer and counts the rows (20,000 under -race, which makes SQLite ten
// times slower).
func TestWriterLosesNothingOnClose(t *testing.T) {
	total, workers := 100_000, 8
	if raceEnabled {
		total = 20_000
	}
	db := openSQLite(t)
	s, err := sqlaudit.New(db, &sqlaudit.Options{TablePrefix: uniquePrefix(), Chain: true})
	require.NoError(t, err)
	require.NoError(t, s.Migrate(context.Background()))
	w, err := audit.NewWriter(s, &audit.WriterOptions{Mode: audit.Blocking, QueueSize: 20_000, BatchSize: 5000})
	require.NoError(t, err)

	var wg sync.WaitGroup
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range total / workers {
				e := audit.Event{KeyID: fmt.Sprintf("k%d", g), Outcome: audit.OutcomeAllowed, Method: "tools/call", Tool: "search", Status: 200, RPCID: fmt.Sprint(i)}
				if err := w.Record(context.Background(), e); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	require.NoError(t, w.Close(context.Background()))
	st := w.Stats()
	assert.Equal(t, audit.Stats{Written: uint64(total), Batches: st.Batches}, st)
	assert.Equal(t, total, count(t, db, s))
	v, err := s.Verify(context.Background(), time.Time{}, time.Time{})
	require.NoError(t, err)
	assert.Equal(t, int64(total), v.Events)
}

// TestNoKeyMaterial records the events the middleware produces for a key
// (its ID only; arguments redacted) through every sink, and checks that the
// secret appears in no output while the key ID does.
func TestNoKeyMaterial(t *testing.T) {
	const (
		keyID  = "7Hq2pXzT4k"
		secret = "s3cr3tP4rtN0b0dyM4yS33xYz1234567"
		rawKey = "mcp_" + keyID + secret + "0aB3c9"
	)
	args := json.RawMessage(`{"query":"q","api_key":"` + rawKey + `","nested":{"Authorization":"Bearer ` + rawKey + `"},"password":"` + secret + `"}`)
	base := audit.Event{
		Time: time.Now(), KeyID: keyID, UserID: "u1", Method: "tools/call", Tool: "search",
		Outcome: audit.OutcomeAllowed, Status: 200, Arguments: audit.RedactArguments(args, audit.DefaultRedactFields),
	}
	events := []audit.Event{base}
	for _, a := range []audit.Action{audit.ActionCreated, audit.ActionRotated, audit.ActionRevoked, audit.ActionExpiredKeyUsed} {
		e := base
		e.Action, e.Arguments = a, nil
		events = append(events, e)
	}
	unauth := base
	unauth.Outcome, unauth.Reason, unauth.Status, unauth.Arguments = audit.OutcomeUnauthenticated, "key_expired", 401, nil
	events = append(events, unauth)

	db := openSQLite(t)
	st := newStore(t, db, true)
	var jsonOut, slogOut bytes.Buffer
	w, err := audit.NewWriter(audit.Fanout(
		audit.NewJSONSink(&jsonOut),
		audit.NewSlogSink(slog.New(slog.NewTextHandler(&slogOut, nil))),
		st,
	), &audit.WriterOptions{Mode: audit.Strict})
	require.NoError(t, err)
	for _, e := range events {
		require.NoError(t, w.Record(context.Background(), e))
	}
	require.NoError(t, w.Close(context.Background()))

	var jl, csvOut bytes.Buffer
	_, err = st.Export(context.Background(), &jl, audit.Filter{}, sqlaudit.JSONLines)
	require.NoError(t, err)
	_, err = st.Export(context.Background(), &csvOut, audit.Filter{}, sqlaudit.CSV)
	require.NoError(t, err)
	dump := dumpTable(t, db, st.EventsTable())

	outputs := map[string]string{
		"json sink": jsonOut.String(), "slog sink": slogOut.String(), "sql rows": dump,
		"json export": jl.String(), "csv export": csvOut.String(),
	}
	for name, out := range outputs {
		assert.NotContains(t, out, secret, name)
		assert.NotContains(t, out, rawKey, name)
		assert.Contains(t, out, keyID, name)
		assert.Contains(t, out, audit.Redacted, name)
	}
}

// dumpTable returns every value of every row as text.
func dumpTable(t *testing.T, db *sql.DB, table string) string {
	t.Helper()
	rows, err := db.Query("SELECT * FROM " + table)
	require.NoError(t, err)
	defer rows.Close()
	cols, err := rows.Columns()
	require.NoError(t, err)
	var b strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		require.NoError(t, rows.Scan(ptrs...))
		for _, v := range vals {
			if bs, ok := v.([]byte); ok {
				v = string(bs)
			}
			fmt.Fprintf(&b, "%v|", v)
		}
		b.WriteByte('\n')
	}
	require.NoError(t, rows.Err())
	return b.String()
}
