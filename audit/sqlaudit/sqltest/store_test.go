package sqltest

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/audit/audittest"
	"github.com/mcpauth/mcpauth/audit/sqlaudit"
	"github.com/mcpauth/mcpauth/store/sqlstore"
)

func TestConformance(t *testing.T) {
	for _, b := range backends {
		for _, chain := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/chain=%v", b.name, chain), func(t *testing.T) {
				db := b.open(t)
				audittest.Run(t, func(t *testing.T) audittest.Harness {
					s := newStore(t, db, chain)
					return audittest.Harness{Sink: s, Events: func(t *testing.T) []audit.Event { return queryAll(t, s, audit.Filter{}) }}
				})
			})
		}
	}
}

func TestNewOptions(t *testing.T) {
	db := openSQLite(t)
	_, err := sqlaudit.New(nil, nil)
	assert.ErrorIs(t, err, sqlaudit.ErrInvalidOption)
	for _, o := range []sqlaudit.Options{
		{TablePrefix: "Bad-Prefix"},
		{TablePrefix: "x; DROP TABLE y; --"},
		{TablePrefix: strings.Repeat("a", 41)},
		{MaxRowsPerInsert: -1},
		{MaxRowsPerInsert: 1171}, // SQLite: 28 parameters a row, 32,766 a statement
		{MaxRowsPerInsert: 10_001, Dialect: sqlstore.Postgres},
		{Dialect: sqlstore.Dialect(9)},
	} {
		_, err := sqlaudit.New(db, &o)
		assert.ErrorIs(t, err, sqlaudit.ErrInvalidOption, "%+v", o)
	}
	_, err = sqlaudit.New(db, &sqlaudit.Options{MaxRowsPerInsert: 1170})
	assert.NoError(t, err)
	_, err = sqlaudit.New(db, &sqlaudit.Options{MaxRowsPerInsert: 10_000, Dialect: sqlstore.Postgres})
	assert.NoError(t, err)
	s, err := sqlaudit.New(db, nil)
	require.NoError(t, err)
	assert.Equal(t, sqlstore.SQLite, s.Dialect(), "detected")
	assert.Equal(t, "mcpauth_audit_events", s.EventsTable())
	assert.Equal(t, "mcpauth_schema_migrations", s.MigrationsTable())
}

func TestMigrate(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			db := b.open(t)
			prefix := uniquePrefix()
			s, err := sqlaudit.New(db, &sqlaudit.Options{TablePrefix: prefix, Dialect: b.dialect})
			require.NoError(t, err)
			dropTables(t, db, s)
			// Concurrent first runs, then again: one application, no errors.
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			for range 4 {
				wg.Add(1)
				go func() { defer wg.Done(); errs <- s.Migrate(context.Background()) }()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			require.NoError(t, s.Migrate(context.Background()))
			var n int
			require.NoError(t, db.QueryRow("SELECT COUNT(*) FROM "+s.MigrationsTable()+" WHERE component = 'audit'").Scan(&n))
			assert.Equal(t, 4, n)

			// The key store shares the migrations table under its own component.
			ks, err := sqlstore.New(db, &sqlstore.Options{TablePrefix: prefix, Dialect: b.dialect})
			require.NoError(t, err)
			t.Cleanup(func() {
				_, _ = db.Exec("DROP TABLE IF EXISTS " + ks.KeysTable())
				_, _ = db.Exec("DROP TABLE IF EXISTS " + ks.AddressesTable())
			})
			require.NoError(t, ks.Migrate(context.Background()))
			require.NoError(t, s.Migrate(context.Background()))
			require.NoError(t, db.QueryRow("SELECT COUNT(*) FROM "+s.MigrationsTable()+" WHERE component = 'audit'").Scan(&n))
			assert.Equal(t, 4, n, "the key store's rows are not ours")
			require.NoError(t, db.QueryRow("SELECT COUNT(*) FROM "+s.MigrationsTable()+" WHERE component = 'keys'").Scan(&n))
			assert.Positive(t, n)

			schema, err := s.Schema()
			require.NoError(t, err)
			assert.Contains(t, schema, "CREATE TABLE "+prefix+"audit_events")
			assert.NotContains(t, schema, "{{prefix}}")
		})
	}
}

