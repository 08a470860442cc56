package main

import (
	"bytes"
	"context"
	"errors"
	"html"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/store"
)

// TestAssistantAnswersWithCitations is the seed's flow through the page: a
// signed-in user asks, the backend gets a key, calls the MCP server, and the
// answer cites the user's own Q3 report, never Bob's Q3 pipeline.
func TestAssistantAnswersWithCitations(t *testing.T) {
	backends(t, func(t *testing.T, backend string) {
		e := newTestEnv(t, backend, nil)
		alice := e.login("alice")
		status, page := alice.postForm("/assistant", url.Values{"question": {"What were our Q3 revenue numbers?"}})
		require.Equal(t, http.StatusOK, status)
		assert.Contains(t, page, "According to your Q3 Financial Report (uploaded Oct 15, 2025): Revenue for Q3 was $125,000")
		docs, err := e.app.docs.list(context.Background(), "alice")
		require.NoError(t, err)
		var report document
		for _, d := range docs {
			if d.Title == "Q3 Financial Report" {
				report = d
			}
		}
		assert.Contains(t, page, `<a class="cite" href="/documents/`+itoa64(report.ID)+`" title="Q3 Financial Report">[1]</a>`)
		assert.Contains(t, page, `<a href="/documents/`+itoa64(report.ID)+`">Q3 Financial Report</a> <span class="meta">uploaded Oct 15, 2025</span>`)
		assert.NotContains(t, page, "Pipeline", "Bob's documents never reach Alice's answer")
		assert.NotContains(t, page, "480,000")

		// The seed's JSON endpoint gives the same answer.
		status, body := alice.json(http.MethodPost, "/api/assistant", map[string]string{"question": "What were our Q3 revenue numbers?"})
		require.Equal(t, http.StatusOK, status, body)
		assert.Contains(t, body, `"title":"Q3 Financial Report"`)
		assert.Contains(t, body, `Revenue for Q3 was $125,000`)

		// Nothing relevant: the assistant says so.
		_, page = alice.postForm("/assistant", url.Values{"question": {"Who won the football world cup?"}})
		assert.Contains(t, page, html.EscapeString(nothingFound))
	})
}

// TestAssistantKeyIsReadOnly: the key the backend made for the assistant
// carries documents:read only, expires within the hour, and with it
// create_document and delete_document are refused by the policy: the tool
// does not run and no row is written or deleted.
func TestAssistantKeyIsReadOnly(t *testing.T) {
	backends(t, func(t *testing.T, backend string) {
		e := newTestEnv(t, backend, nil)
		ctx := context.Background()
		key, err := e.app.assistant.keys.get(ctx, "alice")
		require.NoError(t, err)
		info, err := e.app.keys.Get(ctx, key.id)
		require.NoError(t, err)
		assert.Equal(t, []string{"documents:read"}, info.Scopes)
		assert.Equal(t, "alice", info.UserID)
		assert.WithinDuration(t, e.clock.now().Add(time.Hour), info.ExpiresAt, time.Minute)

		cs := e.mustConnect(key.raw)
		docsBefore := e.countRows("documents", "user_id = $1", "alice")
		victim := e.demoDocID("alice", "Team Offsite Notes")
		attacks := []struct {
			name string
			tool string
			args map[string]any
		}{
			{"create", "create_document", map[string]any{"title": "planted", "body": "planted by the assistant key"}},
			{"delete", "delete_document", map[string]any{"id": victim}},
			{"unlisted tool", "drop_all_documents", map[string]any{}},
		}
		for _, a := range attacks {
			t.Run(a.name, func(t *testing.T) {
				_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: a.tool, Arguments: a.args})
				var rpcErr *jsonrpc.Error
				require.ErrorAs(t, err, &rpcErr)
				assert.Equal(t, int64(mcpauth.RPCCodeForbidden), rpcErr.Code)
				assert.Equal(t, 0, e.app.mcp.runCount(a.tool), "the tool did not run")
			})
		}
		assert.Equal(t, docsBefore, e.countRows("documents", "user_id = $1", "alice"), "no row written or deleted")
		assert.Equal(t, 0, e.countRows("documents", "title = $1", "planted"))
		assert.Equal(t, 1, e.countRows("documents", "id = $1", victim))
		// A read-only key does not even see the write tools.
		tools, err := cs.ListTools(ctx, nil)
		require.NoError(t, err)
		var names []string
		for _, tool := range tools.Tools {
			names = append(names, tool.Name)
		}
		assert.ElementsMatch(t, []string{"search_documents", "get_document"}, names)
		// And the refusals are in Alice's activity.
		e.waitForEvent("alice", func(ev audit.Event) bool {
			return ev.Tool == "delete_document" && ev.Outcome == audit.OutcomeDenied && ev.KeyID == key.id
		})
	})
}

