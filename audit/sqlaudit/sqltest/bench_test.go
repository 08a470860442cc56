package sqltest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/audit/sqlaudit"
	"github.com/mcpauth/mcpauth/store/sqlstore"
)

func benchEvents(n int) []audit.Event {
	out := make([]audit.Event, n)
	for i := range out {
		out[i] = audit.Event{
			ID: audit.NewEventID(), RequestID: "req-0123456789", UserID: "user_42", KeyID: fmt.Sprintf("k%d", i%50),
			Outcome: audit.OutcomeAllowed, Method: "tools/call", Tool: "search_docs", RPCID: "17",
			SessionID: "sess-abcdef", ProtocolVersion: "2025-06-18", Status: 200,
			ClientIP: "203.0.113.7", UserAgent: "claude-code/1.0",
		}
	}
	return out
}

// BenchmarkRecordBatch is the cost per event of RecordBatch with 1000-event
// batches, by rows per INSERT.
func BenchmarkRecordBatch(b *testing.B) {
	for _, be := range backends {
		for _, rowsPer := range []int{1, 10, 50, 200, 500} {
			b.Run(fmt.Sprintf("%s/rows=%d", be.name, rowsPer), func(b *testing.B) {
				db := be.open(b)
				s, err := sqlaudit.New(db, &sqlaudit.Options{TablePrefix: uniquePrefix(), MaxRowsPerInsert: rowsPer, Dialect: be.dialect})
				require.NoError(b, err)
				dropTables(b, db, s)
				require.NoError(b, s.Migrate(context.Background()))
				evs := benchEvents(1000)
				b.ResetTimer()
				for i := 0; i < b.N; i += len(evs) {
					require.NoError(b, s.RecordBatch(context.Background(), evs))
				}
			})
		}
	}
}

// BenchmarkThroughput is sustained recording throughput from 8 concurrent
// "requests" per core, reported as events/s (the clock includes Close, so
// every event is in the database) with the number of events lost:
//
//   - writer: an audit.Writer in Blocking mode in front of the Store;
//   - writer-chain: the same with Options.Chain;
//   - insert-per-event: the seed's approach, one autocommitted INSERT per
//     event on the request path;
//   - slog-json-file (no database): audit.NewSlogSink over slog's JSON
//     handler writing to a file, on the request path;
//   - sqlite/driver-floor: what database/sql and modernc.org/sqlite alone
//     reach on the same schema, with nothing else running (see
//     driverFloor); -without-key-index and -without-indexes drop indexes
//     after Migrate, to show what each costs.
func BenchmarkThroughput(b *testing.B) {
	for _, be := range backends {
		for _, chain := range []bool{false, true} {
			name := "writer"
			if chain {
				name = "writer-chain"
			}
			b.Run(be.name+"/"+name, func(b *testing.B) {
				db := be.open(b)
				s, err := sqlaudit.New(db, &sqlaudit.Options{TablePrefix: uniquePrefix(), Chain: chain, Dialect: be.dialect})
				require.NoError(b, err)
				dropTables(b, db, s)
				require.NoError(b, s.Migrate(context.Background()))
				w, err := audit.NewWriter(s, &audit.WriterOptions{Mode: audit.Blocking, QueueSize: 20_000, BatchSize: 2000})
				require.NoError(b, err)
				runThroughput(b, w.Record)
				require.NoError(b, w.Close(context.Background()))
				b.StopTimer()
				reportRate(b)
				st := w.Stats()
				b.ReportMetric(float64(st.Dropped+st.Failed+st.Rejected), "lost")
				require.Equal(b, b.N, count(b, db, s))
			})
		}
		b.Run(be.name+"/insert-per-event", func(b *testing.B) {
			db := be.open(b)
			s, err := sqlaudit.New(db, &sqlaudit.Options{TablePrefix: uniquePrefix(), Dialect: be.dialect})
			require.NoError(b, err)
			dropTables(b, db, s)
			require.NoError(b, s.Migrate(context.Background()))
			q := "INSERT INTO " + s.EventsTable() + " (seq, id, event_time, key_id, user_id, outcome, method, tool, status, client_ip, user_agent) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
			if be.dialect == sqlstore.SQLite {
				q = strings.ReplaceAll(q, "$", "?")
			}
			var seq atomic.Int64
			var lost atomic.Int64
			runThroughput(b, func(ctx context.Context, e audit.Event) error {
				var t any = e.Time.UTC()
				if be.dialect == sqlstore.SQLite {
					t = e.Time.UnixMicro()
				}
				_, err := db.ExecContext(ctx, q, seq.Add(1), e.ID, t, e.KeyID, e.UserID, string(e.Outcome), e.Method, e.Tool, e.Status, e.ClientIP, e.UserAgent)
				if err != nil {
					lost.Add(1)
				}
				return err
			})
			b.StopTimer()
			reportRate(b)
			b.ReportMetric(float64(lost.Load()), "lost")
		})
	}
	for _, floor := range []struct {
		name string
		drop []string // indexes dropped after Migrate
	}{
		{"sqlite/driver-floor", nil},
		{"sqlite/driver-floor-without-key-index", []string{"key"}},
		{"sqlite/driver-floor-without-indexes", []string{"time", "user", "key"}},
	} {
		b.Run(floor.name, func(b *testing.B) { driverFloor(b, floor.drop) })
	}
	b.Run("slog-json-file", func(b *testing.B) {
		f, err := os.Create(filepath.Join(b.TempDir(), "audit.log"))
		require.NoError(b, err)
		defer f.Close()
		sink := audit.NewSlogSink(slog.New(slog.NewJSONHandler(f, nil)))
		runThroughput(b, sink.Record)
		b.StopTimer()
		reportRate(b)
		b.ReportMetric(0, "lost")
	})
}

