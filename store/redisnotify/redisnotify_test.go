package redisnotify_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/store"
	"github.com/mcpauth/mcpauth/store/redisnotify"
)

func sharedAddr(t *testing.T) string {
	t.Helper()
	addr := os.Getenv("MCPAUTH_TEST_REDIS_ADDR")
	if addr == "" {
		if os.Getenv("MCPAUTH_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatal("MCPAUTH_TEST_REDIS_ADDR is not set")
		}
		t.Skip("MCPAUTH_TEST_REDIS_ADDR is not set")
	}
	return addr
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

func newFeed(t *testing.T, c redis.UniversalClient, o *redisnotify.Options) *redisnotify.Feed {
	t.Helper()
	f, err := redisnotify.New(context.Background(), c, o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.Close(context.Background()) })
	return f
}

// TestPublishReachesEveryFeed: two instances (two clients), one channel.
func TestPublishReachesEveryFeed(t *testing.T) {
	channel := fmt.Sprintf("mcpauth:test:%d", time.Now().UnixNano())
	ca := redis.NewClient(&redis.Options{Addr: sharedAddr(t)})
	cb := redis.NewClient(&redis.Options{Addr: sharedAddr(t)})
	t.Cleanup(func() { ca.Close(); cb.Close() })
	a := newFeed(t, ca, &redisnotify.Options{Channel: channel})
	b := newFeed(t, cb, &redisnotify.Options{Channel: channel})
	var onA, onB received
	defer a.Subscribe(onA.add)()
	defer b.Subscribe(onB.add)()

	start := time.Now()
	require.NoError(t, a.PublishChange(context.Background(), store.Change{KeyID: "k1"}))
	require.Eventually(t, func() bool { return len(onB.all()) == 1 }, 5*time.Second, time.Millisecond)
	t.Logf("publish to delivery on another client: %v", time.Since(start))
	require.NoError(t, b.PublishChange(context.Background(), store.Change{KeyID: "k2", UserID: "alice"}))
	require.Eventually(t, func() bool { return len(onA.all()) == 3 && len(onB.all()) == 3 }, 5*time.Second, time.Millisecond)
	assert.Equal(t, []store.Change{{KeyID: "k1"}, {KeyID: "k2"}, {UserID: "alice"}}, onB.all())
	assert.Equal(t, onB.all(), onA.all())
	require.ErrorIs(t, a.PublishChange(context.Background(), store.Change{}), store.ErrInvalidChange)
}

// privateRedis starts a redis-server of this test's own, which it can stop
// and start again without disturbing the shared one.
type privateRedis struct {
	t    *testing.T
	port int
	cmd  *exec.Cmd
}

func startPrivateRedis(t *testing.T) *privateRedis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("MCPAUTH_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatal("redis-server is not installed")
		}
		t.Skip("redis-server is not installed")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	r := &privateRedis{t: t, port: port}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *privateRedis) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

func (r *privateRedis) start() {
	r.cmd = exec.Command("redis-server", "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	require.NoError(r.t, r.cmd.Start())
	c := redis.NewClient(&redis.Options{Addr: r.addr()})
	defer c.Close()
	require.Eventually(r.t, func() bool { return c.Ping(context.Background()).Err() == nil }, 10*time.Second, 10*time.Millisecond)
}

func (r *privateRedis) stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

// TestOutageLoggedOnceAndLostDelivered: Redis goes away for a while and
// comes back, twice. The feed logs one line when it loses the channel and
// one when it is back, delivers Lost each time it is back, and carries
// changes again; a publish during the outage fails within PublishTimeout.
func TestOutageLoggedOnceAndLostDelivered(t *testing.T) {
	srv := startPrivateRedis(t)
	// With 5 retries of a 100 ms dial, 300 ms apart, the client alone
	// would take about 2 s to give up on a publish; PublishTimeout must cut
	// that short.
	client := redis.NewClient(&redis.Options{Addr: srv.addr(), DialTimeout: 100 * time.Millisecond, ReadTimeout: 100 * time.Millisecond,
		MaxRetries: 5, MinRetryBackoff: 300 * time.Millisecond, MaxRetryBackoff: 300 * time.Millisecond})
	t.Cleanup(func() { client.Close() })
	logs := &syncBuffer{}
	const publishTimeout = 150 * time.Millisecond
	f := newFeed(t, client, &redisnotify.Options{Channel: "c", HealthInterval: 100 * time.Millisecond, ReconnectDelay: 20 * time.Millisecond,
		MaxReconnectDelay: 50 * time.Millisecond, PublishTimeout: publishTimeout, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	var got received
	defer f.Subscribe(got.add)()

	for round := range 2 {
		srv.stop()
		require.Eventually(t, func() bool { return strings.Count(logs.String(), "change channel lost") == round+1 }, 10*time.Second, 5*time.Millisecond)
		start := time.Now()
		require.Error(t, f.PublishChange(context.Background(), store.Change{KeyID: "during"}))
		// The slack covers scheduling on a loaded machine (the suite runs
		// under -race beside other packages); the retries alone take seconds.
		assert.Less(t, time.Since(start), publishTimeout+850*time.Millisecond, "publish bounded by PublishTimeout despite retries")
		time.Sleep(300 * time.Millisecond) // several failed resubscriptions: still one line
		srv.start()
		require.Eventually(t, func() bool {
			lost := 0
			for _, c := range got.all() {
				if c.Lost {
					lost++
				}
			}
			return lost == round+1
		}, 10*time.Second, 5*time.Millisecond, "Lost once back")
		before := len(got.all())
		require.NoError(t, f.PublishChange(context.Background(), store.Change{KeyID: "k1"}))
		require.Eventually(t, func() bool { return len(got.all()) == before+1 }, 5*time.Second, time.Millisecond)
		assert.Equal(t, store.Change{KeyID: "k1"}, got.all()[before])
	}
	assert.Equal(t, 2, strings.Count(logs.String(), "change channel lost"), logs.String())
	assert.Equal(t, 2, strings.Count(logs.String(), "subscribed again"), logs.String())
	for _, c := range got.all() {
		assert.NotEqual(t, "during", c.KeyID, "nothing published during the outage arrives")
	}
}
