package sqltest

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/audit/sqlaudit"
)

// A chained SQLite audit log behind an async writer: record, list, verify.
func Example() {
	dir, _ := os.MkdirTemp("", "audit")
	defer os.RemoveAll(dir)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "audit.db")+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
	if err != nil {
		panic(err)
	}
	defer db.Close()
	ctx := context.Background()

	store, err := sqlaudit.New(db, &sqlaudit.Options{Chain: true})
	if err != nil {
		panic(err)
	}
	if err := store.Migrate(ctx); err != nil {
		panic(err)
	}
	w, err := audit.NewWriter(store, &audit.WriterOptions{Mode: audit.Blocking})
	if err != nil {
		panic(err)
	}
	t0 := time.Date(2026, 3, 14, 15, 0, 0, 0, time.UTC)
	for i, tool := range []string{"search", "search", "delete"} {
		outcome := audit.OutcomeAllowed
		if tool == "delete" {
			outcome = audit.OutcomeDenied
		}
		_ = w.Record(ctx, audit.Event{Time: t0.Add(time.Duration(i) * time.Minute), KeyID: "k1", Method: "tools/call", Tool: tool, Outcome: outcome})
	}
	if err := w.Close(ctx); err != nil { // flushes
		panic(err)
	}

	page, err := store.Query(ctx, audit.Filter{KeyID: "k1", Limit: 2})
	if err != nil {
		panic(err)
	}
	for _, e := range page.Events {
		fmt.Println(e.Time.Format(time.TimeOnly), e.Tool, e.Outcome)
	}
	fmt.Println("more:", page.Next != "")

	usage, _ := store.Usage(ctx, sqlaudit.UsageQuery{Bucket: sqlaudit.Hour, By: sqlaudit.ByKey})
	for _, u := range usage {
		fmt.Printf("%s %s calls=%d denied=%d\n", u.Start.Format(time.DateTime), u.KeyID, u.Calls, u.Denied)
	}

	v, err := store.Verify(ctx, time.Time{}, time.Time{})
	fmt.Println("verified:", v.Events, err)
	// Output:
	// 15:02:00 delete denied
	// 15:01:00 search allowed
	// more: true
	// 2026-03-14 15:00:00 k1 calls=3 denied=1
	// verified: 3 <nil>
}
