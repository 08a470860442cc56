package mcpauth_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/store"
)

// memSink keeps events in memory.
type memSink struct {
	mu     sync.Mutex
	events []audit.Event
	fail   bool
}

func (s *memSink) Record(_ context.Context, e audit.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return errors.New("audit db down")
	}
	s.events = append(s.events, e)
	return nil
}

func (s *memSink) all() []audit.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]audit.Event(nil), s.events...)
}

// requests returns the events of requests, without key lifecycle events.
func (s *memSink) requests() []audit.Event {
	var out []audit.Event
	for _, e := range s.all() {
		if e.Action != audit.ActionCreated && e.Action != audit.ActionRevoked && e.Action != audit.ActionRotated {
			out = append(out, e)
		}
	}
	return out
}

func TestAuditEventsThroughMiddleware(t *testing.T) {
	t.Parallel()
	sink := &memSink{}
	f := newFixture(t, &mcpauth.Options{Policy: docsPolicy(t), Audit: sink, AuditArguments: true, AuditRedact: []string{"password"}})
	k := f.create(t, "alice", keyadmin.CreateOptions{Scopes: []string{"documents:read"}, ExpiresIn: time.Hour})
	srv := httptest.NewServer(f.guard.Require(&echo{}))
	t.Cleanup(srv.Close)

	req, _ := http.NewRequest("POST", srv.URL, strings.NewReader(`[`+
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_documents","arguments":{"q":"tax","password":"hunter2"}}},`+
		`{"jsonrpc":"2.0","id":"r2","method":"resources/read","params":{"uri":"file:///reports/q1.pdf"}}]`))
	req.Header.Set("Authorization", "Bearer "+k.Raw)
	req.Header.Set("Mcp-Session-Id", "sess-1")
	req.Header.Set("X-Request-Id", "req-abc")
	req.Header.Set("User-Agent", "claude-code/1.0")
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, "req-abc", resp.Header.Get("X-Request-Id"))

	_, _ = post(t, srv, k.Raw, toolCall("delete_document", "3"))
	_, _ = post(t, srv, "", toolCall("search_documents", "4"))
	f.clock.Advance(time.Hour)
	_, _ = post(t, srv, k.Raw, toolCall("search_documents", "5"))

	evs := sink.requests()
	require.Len(t, evs, 5)
	a, b, denied, unauth, expired := evs[0], evs[1], evs[2], evs[3], evs[4]
	assert.Equal(t, audit.OutcomeAllowed, a.Outcome)
	assert.Equal(t, "tools/call", a.Method)
	assert.Equal(t, "search_documents", a.Tool)
	assert.Equal(t, "1", a.RPCID)
	assert.Equal(t, "req-abc", a.RequestID)
	assert.Equal(t, "sess-1", a.SessionID)
	assert.Equal(t, "claude-code/1.0", a.UserAgent)
	assert.Equal(t, "127.0.0.1", a.ClientIP)
	assert.Equal(t, 200, a.Status)
	assert.Equal(t, "alice", a.UserID)
	assert.Equal(t, k.Key.ID, a.KeyID)
	assert.JSONEq(t, `{"q":"tax","password":"[REDACTED]"}`, string(a.Arguments))
	assert.Equal(t, "file:///reports/q1.pdf", b.ResourceURI)
	assert.Equal(t, `"r2"`, b.RPCID)

	assert.Equal(t, audit.OutcomeDenied, denied.Outcome)
	assert.Equal(t, "insufficient_scope", denied.Reason)
	assert.Equal(t, 403, denied.Status)
	assert.Equal(t, "delete_document", denied.Tool)

	assert.Equal(t, audit.OutcomeUnauthenticated, unauth.Outcome)
	assert.Equal(t, "no_credential", unauth.Reason)
	assert.Empty(t, unauth.KeyID)
	assert.NotEmpty(t, unauth.RequestID)

	assert.Equal(t, audit.OutcomeUnauthenticated, expired.Outcome)
	assert.Equal(t, "key_expired", expired.Reason)
	assert.Equal(t, audit.ActionExpiredKeyUsed, expired.Action)
	assert.Equal(t, "alice", expired.UserID, "the owner of an expired key is recorded")
	assert.Equal(t, 401, expired.Status)
}