// TestAssistantKeyNeverStoredInPlainText: after the assistant has used its
// key, the raw key is nowhere in the database, byte for byte (SQLite file
// and its WAL), and its sealed form opens only for its own user and key ID.
func TestAssistantKeyNeverStoredInPlainText(t *testing.T) {
	e := newTestEnv(t, "sqlite", nil)
	ctx := context.Background()
	alice := e.login("alice")
	_, page := alice.postForm("/assistant", url.Values{"question": {"What were our Q3 revenue numbers?"}})
	require.Contains(t, page, "$125,000")
	key, err := e.app.assistant.keys.get(ctx, "alice")
	require.NoError(t, err)
	_, secret, ok := strings.Cut(strings.TrimPrefix(key.raw, "mcp_"), key.id)
	require.True(t, ok)
	require.NoError(t, e.app.guard.Close(ctx)) // flush last-used times: every write done
	e.flushAudit()
	var all []byte // the database file and its write-ahead log
	for _, f := range []string{e.dbPath, e.dbPath + "-wal"} {
		b, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		require.NoError(t, err)
		all = append(all, b...)
	}
	assert.False(t, bytes.Contains(all, []byte(key.raw)), "the database holds the raw key")
	assert.False(t, bytes.Contains(all, []byte(secret[:20])), "the database holds the key's secret")
	assert.True(t, bytes.Contains(all, []byte(key.id)), "the scan sees the key ID, so it would see the key")
	var sealed []byte
	require.NoError(t, e.db.db.QueryRow(`SELECT sealed FROM assistant_keys WHERE user_id = 'alice'`).Scan(&sealed))
	raw, err := e.app.assistant.keys.open(sealed, "alice", key.id)
	require.NoError(t, err)
	assert.Equal(t, key.raw, raw)
	_, err = e.app.assistant.keys.open(sealed, "bob", key.id)
	assert.Error(t, err, "a sealed key copied to another user's row does not open")

	// Bob's row replaced by Alice's sealed key: Bob's assistant does not
	// get Alice's key; it issues Bob one of his own.
	_, err = e.db.db.Exec(`INSERT INTO assistant_keys (user_id, key_id, sealed, expires_at) VALUES ('bob', ?, ?, ?)`,
		key.id, sealed, e.clock.now().Add(time.Hour).Unix())
	require.NoError(t, err)
	bobKey, err := e.app.assistant.keys.get(ctx, "bob")
	require.NoError(t, err)
	assert.NotEqual(t, key.raw, bobKey.raw)
	bobInfo, err := e.app.keys.Get(ctx, bobKey.id)
	require.NoError(t, err)
	assert.Equal(t, "bob", bobInfo.UserID)
}