func runThroughput(b *testing.B, record func(context.Context, audit.Event) error) {
	ev := benchEvents(1)[0]
	ev.Time = time.Now()
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			e := ev
			e.ID = audit.NewEventID()
			_ = record(ctx, e)
		}
	})
}

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// driverFloor inserts b.N rows like the writer's (the same columns and
// values, no hashes) from one goroutine through one prepared statement,
// 2,000 rows per transaction, into the Store's schema less the indexes in
// drop ("time", "user", "key"). The Writer cannot beat it: the gap is what
// the Writer and the Store add.
func driverFloor(b *testing.B, drop []string) {
	db := openSQLite(b)
	s, err := sqlaudit.New(db, &sqlaudit.Options{TablePrefix: uniquePrefix(), Dialect: sqlstore.SQLite})
	require.NoError(b, err)
	dropTables(b, db, s)
	ctx := context.Background()
	require.NoError(b, s.Migrate(ctx))
	for _, ix := range drop {
		_, err := db.ExecContext(ctx, "DROP INDEX "+s.EventsTable()+"_"+ix+"_idx")
		require.NoError(b, err)
	}
	// The columns the Store's INSERT names for this event: those it sets.
	q := "INSERT INTO " + s.EventsTable() + " (seq, id, event_time, request_id, user_id, key_id, outcome, method, tool, rpc_id, session_id, protocol_version, status, client_ip, user_agent) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
	e := benchEvents(1)[0]
	us := time.Now().UnixMicro()
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		tx, err := db.BeginTx(ctx, nil)
		require.NoError(b, err)
		st, err := tx.PrepareContext(ctx, q)
		require.NoError(b, err)
		for n := 0; n < 2000 && done < b.N; n++ {
			done++
			_, err = st.ExecContext(ctx, int64(done), audit.NewEventID(), us+int64(done), e.RequestID, e.UserID, e.KeyID,
				string(e.Outcome), e.Method, e.Tool, e.RPCID, e.SessionID, e.ProtocolVersion, int64(e.Status), e.ClientIP, e.UserAgent)
			require.NoError(b, err)
		}
		require.NoError(b, st.Close())
		require.NoError(b, tx.Commit())
	}
	b.StopTimer()
	reportRate(b)
	b.ReportMetric(0, "lost")
	require.Equal(b, b.N, count(b, db, s))
}