// TestNoKeyMaterialInAnySink generates keys, runs traffic (good, bad,
// revoked, expired, malformed, denied) and greps every sink's output and the
// logs for the keys and their secrets.
func TestNoKeyMaterialInAnySink(t *testing.T) {
	t.Parallel()
	var jsonOut, slogOut, logs bytes.Buffer
	var mu sync.Mutex
	lw := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return logs.Write(p) })
	jw := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return jsonOut.Write(p) })
	sw := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return slogOut.Write(p) })
	w, err := audit.NewWriter(audit.Fanout(audit.NewJSONSink(jw), audit.NewSlogSink(slog.New(slog.NewJSONHandler(sw, nil)))), nil)
	require.NoError(t, err)
	f := newFixture(t, &mcpauth.Options{Policy: docsPolicy(t), Audit: w, AuditArguments: true, Logger: slog.New(slog.NewTextHandler(lw, nil))})
	var keys []keyadmin.CreatedKey
	for i := range 5 {
		keys = append(keys, f.create(t, "user", keyadmin.CreateOptions{Scopes: []string{"documents:read"}, ExpiresIn: time.Duration(i+1) * time.Minute}))
	}
	srv := httptest.NewServer(f.guard.Require(&echo{}))
	t.Cleanup(srv.Close)
	require.NoError(t, f.mgr.Revoke(context.Background(), keys[1].Key.ID))
	for _, k := range keys {
		post(t, srv, k.Raw, toolCall("search_documents", "1"))
		post(t, srv, k.Raw, toolCall("delete_document", "2"))
		post(t, srv, badChecksum(k.Raw), toolCall("search_documents", "3"))
		post(t, srv, k.Raw[:20], toolCall("search_documents", "4"))
	}
	f.clock.Advance(3 * time.Minute)
	for _, k := range keys {
		post(t, srv, k.Raw, toolCall("search_documents", "5"))
	}
	f.store.broken.Store(true)
	f.guard.Forget(keys[4].Key.ID)
	post(t, srv, keys[4].Raw, toolCall("search_documents", "6"))
	require.NoError(t, w.Close(context.Background()))

	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, jsonOut.String())
	require.NotEmpty(t, slogOut.String())
	for _, k := range keys {
		secret := k.Raw[4+12 : 4+36]
		for name, out := range map[string]string{"json sink": jsonOut.String(), "slog sink": slogOut.String(), "logs": logs.String()} {
			assert.NotContains(t, out, k.Raw, name)
			assert.NotContains(t, out, secret, name)
			assert.NotContains(t, out, k.Raw[:20], name, "not even a prefix longer than the public part")
		}
	}
	assert.Contains(t, jsonOut.String(), keys[0].Key.ID, "key IDs are recorded")
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestStrictAuditFailsClosed(t *testing.T) {
	t.Parallel()
	sink := &memSink{}
	w, err := audit.NewWriter(sink, &audit.WriterOptions{Mode: audit.Strict, MaxRetries: -1})
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.Close(context.Background()) })
	_, err = mcpauth.New(store.NewMemory(), &mcpauth.Options{Audit: w})
	require.ErrorContains(t, err, "AuditStrict", "a Strict writer is not strict audit by accident")
	_, err = mcpauth.New(store.NewMemory(), &mcpauth.Options{AuditStrict: true})
	require.ErrorContains(t, err, "needs Options.Audit")
	f := newFixture(t, &mcpauth.Options{Audit: w, AuditStrict: true})
	k := f.create(t, "alice", keyadmin.CreateOptions{})
	h := &echo{}
	srv := httptest.NewServer(f.guard.Require(h))
	t.Cleanup(srv.Close)

	resp, _ := post(t, srv, k.Raw, `{"jsonrpc":"2.0","id":1,"method":"ping"}`)
	assert.Equal(t, 200, resp.StatusCode)
	require.Len(t, sink.requests(), 1, "recorded before the handler ran")

	sink.mu.Lock()
	sink.fail = true
	sink.mu.Unlock()
	calls := h.calls.Load()
	resp, body := post(t, srv, k.Raw, `{"jsonrpc":"2.0","id":2,"method":"ping"}`)
	assert.Equal(t, 503, resp.StatusCode)
	assert.NotContains(t, body, "audit db down")
	assert.Equal(t, calls, h.calls.Load(), "an action that cannot be recorded does not run")
}

func TestStreamingWithAudit(t *testing.T) {
	t.Parallel()
	sink := &memSink{}
	f := newFixture(t, &mcpauth.Options{Audit: sink})
	k := f.create(t, "alice", keyadmin.CreateOptions{})
	sse := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			_, _ = io.WriteString(w, "data: tick\n\n")
			require.NoError(t, http.NewResponseController(w).Flush())
			_ = i
		}
		require.NoError(t, http.NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Minute)))
	})
	srv := httptest.NewServer(f.guard.Require(sse))
	t.Cleanup(srv.Close)
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("Authorization", "Bearer "+k.Raw)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 3, strings.Count(string(b), "tick"))
	evs := sink.requests()
	require.Len(t, evs, 1)
	assert.Equal(t, "GET", evs[0].Method)
	assert.Equal(t, 200, evs[0].Status)
}