// TestAssistantKeyRenewal: a key within ten minutes of expiry is replaced
// before the question, and the old one is revoked; a key the user revoked
// on the keys page is replaced on the next question.
func TestAssistantKeyRenewal(t *testing.T) {
	e := newTestEnv(t, "sqlite", nil)
	ctx := context.Background()
	first, err := e.app.assistant.keys.get(ctx, "alice")
	require.NoError(t, err)
	again, err := e.app.assistant.keys.get(ctx, "alice")
	require.NoError(t, err)
	assert.Equal(t, first, again, "a fresh key is reused")

	e.clock.advance(51 * time.Minute)
	renewed, err := e.app.assistant.keys.get(ctx, "alice")
	require.NoError(t, err)
	assert.NotEqual(t, first.id, renewed.id)
	old, err := e.app.keys.Get(ctx, first.id)
	require.NoError(t, err)
	assert.Equal(t, store.StatusRevoked, old.Status)

	// The user revokes the assistant's key; the next question still works,
	// with a new key, and the refusal of the old one is in Activity.
	alice := e.login("alice")
	status, _ := alice.postForm("/keys/"+renewed.id+"/revoke", nil)
	require.Equal(t, http.StatusOK, status)
	_, page := alice.postForm("/assistant", url.Values{"question": {"What were our Q3 revenue numbers?"}})
	assert.Contains(t, page, "$125,000")
	third, err := e.app.assistant.keys.get(ctx, "alice")
	require.NoError(t, err)
	assert.NotEqual(t, renewed.id, third.id)
	e.waitForEvent("alice", func(ev audit.Event) bool {
		return ev.KeyID == renewed.id && ev.Outcome == audit.OutcomeUnauthenticated && ev.Reason != ""
	})
}

// TestInactiveUser: Carol is deactivated. She cannot sign in, and a key she
// holds is refused with 403 before any tool runs.
func TestInactiveUser(t *testing.T) {
	e := newTestEnv(t, "sqlite", nil)
	ctx := context.Background()
	b := e.browser()
	status, body := b.postForm("/login", url.Values{"email": {"carol@example.com"}, "password": {e.demo["carol"].Password}})
	assert.Equal(t, http.StatusUnauthorized, status)
	assert.Contains(t, body, "this account is deactivated")
	status, _ = b.get("/documents")
	assert.Equal(t, http.StatusOK, status)

	k, err := e.app.keys.Create(ctx, "carol", keyadmin.CreateOptions{Name: "old agent", Scopes: []string{"documents:read"}})
	require.NoError(t, err)
	_, err = e.connect(k.Raw)
	var rpcErr *jsonrpc.Error
	require.ErrorAs(t, err, &rpcErr)
	assert.Equal(t, int64(mcpauth.RPCCodeForbidden), rpcErr.Code)
	assert.Contains(t, rpcErr.Message, "not active")
	assert.Equal(t, 0, e.app.mcp.runCount("search_documents"))
}

// TestCrossOriginRequestsRefused: a state-changing request from another
// origin (a cross-site form carrying the session cookie) is refused and
// changes nothing.
func TestCrossOriginRequestsRefused(t *testing.T) {
	e := newTestEnv(t, "sqlite", nil)
	alice := e.login("alice")
	victim := e.demoDocID("alice", "Team Offsite Notes")
	keysBefore := e.countRows("mcpauth_keys", "user_id = $1", "alice")
	docsBefore := e.countRows("documents", "user_id = $1", "alice")
	attacks := []struct {
		name, path string
		form       url.Values
	}{
		{"delete a document", "/documents/" + itoa64(victim) + "/delete", nil},
		{"add a document", "/documents", url.Values{"title": {"planted"}, "body": {"x"}}},
		{"create a key", "/keys", url.Values{"name": {"planted"}, "scopes": {"documents:delete"}, "expires_in": {"604800"}}},
		{"sign out", "/logout", nil},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			for _, h := range []map[string]string{{"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}} {
				req, err := http.NewRequest(http.MethodPost, e.base+a.path, strings.NewReader(a.form.Encode()))
				require.NoError(t, err)
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				for k, v := range h {
					req.Header.Set(k, v)
				}
				status, _ := alice.do(req)
				assert.Equal(t, http.StatusForbidden, status)
			}
		})
	}
	assert.Equal(t, keysBefore, e.countRows("mcpauth_keys", "user_id = $1", "alice"), "no key was created")
	assert.Equal(t, docsBefore, e.countRows("documents", "user_id = $1", "alice"), "no document added or deleted")
	status, body := alice.get("/documents")
	assert.Equal(t, http.StatusOK, status)
	assert.Contains(t, body, "Sign out", "still signed in")
}

