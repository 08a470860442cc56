package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/store"
	"github.com/mcpauth/mcpauth/store/redisnotify"
	"github.com/mcpauth/mcpauth/store/sqlstore/pgnotify"
)

// service returns the address of a test service from the environment, and
// skips the test without it (fails it with MCPAUTH_TEST_REQUIRE_SERVICES=1).
func service(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		if os.Getenv("MCPAUTH_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatal(name + " is not set")
		}
		t.Skip(name + " is not set")
	}
	return v
}

// changes collects what a feed delivers.
type changes struct {
	mu sync.Mutex
	cs []store.Change
}

func (c *changes) add(ch store.Change) { c.mu.Lock(); c.cs = append(c.cs, ch); c.mu.Unlock() }

func (c *changes) has(want store.Change) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range c.cs {
		if ch == want {
			return true
		}
	}
	return false
}

// redisFeed is a server's feed on channel: what it receives is collected.
func redisFeed(t *testing.T, addr, channel string) *changes {
	t.Helper()
	client := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { client.Close() })
	f, err := redisnotify.New(context.Background(), client, &redisnotify.Options{Channel: channel, Logger: discardLogger()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.Close(context.Background()) })
	got := &changes{}
	f.Subscribe(got.add)
	return got
}

// TestRedisAnnouncesChanges: with MCPAUTH_CHANGES_REDIS, a CLI revoke on a
// SQLite database reaches a server subscribed with redisnotify.
func TestRedisAnnouncesChanges(t *testing.T) {
	addr := service(t, "MCPAUTH_TEST_REDIS_ADDR")
	t.Parallel()
	h := newHarness(t)
	h.must(exitOK, "migrate")
	id := rawKeyOnce(t, h.must(exitOK, "keys", "create", "--user", "alice", "--name", "a", "--scope", "documents:read"))[4:16]

	channel := fmt.Sprintf("mcpauth:cli-test:%d", time.Now().UnixNano())
	got := redisFeed(t, addr, channel)
	h.env["MCPAUTH_CHANGES_REDIS"] = "redis://" + addr + "/0"
	h.env["MCPAUTH_CHANGES_CHANNEL"] = channel
	r := h.must(exitOK, "keys", "revoke", id)
	assert.Empty(t, r.stderr)
	require.Eventually(t, func() bool { return got.has(store.Change{KeyID: id}) }, 2*time.Second, time.Millisecond,
		"the revoke reaches the subscribed server")

	// A wrong password is reported once, without the password.
	rawKeyOnce(t, h.must(exitOK, "keys", "create", "--user", "alice", "--name", "b", "--scope", "documents:read"))
	h.env["MCPAUTH_CHANGES_REDIS"] = "redis://nobody:hunter2-secret@" + addr + "/0"
	r = h.must(exitOK, "keys", "revoke-all", "--user", "alice")
	assert.Equal(t, "revoked 1 active keys of user alice\n", r.stdout)
	assert.Equal(t, 1, strings.Count(r.stderr, "\n"), r.stderr)
	assert.Contains(t, r.stderr, "warning: key changes are not announced on Redis at "+addr)
	assert.NotContains(t, r.stderr, "hunter2")

	// "off" announces nothing (a create is a change too).
	h.env["MCPAUTH_CHANGES_REDIS"] = "redis://" + addr + "/0"
	h.env["MCPAUTH_CHANGES_CHANNEL"] = "off"
	id3 := rawKeyOnce(t, h.must(exitOK, "keys", "create", "--user", "bob", "--name", "c", "--scope", "documents:read"))[4:16]
	h.must(exitOK, "keys", "revoke", id3)
	h.env["MCPAUTH_CHANGES_CHANNEL"] = channel
	id4 := rawKeyOnce(t, h.must(exitOK, "keys", "create", "--user", "bob", "--name", "d", "--scope", "documents:read"))[4:16]
	require.Eventually(t, func() bool { return got.has(store.Change{KeyID: id4}) }, 2*time.Second, time.Millisecond)
	assert.False(t, got.has(store.Change{KeyID: id3}), "published after the off switch")
}

// TestUnreachableChannelNeverFails: a Redis that cannot be used never fails
// a command; it is reported once, and a password in the URL never printed.
func TestUnreachableChannelNeverFails(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := l.Addr().String() // nothing listens there once closed
	require.NoError(t, l.Close())

	attacks := []struct{ name, url, says string }{
		{"connection refused", "redis://admin:hunter2-secret@" + closed + "/0", "on Redis at " + closed + ": "},
		{"rediss refused", "rediss://:hunter2-secret@" + closed + "/0", "on Redis at " + closed + ": "},
		{"bad port", "redis://:hunter2-secret@127.0.0.1:port/0", "$MCPAUTH_CHANGES_REDIS is not a valid"},
		{"bad escape", "redis://:hunter2-secret%zz@127.0.0.1/0", "$MCPAUTH_CHANGES_REDIS is not a valid"},
		{"other scheme", "http://:hunter2-secret@127.0.0.1/", "$MCPAUTH_CHANGES_REDIS is not a valid"},
		{"no scheme", ":hunter2-secret@127.0.0.1:6379", "$MCPAUTH_CHANGES_REDIS is not a valid"},
	}
	for _, tc := range attacks {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.must(exitOK, "migrate")
			raw := rawKeyOnce(t, h.must(exitOK, "keys", "create", "--user", "alice", "--name", "a", "--scope", "documents:read"))
			rawKeyOnce(t, h.must(exitOK, "keys", "create", "--user", "alice", "--name", "b", "--scope", "documents:read"))
			h.env["MCPAUTH_CHANGES_REDIS"] = tc.url

			r := h.must(exitOK, "keys", "revoke-all", "--user", "alice") // two changes
			assert.Equal(t, "revoked 2 active keys of user alice\n", r.stdout)
			assert.Equal(t, 1, strings.Count(r.stderr, "\n"), "one line:\n%s", r.stderr)
			assert.True(t, strings.HasPrefix(r.stderr, "warning: key changes are not announced "), r.stderr)
			assert.Contains(t, r.stderr, tc.says)
			assert.NotContains(t, r.stderr, "hunter2")
			require.ErrorIs(t, h.authenticate(raw, mcpauth.Options{Peppers: []apikey.Pepper{pepper(t, testPepper)}}), mcpauth.ErrKeyRevoked, "revoked all the same")

			r = h.must(exitOK, "keys", "list", "--user", "alice")
			assert.Empty(t, r.stderr, "a command that changes nothing connects to nothing")
		})
	}
}

