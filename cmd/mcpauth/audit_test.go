package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/audit/sqlaudit"
)

// seedEvents writes the events with a chained store, as a server would.
func (h *harness) seedEvents(events ...audit.Event) {
	h.t.Helper()
	s, err := sqlaudit.New(h.openDB(), &sqlaudit.Options{Chain: true})
	require.NoError(h.t, err)
	require.NoError(h.t, s.RecordBatch(context.Background(), events))
}

func sampleEvents() []audit.Event {
	at := func(min int) time.Time { return t0.Add(-time.Hour).Add(time.Duration(min) * time.Minute) }
	return []audit.Event{
		{ID: "ev01", Time: at(0), UserID: "alice", KeyID: "AbCdEfGhIjKl", Action: audit.ActionCreated, Outcome: audit.OutcomeAllowed},
		{ID: "ev02", Time: at(1), RequestID: "req-1", UserID: "alice", KeyID: "AbCdEfGhIjKl", Outcome: audit.OutcomeAllowed, Method: "tools/call", Tool: "search_docs", Status: 200, Duration: 1500 * time.Microsecond, ClientIP: "203.0.113.7", UserAgent: "claude-desktop/1.0", SessionID: "s-1"},
		{ID: "ev03", Time: at(2), RequestID: "req-2", UserID: "alice", KeyID: "AbCdEfGhIjKl", Outcome: audit.OutcomeDenied, Reason: "insufficient_scope", Method: "tools/call", Tool: "delete_doc", Status: 403, ClientIP: "203.0.113.7"},
		{ID: "ev04", Time: at(3), RequestID: "req-3", Outcome: audit.OutcomeUnauthenticated, Reason: "invalid_key", Status: 401, ClientIP: "198.51.100.9", UserAgent: "=cmd|' /C calc'!A0"},
		{ID: "ev05", Time: at(4), RequestID: "req-4", UserID: "bob", KeyID: "ZyXwVuTsRqPo", Outcome: audit.OutcomeAllowed, Method: "resources/read", ResourceURI: "notes://bob/1", Status: 200},
		{ID: "ev06", Time: at(5), RequestID: "req-5", UserID: "bob", KeyID: "ZyXwVuTsRqPo", Outcome: audit.OutcomeRateLimited, Reason: "rate_limited", Method: "tools/call", Tool: "search_docs", Status: 429},
		{ID: "ev07", Time: at(6), UserID: "alice", KeyID: "AbCdEfGhIjKl", Action: audit.ActionRevoked, Outcome: audit.OutcomeAllowed, Attributes: map[string]string{"via": "cli"}},
	}
}

var cursorRE = regexp.MustCompile(`--cursor (\S+)`)