// demoDocID is the ID of a seeded document.
func (e *testEnv) demoDocID(userID, title string) int64 {
	e.t.Helper()
	var id int64
	require.NoError(e.t, e.db.db.QueryRow(e.db.q(`SELECT id FROM documents WHERE user_id = $1 AND title = $2`), userID, title).Scan(&id))
	return id
}

// waitForEvent waits (up to 5s) for an audit event of the user matching ok:
// the Guard records after the response, so a client can be faster.
func (e *testEnv) waitForEvent(userID string, ok func(audit.Event) bool) audit.Event {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		e.flushAudit()
		page, err := e.db.audit.Query(context.Background(), audit.Filter{UserID: userID, Limit: 500})
		require.NoError(e.t, err)
		for _, ev := range page.Events {
			if ok(ev) {
				return ev
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no matching audit event for %s among %d", userID, len(page.Events))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestBlockedResources: the default blocklist is on, so secret-looking
// resource URIs are refused whatever the key's scopes, before the resource
// handler runs.
func TestBlockedResources(t *testing.T) {
	e := newTestEnv(t, "sqlite", nil)
	k, err := e.app.keys.Create(context.Background(), "alice", keyadmin.CreateOptions{Name: "all", Scopes: allScopes})
	require.NoError(t, err)
	cs := e.mustConnect(k.Raw)
	for _, uri := range []string{"docs://documents/.env", "docs://documents/id_rsa", "docs://documents/%2e%2e/%2e%2e/etc/shadow"} {
		t.Run(uri, func(t *testing.T) {
			_, err := cs.ReadResource(context.Background(), &mcp.ReadResourceParams{URI: uri})
			var rpcErr *jsonrpc.Error
			require.ErrorAs(t, err, &rpcErr)
			assert.Equal(t, int64(mcpauth.RPCCodeForbidden), rpcErr.Code, rpcErr.Message)
		})
	}
	assert.Equal(t, 0, e.app.mcp.runCount("docs://documents/{id}"), "the resource handler never ran")
}

// TestAssistantErrorsReachThePage: when the MCP server rate-limits the
// assistant or cannot be reached, the page says so in a sentence, with no
// internal error text or key.
func TestAssistantErrorsReachThePage(t *testing.T) {
	e := newTestEnv(t, "sqlite", nil)
	ctx := context.Background()
	alice := e.login("alice")
	key, err := e.app.assistant.keys.get(ctx, "alice")
	require.NoError(t, err)

	// Spend the assistant key's budget (100 calls a minute) from outside.
	cs := e.mustConnect(key.raw)
	limited := false
	for range 200 {
		_, err := cs.CallTool(ctx, searchCall("revenue"))
		var rpcErr *jsonrpc.Error
		if errors.As(err, &rpcErr) && rpcErr.Code == rpcCodeRateLimited {
			limited = true
			break
		}
		require.NoError(t, err)
	}
	require.True(t, limited, "the rate limit was reached")
	_, page := alice.postForm("/assistant", url.Values{"question": {"What were our Q3 revenue numbers?"}})
	assert.Contains(t, page, "You have asked too many questions in a short time. Wait a minute and try again.")
	assert.NotContains(t, page, key.raw)
	assert.NotContains(t, page, `id="answer"`)

	// The MCP server is down (an assistant of its own, so as not to
	// change the running app's).
	down := &assistant{keys: e.app.assistant.keys, mcpURL: "http://127.0.0.1:1/mcp", http: &http.Client{}, answerer: extractive{}, log: testLogger()}
	_, err = down.ask(ctx, "alice", "What were our Q3 revenue numbers?")
	require.Error(t, err)
	assert.Equal(t, "The document server could not be reached. Try again later.", userMessage(err))
}