// TestAnnouncerFanOut: every change goes to every channel; a failing one is
// reported once, with its secret scrubbed, and then left alone.
func TestAnnouncerFanOut(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	good, bad := &store.LocalFeed{}, &failingPublisher{err: errors.New("AUTH s3cret failed")}
	var got changes
	good.Subscribe(got.add)
	connects := 0
	an := &announcer{ctx: context.Background(), stderr: &stderr, chans: []*announceChannel{
		{name: "bad", secret: "s3cret", connect: func(context.Context) (store.ChangePublisher, func(), error) {
			connects++
			return bad, func() {}, nil
		}},
		{name: "good", connect: func(context.Context) (store.ChangePublisher, func(), error) { return good, func() {}, nil }},
		{name: "skipped", connect: func(context.Context) (store.ChangePublisher, func(), error) { return nil, nil, errSkipped }},
	}}
	for _, id := range []string{"k1", "k2", "k3"} {
		err := an.PublishChange(context.Background(), store.Change{KeyID: id})
		if id == "k1" {
			assert.ErrorIs(t, err, bad.err)
		} else {
			assert.NoError(t, err, "the failed channel is left alone")
		}
	}
	an.close()
	for _, id := range []string{"k1", "k2", "k3"} {
		assert.True(t, got.has(store.Change{KeyID: id}), id)
	}
	assert.Equal(t, 1, connects)
	assert.Equal(t, 1, bad.calls)
	assert.Equal(t, "warning: key changes are not announced on bad: AUTH … failed; servers see them at their next poll (about 1s)\n", stderr.String())
}

type failingPublisher struct {
	err   error
	calls int
}

func (p *failingPublisher) PublishChange(context.Context, store.Change) error {
	p.calls++
	return p.err
}

// TestPostgresAndRedis: with a PostgreSQL database and
// MCPAUTH_CHANGES_REDIS, a CLI revoke reaches servers on either feed.
func TestPostgresAndRedis(t *testing.T) {
	dsn := service(t, "MCPAUTH_TEST_POSTGRES_DSN")
	addr := service(t, "MCPAUTH_TEST_REDIS_ADDR")
	t.Parallel()
	prefix := fmt.Sprintf("clib_%d_", time.Now().UnixNano()%1_000_000_000)
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
	pg := func(args ...string) result {
		t.Helper()
		return h.must(exitOK, append([]string{"--table-prefix", prefix}, args...)...)
	}
	pg("migrate")
	id := rawKeyOnce(t, pg("keys", "create", "--user", "alice", "--name", "a", "--scope", "documents:read"))[4:16]

	channel := prefix + "changes" // a name both PostgreSQL and Redis accept
	fromRedis := redisFeed(t, addr, channel)
	pgFeed, err := pgnotify.New(context.Background(), dsn, &pgnotify.Options{Channel: channel, Logger: discardLogger()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pgFeed.Close(context.Background()) })
	fromPG := &changes{}
	pgFeed.Subscribe(fromPG.add)

	h.env["MCPAUTH_CHANGES_REDIS"] = "redis://" + addr + "/0"
	h.env["MCPAUTH_CHANGES_CHANNEL"] = channel
	r := pg("keys", "revoke", id)
	assert.Empty(t, r.stderr)
	want := store.Change{KeyID: id}
	require.Eventually(t, func() bool { return fromRedis.has(want) && fromPG.has(want) }, 2*time.Second, time.Millisecond,
		"redis %v, postgres %v", fromRedis.has(want), fromPG.has(want))

	// A channel PostgreSQL cannot listen on goes to Redis only, silently.
	redisOnly := "mcpauth:" + prefix
	fromRedis2 := redisFeed(t, addr, redisOnly)
	h.env["MCPAUTH_CHANGES_CHANNEL"] = redisOnly
	id2 := rawKeyOnce(t, pg("keys", "create", "--user", "alice", "--name", "b", "--scope", "documents:read"))[4:16]
	r = pg("keys", "revoke", id2)
	assert.Empty(t, r.stderr)
	require.Eventually(t, func() bool { return fromRedis2.has(store.Change{KeyID: id2}) }, 2*time.Second, time.Millisecond)
}