func TestRecordBeforeMigrateFails(t *testing.T) {
	db := openSQLite(t)
	s, err := sqlaudit.New(db, &sqlaudit.Options{Dialect: sqlstore.SQLite})
	require.NoError(t, err)
	err = s.Record(context.Background(), audit.Event{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "mcpauth/sqlaudit: record")
}

// TestRecordStoresTextExactly pins that every field is stored byte for
// byte, whatever the insert path (PostgreSQL's rows travel as JSON):
// quotes, backslashes, control characters, JSON escapes that must stay
// literal, non-ASCII text, extreme integers and times before 1970 or with
// microseconds.
func TestRecordStoresTextExactly(t *testing.T) {
	tricky := "q\"uote \\ back\\slash \\u0041 \n\r\t\x01\x1f\x7f é 漢字 \u2028 😀 </script> '; DROP TABLE x; --"
	evs := []audit.Event{{
		ID: "id-" + tricky, Time: time.Date(1969, 7, 20, 20, 17, 40, 123456000, time.UTC),
		RequestID: tricky, UserID: tricky, KeyID: tricky, Outcome: audit.Outcome(tricky), Reason: tricky,
		Action: audit.Action(tricky), Method: tricky, Tool: tricky, ResourceURI: tricky, Prompt: tricky,
		RPCID: tricky, SessionID: tricky, ProtocolVersion: tricky, ClientIP: tricky, UserAgent: tricky,
		Status: -2147483648, Duration: time.Duration(math.MaxInt64), Count: 3,
		Arguments: json.RawMessage(`{"a":"\u0041\n","b":[1,2.50,-0]}`), Attributes: map[string]string{"k\"": tricky},
		Instance: tricky, Actor: tricky, Credential: tricky,
	}, {
		ID: "plain", Time: time.Date(2026, 12, 2, 6, 41, 12, 999999000, time.UTC), Status: 200,
	}}
	eachBackend(t, true, func(t *testing.T, db *sql.DB, s *sqlaudit.Store) {
		require.NoError(t, s.RecordBatch(context.Background(), evs))
		got := queryAll(t, s, audit.Filter{})
		require.Len(t, got, 2)
		byID := map[string]audit.Event{got[0].ID: got[0], got[1].ID: got[1]}
		for _, want := range evs {
			g, ok := byID[want.ID]
			require.True(t, ok, "event %q read back", want.ID)
			assert.True(t, want.Time.Equal(g.Time), "time %v read back as %v", want.Time, g.Time)
			g.Time = want.Time
			assert.Equal(t, want, g)
		}
		v, err := s.Verify(context.Background(), time.Time{}, time.Time{})
		require.NoError(t, err)
		assert.Equal(t, 2, int(v.Events))
	})
}

func TestRecordFillsAndCleans(t *testing.T) {
	eachBackend(t, true, func(t *testing.T, db *sql.DB, s *sqlaudit.Store) {
		require.NoError(t, s.Record(context.Background(), audit.Event{
			UserID: "bad\xffutf8\x00nul", Arguments: json.RawMessage(`{broken`),
		}))
		got := queryAll(t, s, audit.Filter{})
		require.Len(t, got, 1)
		assert.Len(t, got[0].ID, 20, "an ID is assigned")
		assert.WithinDuration(t, time.Now(), got[0].Time, time.Minute, "a time is assigned")
		assert.Equal(t, "bad\uFFFDutf8\uFFFDnul", got[0].UserID)
		assert.JSONEq(t, `"{broken"`, string(got[0].Arguments), "invalid JSON is kept as a string")
		_, err := s.Verify(context.Background(), time.Time{}, time.Time{})
		require.NoError(t, err)
	})
}

// TestUnsetFieldsStoreColumnDefaults reads the raw columns of an event that
// sets nothing but its ID and time, written alone and in a batch beside a
// full event (each dialect leaves unset values out of what it sends): text
// is ”, numbers are 0, arguments and attributes are NULL, exactly as if
// every column had been sent; the full event's columns are all set.
func TestUnsetFieldsStoreColumnDefaults(t *testing.T) {
	for _, chain := range []bool{false, true} {
		eachBackend(t, chain, func(t *testing.T, db *sql.DB, s *sqlaudit.Store) {
			at := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
			require.NoError(t, s.Record(context.Background(), audit.Event{ID: "alone", Time: at}))
			require.NoError(t, s.RecordBatch(context.Background(), []audit.Event{
				audittest.FullEvent("full"), {ID: "beside", Time: at},
			}))
			q := `SELECT id, request_id || user_id || key_id || outcome || reason || action || method || tool ||
				resource_uri || prompt || rpc_id || session_id || protocol_version || client_ip || user_agent ||
				instance || actor || credential, status, duration_ns, event_count,
				arguments IS NULL, attributes IS NULL, prev_hash IS NULL, hash IS NULL FROM ` + s.EventsTable() + ` ORDER BY seq`
			rows, err := db.QueryContext(context.Background(), q)
			require.NoError(t, err)
			defer rows.Close()
			var seen []string
			for rows.Next() {
				var id, text string
				var status, duration, count int64
				var noArgs, noAttrs, noPrev, noHash bool
				require.NoError(t, rows.Scan(&id, &text, &status, &duration, &count, &noArgs, &noAttrs, &noPrev, &noHash))
				seen = append(seen, id)
				if id == "full" {
					assert.NotEmpty(t, text)
					assert.NotZero(t, status)
					assert.NotZero(t, duration)
					assert.NotZero(t, count)
					assert.False(t, noArgs || noAttrs, "full event: arguments and attributes stored")
					assert.Equal(t, !chain, noHash, "full event: hash stored iff chained")
					continue
				}
				assert.Empty(t, text, "%s: every text column is ''", id)
				assert.Zero(t, status+duration+count, "%s: every number is 0", id)
				assert.True(t, noArgs && noAttrs, "%s: arguments and attributes are NULL", id)
				assert.Equal(t, !chain, noHash, "%s: hash stored iff chained", id)
				assert.Equal(t, !chain || id == "alone", noPrev, "%s: prev_hash NULL only before the first chained event", id)
			}
			require.NoError(t, rows.Err())
			assert.Equal(t, []string{"alone", "full", "beside"}, seen)
		})
	}
}

// seed writes n events a second apart from audittest.Base, cycling through
// users, keys, outcomes and tools.
func seed(t testing.TB, s *sqlaudit.Store, n int) []audit.Event {
	t.Helper()
	events := seedEvents(n)
	for start := 0; start < n; start += 37 {
		require.NoError(t, s.RecordBatch(context.Background(), events[start:min(start+37, n)]))
	}
	return events
}

func ids(events []audit.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

func TestQuery(t *testing.T) {
	eachBackend(t, false, func(t *testing.T, db *sql.DB, s *sqlaudit.Store) {
		events := seed(t, s, 60)
		// Plus a lifecycle event.
		require.NoError(t, s.Record(context.Background(), audit.Event{Time: audittest.Base, ID: "life", KeyID: "k1", UserID: "u1", Action: audit.ActionRotated}))
		want := func(keep func(i int, e audit.Event) bool) []string {
			var out []string
			for i := len(events) - 1; i >= 0; i-- {
				if keep(i, events[i]) {
					out = append(out, events[i].ID)
				}
			}
			return out
		}
		cases := []struct {
			name string
			f    audit.Filter
			want []string
		}{
			{"user", audit.Filter{UserID: "u1"}, append(want(func(i int, _ audit.Event) bool { return i%3 == 1 }), "life")},
			{"key", audit.Filter{KeyID: "k2"}, want(func(i int, _ audit.Event) bool { return i%4 == 2 })},
			{"outcome", audit.Filter{Outcome: audit.OutcomeDenied}, want(func(i int, _ audit.Event) bool { return i%5 == 2 })},
			{"tool and key", audit.Filter{Tool: "tool1", KeyID: "k1"}, want(func(i int, _ audit.Event) bool { return i%2 == 1 && i%4 == 1 })},
			{"method", audit.Filter{Method: "tools/call", UserID: "u0"}, want(func(i int, _ audit.Event) bool { return i%3 == 0 })},
			{"action", audit.Filter{Action: audit.ActionRotated}, []string{"life"}},
			{"time range", audit.Filter{From: audittest.Base.Add(10 * time.Second), To: audittest.Base.Add(20 * time.Second)},
				want(func(i int, _ audit.Event) bool { return i >= 10 && i < 20 })},
			{"no match", audit.Filter{UserID: "nobody"}, nil},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				for _, limit := range []int{0, 1, 7, 1000} {
					f := c.f
					f.Limit = limit
					got := queryAll(t, s, f)
					assert.Equal(t, c.want, nilIfEmpty(ids(got)), "limit %d", limit)
				}
			})
		}
		// Newest first, full page, cursor.
		p, err := s.Query(context.Background(), audit.Filter{Limit: 5})
		require.NoError(t, err)
		assert.Equal(t, []string{"ev00059", "ev00058", "ev00057", "ev00056", "ev00055"}, ids(p.Events))
		assert.NotEmpty(t, p.Next)

		_, err = s.Query(context.Background(), audit.Filter{Cursor: "garbage!"})
		assert.ErrorIs(t, err, sqlaudit.ErrInvalidCursor)
		_, err = s.Query(context.Background(), audit.Filter{Cursor: "djEuMS4w"}) // "v1.1.0"
		assert.ErrorIs(t, err, sqlaudit.ErrInvalidCursor)
		_, err = s.Query(context.Background(), audit.Filter{Limit: -1})
		assert.ErrorIs(t, err, sqlaudit.ErrInvalidFilter)
	})
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func TestQueryPaginationUnderConcurrentInserts(t *testing.T) {
	eachBackend(t, true, func(t *testing.T, db *sql.DB, s *sqlaudit.Store) {
		events := seed(t, s, 50)
		ctx := context.Background()
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// New events: some newer than everything, some with times
				// inside the range being listed.
				at := time.Now()
				if i%2 == 1 {
					at = audittest.Base.Add(time.Duration(i%50)*time.Second + 500*time.Millisecond)
				}
				e := audit.Event{Time: at, ID: fmt.Sprintf("new%04d", i), Outcome: audit.OutcomeAllowed}
				if err := s.Record(ctx, e); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		f := audit.Filter{To: audittest.Base.Add(time.Hour), Limit: 6}
		var got []audit.Event
		for {
			p, err := s.Query(ctx, f)
			require.NoError(t, err)
			got = append(got, p.Events...)
			// Also page without the To bound: new events are never between pages.
			if p.Next == "" {
				break
			}
			f.Cursor = p.Next
			time.Sleep(time.Millisecond)
		}
		close(stop)
		wg.Wait()
		var want []string
		for i := len(events) - 1; i >= 0; i-- {
			want = append(want, events[i].ID)
		}
		var old []string
		seen := map[string]bool{}
		for i, e := range got {
			require.False(t, seen[e.ID], "%s listed twice", e.ID)
			seen[e.ID] = true
			if i > 0 {
				require.False(t, e.Time.After(got[i-1].Time), "newest first")
			}
			if strings.HasPrefix(e.ID, "ev") {
				old = append(old, e.ID)
			}
		}
		assert.Equal(t, want, old, "every event written before the listing, once, in order")
		_, err := s.Verify(ctx, time.Time{}, time.Time{})
		require.NoError(t, err)
	})
}

func TestExport(t *testing.T) {
	eachBackend(t, false, func(t *testing.T, db *sql.DB, s *sqlaudit.Store) {
		ctx := context.Background()
		full := audittest.FullEvent("full")
		full.UserAgent = "=HYPERLINK(\"http://evil\")"
		require.NoError(t, s.Record(ctx, full))
		seed(t, s, 1500) // more than one export page

		var jl bytes.Buffer
		n, err := s.Export(ctx, &jl, audit.Filter{}, sqlaudit.JSONLines)
		require.NoError(t, err)
		assert.Equal(t, int64(1501), n)
		lines := strings.Split(strings.TrimSpace(jl.String()), "\n")
		require.Len(t, lines, 1501)
		var first, last audit.Event
		require.NoError(t, json.Unmarshal([]byte(lines[0]), &first))
		require.NoError(t, json.Unmarshal([]byte(lines[1500]), &last))
		assert.Equal(t, "ev01499", first.ID, "newest first")
		audittest.AssertEqual(t, full, last)

		var cb bytes.Buffer
		n, err = s.Export(ctx, &cb, audit.Filter{KeyID: "k8Hq2pXzT4"}, sqlaudit.CSV)
		require.NoError(t, err)
		assert.Equal(t, int64(1), n)
		recs, err := csv.NewReader(&cb).ReadAll()
		require.NoError(t, err)
		require.Len(t, recs, 2)
		assert.Equal(t, sqlaudit.CSVHeader, recs[0])
		row := map[string]string{}
		for i, h := range recs[0] {
			row[h] = recs[1][i]
		}
		assert.Equal(t, "2026-03-14T09:39:26.535897Z", row["time"])
		assert.Equal(t, "full", row["id"])
		assert.Equal(t, "403", row["status"])
		assert.Equal(t, "1234567", row["duration_ns"])
		assert.Equal(t, "'=HYPERLINK(\"http://evil\")", row["user_agent"], "formula neutralised")
		assert.JSONEq(t, `{"region":"eu","tenant":"acme"}`, row["attributes"])
		assert.JSONEq(t, string(full.Arguments), row["arguments"])

		_, err = s.Export(ctx, &cb, audit.Filter{}, sqlaudit.Format(9))
		assert.ErrorIs(t, err, sqlaudit.ErrInvalidFilter)
	})
}

func TestUsage(t *testing.T) {
	eachBackend(t, false, func(t *testing.T, db *sql.DB, s *sqlaudit.Store) {
		ctx := context.Background()
		h := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
		add := func(at time.Time, key, tool string, o audit.Outcome) {
			require.NoError(t, s.Record(ctx, audit.Event{Time: at, KeyID: key, Tool: tool, Method: "tools/call", Outcome: o}))
		}
		add(h.Add(1*time.Minute), "k1", "search", audit.OutcomeAllowed)
		add(h.Add(2*time.Minute), "k1", "search", audit.OutcomeAllowed)
		add(h.Add(3*time.Minute), "k1", "delete", audit.OutcomeDenied)
		add(h.Add(4*time.Minute), "k2", "search", audit.OutcomeRateLimited)
		add(h.Add(61*time.Minute), "k1", "search", audit.OutcomeError)
		add(h.Add(25*time.Hour), "k2", "search", audit.OutcomeUnauthenticated)
		require.NoError(t, s.Record(ctx, audit.Event{Time: h, KeyID: "k1", Action: audit.ActionCreated}))
		require.NoError(t, s.Record(ctx, audit.Event{Time: h, KeyID: "k1", Method: "tools/list", Outcome: audit.OutcomeAllowed}))

		got, err := s.Usage(ctx, sqlaudit.UsageQuery{})
		require.NoError(t, err)
		assert.Equal(t, []sqlaudit.UsageRow{
			{Start: h, KeyID: "k1", Calls: 4, Allowed: 3, Denied: 1},
			{Start: h, KeyID: "k2", Calls: 1, RateLimited: 1},
			{Start: h.Add(time.Hour), KeyID: "k1", Calls: 1, Errors: 1},
			{Start: h.Add(25 * time.Hour), KeyID: "k2", Calls: 1, Unauthenticated: 1},
		}, got)

		day := h.Truncate(24 * time.Hour)
		got, err = s.Usage(ctx, sqlaudit.UsageQuery{Bucket: sqlaudit.Day, By: sqlaudit.ByTool, To: day.Add(24 * time.Hour)})
		require.NoError(t, err)
		assert.Equal(t, []sqlaudit.UsageRow{
			{Start: day, Tool: "delete", Calls: 1, Denied: 1},
			{Start: day, Tool: "search", Calls: 4, Allowed: 2, RateLimited: 1, Errors: 1},
		}, got)

		got, err = s.Usage(ctx, sqlaudit.UsageQuery{Bucket: sqlaudit.Day, By: sqlaudit.ByKeyAndTool, KeyID: "k1", From: h})
		require.NoError(t, err)
		assert.Equal(t, []sqlaudit.UsageRow{
			{Start: day, KeyID: "k1", Tool: "delete", Calls: 1, Denied: 1},
			{Start: day, KeyID: "k1", Tool: "search", Calls: 3, Allowed: 2, Errors: 1},
		}, got)

		got, err = s.Usage(ctx, sqlaudit.UsageQuery{UserID: "nobody"})
		require.NoError(t, err)
		assert.Empty(t, got)
		_, err = s.Usage(ctx, sqlaudit.UsageQuery{Bucket: 5})
		assert.ErrorIs(t, err, sqlaudit.ErrInvalidFilter)
		_, err = s.Usage(ctx, sqlaudit.UsageQuery{By: 5})
		assert.ErrorIs(t, err, sqlaudit.ErrInvalidFilter)
	})
}

// seedEvents are the n events seed writes, the same on every call.
func seedEvents(n int) []audit.Event {
	outcomes := []audit.Outcome{audit.OutcomeAllowed, audit.OutcomeAllowed, audit.OutcomeDenied, audit.OutcomeRateLimited, audit.OutcomeUnauthenticated}
	var events []audit.Event
	for i := range n {
		events = append(events, audit.Event{
			Time:    audittest.Base.Add(time.Duration(i) * time.Second),
			ID:      fmt.Sprintf("ev%05d", i),
			UserID:  fmt.Sprintf("u%d", i%3),
			KeyID:   fmt.Sprintf("k%d", i%4),
			Outcome: outcomes[i%len(outcomes)],
			Method:  "tools/call",
			Tool:    fmt.Sprintf("tool%d", i%2),
			Status:  200,
		})
	}
	return events
}
