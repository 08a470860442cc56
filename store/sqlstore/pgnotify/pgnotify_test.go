package pgnotify_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/store"
	"github.com/mcpauth/mcpauth/store/sqlstore/pgnotify"
)

func dsn(t *testing.T) string {
	t.Helper()
	d := os.Getenv("MCPAUTH_TEST_POSTGRES_DSN")
	if d == "" {
		if os.Getenv("MCPAUTH_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatal("MCPAUTH_TEST_POSTGRES_DSN is not set")
		}
		t.Skip("MCPAUTH_TEST_POSTGRES_DSN is not set")
	}
	return d
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// received collects what a subscriber got.
type received struct {
	mu sync.Mutex
	cs []store.Change
}

func (r *received) add(c store.Change) { r.mu.Lock(); r.cs = append(r.cs, c); r.mu.Unlock() }
func (r *received) all() []store.Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]store.Change(nil), r.cs...)
}

func newFeed(t *testing.T, channel string, logs *syncBuffer) *pgnotify.Feed {
	t.Helper()
	o := &pgnotify.Options{Channel: channel, ReconnectDelay: 20 * time.Millisecond}
	if logs != nil {
		o.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}
	f, err := pgnotify.New(context.Background(), dsn(t), o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.Close(context.Background()) })
	return f
}

// TestPublishReachesEveryFeed: a change published by one instance's feed
// reaches the subscribers of another's (and its own), key and user changes
// alike; invalid changes are refused before anything is sent.
func TestPublishReachesEveryFeed(t *testing.T) {
	channel := fmt.Sprintf("mcpauth_test_%d", time.Now().UnixNano())
	a, b := newFeed(t, channel, nil), newFeed(t, channel, nil)
	var onA, onB received
	defer a.Subscribe(onA.add)()
	unsubB := b.Subscribe(onB.add)

	start := time.Now()
	require.NoError(t, a.PublishChange(context.Background(), store.Change{KeyID: "k1"}))
	require.Eventually(t, func() bool { return len(onB.all()) == 1 }, 5*time.Second, time.Millisecond)
	t.Logf("publish to delivery on another connection: %v", time.Since(start))
	require.NoError(t, b.PublishChange(context.Background(), store.Change{UserID: "alice"}))
	require.Eventually(t, func() bool { return len(onA.all()) == 2 && len(onB.all()) == 2 }, 5*time.Second, time.Millisecond)
	assert.Equal(t, []store.Change{{KeyID: "k1"}, {UserID: "alice"}}, onB.all())
	assert.Equal(t, onB.all(), onA.all(), "the publisher's own feed hears it too")

	require.ErrorIs(t, a.PublishChange(context.Background(), store.Change{}), store.ErrInvalidChange)
	unsubB()
	require.NoError(t, a.PublishChange(context.Background(), store.Change{KeyID: "k2"}))
	require.Eventually(t, func() bool { return len(onA.all()) == 3 }, 5*time.Second, time.Millisecond)
	assert.Len(t, onB.all(), 2, "nothing after unsubscribe")

	_, err := pgnotify.New(context.Background(), dsn(t), &pgnotify.Options{Channel: "Bad-Channel"})
	require.ErrorIs(t, err, pgnotify.ErrInvalidOptions)
}

// TestListenerReconnects: the server ends the listening session (as a
// restart or failover would); the feed logs the loss once, reconnects,
// logs once, delivers Lost (so Guards drop their caches) and hears changes
// again.
func TestListenerReconnects(t *testing.T) {
	channel := fmt.Sprintf("mcpauth_test_%d", time.Now().UnixNano())
	logs := &syncBuffer{}
	f := newFeed(t, channel, logs)
	var got received
	defer f.Subscribe(got.add)()

	admin, err := pgx.Connect(context.Background(), dsn(t))
	require.NoError(t, err)
	defer admin.Close(context.Background())
	for round := range 2 {
		var n int
		require.NoError(t, admin.QueryRow(context.Background(),
			"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query = $1", "LISTEN "+channel).Scan(&n))
		require.Equal(t, 1, n, "one listening session")
		require.Eventually(t, func() bool {
			lost := 0
			for _, c := range got.all() {
				if c.Lost {
					lost++
				}
			}
			return lost == round+1
		}, 10*time.Second, 5*time.Millisecond, "Lost after reconnecting")
		before := len(got.all())
		require.NoError(t, f.PublishChange(context.Background(), store.Change{KeyID: "k1"}))
		require.Eventually(t, func() bool { return len(got.all()) == before+1 }, 5*time.Second, time.Millisecond)
		assert.Equal(t, store.Change{KeyID: "k1"}, got.all()[before])
	}
	assert.Equal(t, 2, strings.Count(logs.String(), "change channel lost"), logs.String())
	assert.Equal(t, 2, strings.Count(logs.String(), "listening again"), logs.String())
}
