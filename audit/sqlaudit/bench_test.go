package sqlaudit_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/audit/sqlaudit"
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
