package sqltest

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/audit/sqlaudit"
)

// TestAggregatedEventCount: Event.Count is stored, covered by the chain
// (editing it breaks Verify), and weighted in Usage.
func TestAggregatedEventCount(t *testing.T) {
	eachBackend(t, true, func(t *testing.T, db *sql.DB, s *sqlaudit.Store) {
		ctx := context.Background()
		h := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
		require.NoError(t, s.Record(ctx, audit.Event{Time: h, ID: "one", KeyID: "k1", Method: "tools/call", Tool: "save_note", Outcome: audit.OutcomeAllowed}))
		require.NoError(t, s.Record(ctx, audit.Event{Time: h.Add(time.Second), ID: "agg", KeyID: "k1", Method: "tools/call", Tool: "save_note",
			Outcome: audit.OutcomeRateLimited, Count: 4999}))
		got := queryAll(t, s, audit.Filter{})
		require.Len(t, got, 2)
		assert.Equal(t, 4999, got[0].Count)
		assert.Zero(t, got[1].Count)
		_, err := verifyAll(s)
		require.NoError(t, err)

		rows, err := s.Usage(ctx, sqlaudit.UsageQuery{})
		require.NoError(t, err)
		assert.Equal(t, []sqlaudit.UsageRow{{Start: h, KeyID: "k1", Calls: 5000, Allowed: 1, RateLimited: 4999}}, rows)

		exec(t, db, s, "UPDATE "+s.EventsTable()+" SET event_count = 1 WHERE id = $1", "agg")
		ce := chainError(t, mustFail(verifyAll(s)))
		assert.Equal(t, int64(2), ce.Seq, "the edited count is detected")
	})
}

func mustFail(_ sqlaudit.Verification, err error) error { return err }

// TestChainWrittenBeforeEventCountVerifies upgrades a chained log from the
// schema without event_count: its rows verify after the migration, and
// the chain continues through aggregated events.
func TestChainWrittenBeforeEventCountVerifies(t *testing.T) {
	db := openSQLite(t)
	s := newStore(t, db, true)
	ctx := context.Background()
	for i := range 3 {
		require.NoError(t, s.Record(ctx, audit.Event{KeyID: "k1", Outcome: audit.OutcomeAllowed, Status: 200 + i}))
	}
	// Back to the first schema version: the column and its migration gone.
	exec(t, db, s, "ALTER TABLE "+s.EventsTable()+" DROP COLUMN event_count")
	exec(t, db, s, "DELETE FROM "+s.MigrationsTable()+" WHERE component = 'audit' AND version = 2")

	require.NoError(t, s.Migrate(ctx))
	v, err := verifyAll(s)
	require.NoError(t, err)
	assert.Equal(t, int64(3), v.Events)
	require.NoError(t, s.Record(ctx, audit.Event{KeyID: "k1", Outcome: audit.OutcomeAllowed, Count: 7}))
	v, err = verifyAll(s)
	require.NoError(t, err)
	assert.Equal(t, int64(4), v.Events)
}