func TestAudit(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.maskHashes = true
	h.must(exitOK, "migrate")
	h.must(exitOK, "audit", "verify") // an empty log
	h.seedEvents(sampleEvents()...)

	r := h.must(exitOK, "audit", "tail")
	assert.Equal(t, 8, strings.Count(r.stdout, "\n"), "header and seven events")
	r = h.must(exitOK, "audit", "tail", "-n", "2")
	assert.Regexp(t, `(?s)ev|bob.*rate_limited.*\n.*alice.*key.revoked`, r.stdout, "oldest first")
	h.must(exitOK, "audit", "tail", "-n", "3", "--user", "alice", "--json")
	h.must(exitOK, "audit", "tail", "-n", "0")

	h.must(exitOK, "audit", "query")
	h.must(exitOK, "audit", "query", "--user", "alice", "--method", "tools/call")
	h.must(exitOK, "audit", "query", "--outcome", "denied", "--json")
	h.must(exitOK, "audit", "query", "--action", "revoked")
	h.must(exitOK, "audit", "query", "--tool", "search_docs", "--key", "ZyXwVuTsRqPo")
	h.must(exitOK, "audit", "query", "--from", t0.Add(-57*time.Minute).Format(time.RFC3339), "--to", t0.Add(-55*time.Minute).Format(time.RFC3339))
	h.must(exitOK, "audit", "query", "--user", "nobody")

	// Paging: a page of three, then the rest with the printed cursor.
	r = h.must(exitOK, "audit", "query", "--limit", "3")
	m := cursorRE.FindStringSubmatch(r.stderr)
	require.NotNil(t, m, r.stderr)
	r2 := h.must(exitOK, "audit", "query", "--limit", "3", "--cursor", m[1])
	r3 := h.must(exitOK, "audit", "query", "--limit", "3", "--cursor", cursorRE.FindStringSubmatch(r2.stderr)[1], "--json")
	var last struct {
		Events []audit.Event `json:"events"`
		Next   string        `json:"next"`
	}
	require.NoError(t, json.Unmarshal([]byte(r3.stdout), &last))
	require.Len(t, last.Events, 1)
	assert.Equal(t, "ev01", last.Events[0].ID)
	assert.Empty(t, last.Next)

	// Export, as JSON lines to stdout and as CSV to a file.
	r = h.must(exitOK, "audit", "export", "--user", "alice")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 4)
	var e audit.Event
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &e))
	assert.Equal(t, "ev07", e.ID)
	assert.Equal(t, "exported 4 events\n", r.stderr)

	out := filepath.Join(h.dir, "audit.csv")
	h.must(exitOK, "audit", "export", "--format", "csv", "--output", out)
	f, err := os.Open(out)
	require.NoError(t, err)
	defer f.Close()
	info, err := f.Stat()
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	recs, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err)
	require.Len(t, recs, 8)
	assert.Equal(t, sqlaudit.CSVHeader, recs[0])
	assert.Equal(t, "'=cmd|' /C calc'!A0", recs[4][18], "formula-looking cells are neutralised")
	h.must(exitOK, "audit", "export", "--format", "csv", "--output", out, "--json", "--outcome", "allowed")

	r = h.must(exitOK, "audit", "verify")
	store, err := sqlaudit.New(h.openDB(), &sqlaudit.Options{Chain: true})
	require.NoError(t, err)
	seq, head, err := store.Head(context.Background())
	require.NoError(t, err)
	assert.Contains(t, r.stdout, fmt.Sprintf("head: seq %d hash %x\n", seq, head))
	h.must(exitOK, "audit", "verify", "--json")
	h.must(exitOK, "audit", "verify", "--from", t0.Add(-58*time.Minute).Format(time.RFC3339))

	// Edit a row behind the store's back: verify finds it and exits 4.
	_, err = h.openDB().Exec("UPDATE mcpauth_audit_events SET tool = 'search_docs' WHERE id = 'ev03'")
	require.NoError(t, err)
	r = h.must(exitTampered, "audit", "verify")
	assert.Contains(t, r.stdout, "audit chain BROKEN at seq 3 (event ev03): hash mismatch")
	r = h.must(exitTampered, "audit", "verify", "--json")
	var v struct {
		OK     bool `json:"ok"`
		Broken struct {
			Seq    int64  `json:"seq"`
			Reason string `json:"reason"`
		} `json:"broken"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &v))
	assert.False(t, v.OK)
	assert.Equal(t, int64(3), v.Broken.Seq)

	// Delete one: a missing event.
	_, err = h.openDB().Exec("DELETE FROM mcpauth_audit_events WHERE id = 'ev05'")
	require.NoError(t, err)
	h.must(exitTampered, "audit", "verify", "--from", t0.Add(-57*time.Minute).Format(time.RFC3339))
	h.golden("audit")
}

func TestAuditVerifyUnchained(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.must(exitOK, "migrate")
	s, err := sqlaudit.New(h.openDB(), nil) // a server without Chain
	require.NoError(t, err)
	require.NoError(t, s.Record(context.Background(), audit.Event{ID: "e1", Time: t0, UserID: "u", Outcome: audit.OutcomeAllowed}))
	r := h.must(exitTampered, "audit", "verify")
	assert.Contains(t, r.stdout, "not chained")
	assert.Contains(t, r.stdout, "Options.Chain")
}

func TestAuditTailFollow(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.must(exitOK, "migrate")
	events := sampleEvents()
	h.seedEvents(events[:3]...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h.ctx = ctx
	polls := 0
	var waits []time.Duration
	h.sleep = func(ctx context.Context, d time.Duration) error {
		waits = append(waits, d)
		polls++
		switch polls {
		case 1:
			// One event at the same time as the last one printed, one later.
			same := events[3]
			same.Time = events[2].Time
			h.seedEvents(same, events[4])
		case 2:
			h.seedEvents(events[5:]...)
		case 3:
			// nothing new
		default:
			cancel()
			return ctx.Err()
		}
		return nil
	}
	r := h.must(exitOK, "audit", "tail", "--follow", "--interval", "500ms", "--json")
	var ids []string
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var e audit.Event
		require.NoError(t, json.Unmarshal([]byte(line), &e))
		ids = append(ids, e.ID)
	}
	assert.Equal(t, []string{"ev01", "ev02", "ev03", "ev04", "ev05", "ev06", "ev07"}, ids, "every event once, in order")
	assert.Equal(t, []time.Duration{500 * time.Millisecond, 500 * time.Millisecond, 500 * time.Millisecond, 500 * time.Millisecond}, waits)

	// Tables: one header, then rows as they come.
	h2 := newHarness(t)
	h2.must(exitOK, "migrate")
	polls2 := 0
	h2.sleep = func(ctx context.Context, d time.Duration) error {
		polls2++
		if polls2 == 1 {
			// Written now, stamped from 10s before the follow began.
			var recent []audit.Event
			for _, e := range events {
				e.Time = e.Time.Add(time.Hour + 2*time.Minute - 10*time.Second)
				recent = append(recent, e)
			}
			h2.seedEvents(recent...)
			return nil
		}
		return context.Canceled
	}
	r = h2.must(exitOK, "audit", "tail", "--follow", "--user", "alice")
	assert.Equal(t, 1, strings.Count(r.stdout, "TIME"), "one header")
	assert.Equal(t, 5, strings.Count(r.stdout, "\n"), "header and alice's four events")
	h2.golden("audit_follow")
}