// TestAuditRefusedRequestIsOneEvent is the middleware half of finding 10 of
// the security issue: a refused request, however many messages it holds,
// is one audit event, so a flood of refused or unauthenticated messages
// cannot flood the log.
func TestAuditRefusedRequestIsOneEvent(t *testing.T) {
	t.Parallel()
	notes := batchOf(30, func(int) string { return `{"jsonrpc":"2.0","method":"notifications/progress","params":{}}` })
	attacks := []struct {
		name, key, body, reason string
	}{
		{"unauthenticated batch", "", batchOf(30, saveNote), "no_credential"},
		{"bad key batch", "mcp_000000000000000000000000000000000000000000", batchOf(30, saveNote), "malformed_key"},
		{"unauthenticated notifications", "", notes, "no_credential"},
		{"batch too large", "good", batchOf(200, saveNote), "batch_too_large"},
		{"refused batch", "good", "[" + toolCall("search_documents", "1") + "," + toolCall("delete_document", "2") + "]", "insufficient_scope"},
	}
	for _, tc := range attacks {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sink := &memSink{}
			f := newFixture(t, &mcpauth.Options{Policy: docsPolicy(t), Audit: sink})
			k := f.create(t, "alice", keyadmin.CreateOptions{Scopes: []string{"documents:read"}})
			h := &echo{}
			srv := httptest.NewServer(f.guard.Require(h))
			t.Cleanup(srv.Close)
			key := tc.key
			if key == "good" {
				key = k.Raw
			}
			resp, _ := post(t, srv, key, tc.body)
			assert.NotEqual(t, 200, resp.StatusCode)
			evs := sink.requests()
			require.Len(t, evs, 1, "one event for the refused request")
			assert.Equal(t, tc.reason, evs[0].Reason)
			assert.Zero(t, h.calls.Load())
			if tc.reason == "insufficient_scope" {
				assert.Equal(t, "delete_document", evs[0].Tool, "the event names the refused message")
			}
		})
	}
}

// TestAuditEventsPerRequestBounded: an allowed batch larger than the
// per-request bound makes at most 16 events, the last one standing for the
// rest with their count.
func TestAuditEventsPerRequestBounded(t *testing.T) {
	t.Parallel()
	sink := &memSink{}
	f := newFixture(t, &mcpauth.Options{Audit: sink, MaxBatchLength: 1000})
	k := f.create(t, "alice", keyadmin.CreateOptions{})
	srv := httptest.NewServer(f.guard.Require(&echo{}))
	t.Cleanup(srv.Close)
	notes := batchOf(500, func(int) string { return `{"jsonrpc":"2.0","method":"notifications/progress","params":{}}` })
	resp, _ := post(t, srv, k.Raw, notes)
	require.Equal(t, 200, resp.StatusCode)
	evs := sink.requests()
	require.Len(t, evs, 16)
	total := 0
	for _, e := range evs {
		total += e.Messages()
		assert.Equal(t, "notifications/progress", e.Method)
	}
	assert.Equal(t, 500, total, "every message is accounted for")
	assert.Equal(t, 485, evs[15].Count)

	resp, _ = post(t, srv, k.Raw, batchOf(3, saveNote))
	require.Equal(t, 200, resp.StatusCode)
	assert.Len(t, sink.requests(), 19, "small batches keep one event per message")
}

// TestAuditWhenTheHandlerPanics: a handler that panics (a reverse proxy's
// http.ErrAbortHandler when the client hangs up mid-response, or a bug)
// still leaves its request's event, with the status it wrote (else 500),
// and the panic still reaches net/http (the connection is cut).
func TestAuditWhenTheHandlerPanics(t *testing.T) {
	t.Parallel()
	sink := &memSink{}
	f := newFixture(t, &mcpauth.Options{Policy: docsPolicy(t), Audit: sink})
	k := f.create(t, "alice", keyadmin.CreateOptions{Scopes: []string{"documents:read"}})
	var ran atomic.Int32
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ran.Add(1)
		if r.Header.Get("X-Write-First") != "" {
			w.WriteHeader(http.StatusAccepted)
			w.(http.Flusher).Flush()
		}
		panic(http.ErrAbortHandler)
	})
	srv := httptest.NewServer(f.guard.Require(h))
	t.Cleanup(srv.Close)
	for _, writeFirst := range []bool{false, true} {
		req, _ := http.NewRequest("POST", srv.URL, strings.NewReader(toolCall("search_documents", "1")))
		req.Header.Set("Authorization", "Bearer "+k.Raw)
		if writeFirst {
			req.Header.Set("X-Write-First", "1")
		}
		resp, err := srv.Client().Do(req)
		if err == nil { // the status may arrive before the cut
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		assert.Error(t, err, "the panic reaches net/http, which cuts the connection")
	}
	require.EqualValues(t, 2, ran.Load())
	require.Eventually(t, func() bool { return len(sink.requests()) == 2 }, 5*time.Second, 10*time.Millisecond)
	statuses := map[int]bool{}
	for _, e := range sink.requests() {
		assert.Equal(t, "search_documents", e.Tool)
		assert.Equal(t, audit.OutcomeAllowed, e.Outcome)
		statuses[e.Status] = true
	}
	assert.Equal(t, map[int]bool{http.StatusInternalServerError: true, http.StatusAccepted: true}, statuses)
}
