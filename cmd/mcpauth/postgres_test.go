package main

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/audit/sqlaudit"
	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/store/sqlstore"
	"github.com/mcpauth/mcpauth/store/sqlstore/pgnotify"
)

// TestPostgresSmoke runs the main commands against a real PostgreSQL server
// (MCPAUTH_TEST_POSTGRES_DSN), in tables with a prefix of its own that it
// drops afterwards.
func TestPostgresSmoke(t *testing.T) {
	dsn := os.Getenv("MCPAUTH_TEST_POSTGRES_DSN")
	if dsn == "" {
		if os.Getenv("MCPAUTH_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatal("MCPAUTH_TEST_POSTGRES_DSN is not set")
		}
		t.Skip("MCPAUTH_TEST_POSTGRES_DSN is not set")
	}
	t.Parallel()
	prefix := fmt.Sprintf("cli_%d_", time.Now().UnixNano()%1_000_000_000)
	db, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	t.Cleanup(func() {
		for _, table := range []string{"keys", "key_addresses", "audit_events", "audit_head", "audit_anchors", "schema_migrations"} {
			_, err := db.Exec("DROP TABLE IF EXISTS " + prefix + table)
			assert.NoError(t, err)
		}
		db.Close()
	})

	h := newHarness(t)
	h.db = dsn
	pg := func(want int, args ...string) result {
		t.Helper()
		return h.must(want, append([]string{"--table-prefix", prefix}, args...)...)
	}
	r := pg(exitOK, "migrate", "--json")
	assert.Contains(t, r.stdout, `"dialect": "postgres"`)
	assert.NotContains(t, r.stdout+r.stderr, dsn, "the DSN is never printed")
	pg(exitOK, "migrate")

	r = pg(exitOK, "keys", "create", "--user", "alice", "--name", "pg", "--scope", "documents:read", "--cidr", "2001:db8::/32")
	raw := rawKeyOnce(t, r)
	id := raw[4:16]
	r = pg(exitOK, "keys", "list", "--user", "alice", "--json")
	var list []keyadmin.KeyInfo
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &list))
	require.Len(t, list, 1)
	assert.Equal(t, id, list[0].ID)
	assert.Equal(t, []string{"2001:db8::/32"}, list[0].AllowedCIDRs)
	pg(exitOK, "keys", "show", id)
	pg(exitNotFound, "keys", "show", "AbCdEfGhIjKl")

	// The key authenticates on a server reading the same tables.
	keys, err := sqlstore.New(db, &sqlstore.Options{TablePrefix: prefix})
	require.NoError(t, err)
	g, err := mcpauth.New(keys, &mcpauth.Options{Peppers: []apikey.Pepper{pepper(t, testPepper)}, Now: h.clock, CacheTTL: -1})
	require.NoError(t, err)
	defer g.Close(context.Background())
	authenticate := func(raw string) error {
		req := httptest.NewRequest("POST", "/mcp", nil)
		req.RemoteAddr = "[2001:db8::1]:443"
		req.Header.Set("Authorization", "Bearer "+raw)
		_, err := g.Authenticate(req)
		return err
	}
	require.NoError(t, authenticate(raw))

	r = pg(exitOK, "keys", "rotate", id, "--grace", "2h")
	fresh := rawKeyOnce(t, r)
	require.NoError(t, authenticate(fresh))
	require.NoError(t, authenticate(raw), "the old key works during the grace period")

	// A server caching keys for an hour, without a poll, listening on the
	// change channel: the CLI's revocation reaches it through NOTIFY.
	channel := prefix + "changes"
	h.env["MCPAUTH_CHANGES_CHANNEL"] = channel
	feed, err := pgnotify.New(context.Background(), dsn, &pgnotify.Options{Channel: channel})
	require.NoError(t, err)
	defer feed.Close(context.Background())
	listening, err := mcpauth.New(keys, &mcpauth.Options{Peppers: []apikey.Pepper{pepper(t, testPepper)}, Now: h.clock,
		CacheTTL: time.Hour, RevocationPollInterval: -1, Changes: feed})
	require.NoError(t, err)
	defer listening.Close(context.Background())
	cachedAuth := func(raw string) error {
		req := httptest.NewRequest("POST", "/mcp", nil)
		req.RemoteAddr = "[2001:db8::1]:443"
		req.Header.Set("Authorization", "Bearer "+raw)
		_, err := listening.Authenticate(req)
		return err
	}
	require.NoError(t, cachedAuth(fresh), "cached for an hour")
	pg(exitOK, "keys", "revoke", fresh[4:16])
	require.ErrorIs(t, authenticate(fresh), mcpauth.ErrKeyRevoked)
	require.Eventually(t, func() bool { return errors.Is(cachedAuth(fresh), mcpauth.ErrKeyRevoked) }, time.Second, time.Millisecond,
		"the CLI's change reaches the listening server's cache")
	sum := apikey.LegacyKeyHash("legacy-key-0123456789")
	pg(exitOK, "keys", "import-legacy", "--user", "alice", "--sha256", hex.EncodeToString(sum[:]))
	r = pg(exitOK, "keys", "revoke-all", "--user", "alice")
	assert.Equal(t, "revoked 2 active keys of user alice\n", r.stdout)
	require.ErrorIs(t, authenticate(raw), mcpauth.ErrKeyRevoked)

	// Every key change made with the CLI is in the audit chain, with its
	// actor and instance: create, rotate, revoke, import, revoke-all (2).
	rows, err := db.Query("SELECT action, actor, instance FROM " + prefix + "audit_events ORDER BY seq")
	require.NoError(t, err)
	var actions []string
	for rows.Next() {
		var action, actor, instance string
		require.NoError(t, rows.Scan(&action, &actor, &instance))
		actions = append(actions, action)
		assert.True(t, strings.HasPrefix(actor, "cli"), "actor %q", actor)
		assert.Contains(t, instance, ":", "host:pid")
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, []string{"created", "rotated", "revoked", "created", "revoked", "revoked"}, actions)

	// Audit: events written by a chained store are listed and verified.
	as, err := sqlaudit.New(db, &sqlaudit.Options{TablePrefix: prefix, Chain: true})
	require.NoError(t, err)
	require.NoError(t, as.RecordBatch(context.Background(), sampleEvents()))
	r = pg(exitOK, "audit", "query", "--user", "bob")
	assert.Equal(t, 3, strings.Count(r.stdout, "\n"))
	r = pg(exitOK, "audit", "export", "--format", "csv")
	assert.Equal(t, 14, strings.Count(r.stdout, "\n"), "header, 6 key changes, 7 sample events")
	r = pg(exitOK, "audit", "tail", "-n", "2", "--json")
	assert.Equal(t, 2, strings.Count(r.stdout, "\n"))
	r = pg(exitOK, "audit", "verify")
	assert.Contains(t, r.stdout, "audit chain OK: 13 events checked")
	_, err = db.Exec("UPDATE " + prefix + "audit_events SET user_id = 'mallory' WHERE id = 'ev02'")
	require.NoError(t, err)
	pg(exitTampered, "audit", "verify")
}
