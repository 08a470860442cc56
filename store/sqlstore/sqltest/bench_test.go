package sqltest

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/store"
	"github.com/mcpauth/mcpauth/store/sqlstore"
)

// Benchmarks of the SQL store on its own (no cache in front of it: every
// LookupKey is a database round trip). The key table holds 10,000 keys, or
// 1,000,000 with MCPAUTH_BENCH_LARGE=1. PostgreSQL runs when
// MCPAUTH_TEST_POSTGRES_DSN is set. See docs/bench/sqlstore.md.
//
//	MCPAUTH_BENCH_LARGE=1 go test -run '^$' -bench BenchmarkStore -benchtime 3s ./store/sqlstore/

const touchBatch = 10_000

func benchKeyCount() int {
	if os.Getenv("MCPAUTH_BENCH_LARGE") == "1" {
		return 1_000_000
	}
	return 10_000
}

func benchID(i int) string { return fmt.Sprintf("bk%010d", i) }

func BenchmarkStore(b *testing.B) {
	n := benchKeyCount()
	b.Run("sqlite", func(b *testing.B) {
		// MCPAUTH_BENCH_SQLITE_PRAGMAS adds to the DSN, for example
		// "&_pragma=mmap_size(1073741824)".
		db, err := sql.Open("sqlite", sqliteDSN(filepath.Join(b.TempDir(), "bench.db"))+os.Getenv("MCPAUTH_BENCH_SQLITE_PRAGMAS"))
		require.NoError(b, err)
		b.Cleanup(func() { _ = db.Close() })
		s, err := sqlstore.New(db, nil)
		require.NoError(b, err)
		require.NoError(b, s.Migrate(context.Background()))
		// Server-side generation in one statement (and so one transaction):
		// the fastest bulk load there is, and rows in exactly the encoding
		// CreateKey writes (checked below by LookupKey).
		loadKeys(b, db, n, `INSERT INTO `+s.KeysTable()+` (`+cols+`)
			WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < ?1)
			SELECT printf('bk%010d', i), 'user' || (i % 100000), 'bench key', randomblob(32), 1,
			       '["documents:read","write"]', 1767225600000000 + i, NULL, NULL, NULL, 0, '[]', '{"tier":"paid"}'
			FROM g`, "ANALYZE")
		benchStore(b, s, n)
	})
	b.Run("postgres", func(b *testing.B) {
		s := newPostgresStore(b)
		db := openPostgres(b)
		loadKeys(b, db, n, `INSERT INTO `+s.KeysTable()+` (`+cols+`)
			SELECT 'bk' || lpad(i::text, 10, '0'), 'user' || (i % 100000), 'bench key',
			       decode(md5(i::text) || md5((-i)::text), 'hex'), 1,
			       '["documents:read","write"]', '2026-01-01T00:00:00Z'::timestamptz + i * interval '1 microsecond',
			       NULL, NULL, NULL, 0, '[]', '{"tier":"paid"}'
			FROM generate_series(1, $1::int) AS i`, "ANALYZE "+s.KeysTable())
		benchStore(b, s, n)
	})
}

func loadKeys(b testing.TB, db *sql.DB, n int, insert, analyze string) {
	b.Helper()
	start := time.Now()
	_, err := db.ExecContext(context.Background(), insert, n)
	require.NoError(b, err)
	_, err = db.ExecContext(context.Background(), analyze)
	require.NoError(b, err)
	b.Logf("loaded %d keys in %v", n, time.Since(start).Round(time.Millisecond))
}

func benchStore(b *testing.B, s *sqlstore.Store, n int) {
	ctx := context.Background()
	k, err := s.LookupKey(ctx, benchID(n))
	require.NoError(b, err, "the bulk-loaded rows must decode")
	require.Len(b, k.Hash, 32)
	require.Equal(b, []string{"documents:read", "write"}, k.Scopes)

	b.Run(fmt.Sprintf("LookupKey/keys=%d", n), func(b *testing.B) {
		rng := rand.New(rand.NewPCG(1, uint64(b.N)))
		durations := make([]time.Duration, 0, b.N)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			id := benchID(1 + rng.IntN(n))
			start := time.Now()
			_, err := s.LookupKey(ctx, id)
			durations = append(durations, time.Since(start))
			if err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		reportPercentiles(b, durations)
	})

	b.Run(fmt.Sprintf("TouchKeys/touches=%d/keys=%d", touchBatch, n), func(b *testing.B) {
		// 10,000 distinct keys spread over the table, each moved forward on
		// every flush so that every row is really written.
		rng := rand.New(rand.NewPCG(2, 2))
		ids := rng.Perm(n)[:touchBatch]
		at := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
		batch := make([]store.Touch, touchBatch)
		durations := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := range b.N {
			b.StopTimer()
			for j, id := range ids {
				batch[j] = store.Touch{ID: benchID(1 + id), At: at.Add(time.Duration(i) * time.Second)}
			}
			b.StartTimer()
			start := time.Now()
			err := s.TouchKeys(ctx, batch)
			durations = append(durations, time.Since(start))
			if err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		reportPercentiles(b, durations)
		got, err := s.LookupKey(ctx, benchID(1+ids[0]))
		require.NoError(b, err)
		require.True(b, got.LastUsedAt.Equal(at.Add(time.Duration(b.N-1)*time.Second)), "the flush must have written")
	})
}

// reportPercentiles reports the median, p99 and maximum of per-operation
// durations, in microseconds.
func reportPercentiles(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	pct := func(p float64) float64 {
		i := int(p*float64(len(d))+0.5) - 1
		return float64(d[max(0, min(i, len(d)-1))].Nanoseconds()) / 1e3
	}
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	b.ReportMetric(float64(d[len(d)-1].Nanoseconds())/1e3, "max-µs")
}
