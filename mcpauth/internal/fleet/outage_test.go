package fleet

import (
	"context"
	"net"
	"net/http"
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
)

// startPrivateRedis runs a redis-server of the harness's own for the
// limiter, so that it can be killed mid-run; it returns its address and a
// stop func.
func startPrivateRedis(t *testing.T) (string, func()) {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("MCPAUTH_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatal("redis-server is not installed")
		}
		t.Skip("redis-server is not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	require.NoError(t, cmd.Start())
	var once sync.Once
	stop := func() { once.Do(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }) }
	t.Cleanup(stop)
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	require.Eventually(t, func() bool { return c.Ping(context.Background()).Err() == nil }, 10*time.Second, 10*time.Millisecond)
	return addr, stop
}

// TestFleetRedisOutage: the limiter's Redis dies mid-run. Each instance
// logs the outage once (not per request), no request waits more than the
// limiter's Timeout (100 ms) longer than usual, and FallbackLocal with
// Instances = 3 admits at most a third of the budget per instance.
func TestFleetRedisOutage(t *testing.T) {
	services(t)
	addr, stopRedis := startPrivateRedis(t)
	const budget = 90
	f := startFleet(t, fleetConfig{feed: "pg", budget: budget, limiter: addr, fallbackN: 3})
	before := f.newKey()
	for i := range 30 {
		require.Equal(t, http.StatusOK, f.call(f.instances[i%3], before.Raw))
	}

	stopRedis()
	k := f.newKey() // a fresh budget: only the fallback decides it
	var mu sync.Mutex
	admitted := map[string]int{}
	var worst time.Duration
	var wg sync.WaitGroup
	for _, in := range f.instances {
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 50 {
					start := time.Now()
					st := f.call(in, k.Raw)
					el := time.Since(start)
					mu.Lock()
					worst = max(worst, el)
					if st == http.StatusOK {
						admitted[in.name]++
					}
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	total := 0
	for _, in := range f.instances {
		t.Logf("outage: %s admitted %d of 200 (share %d of budget %d)", in.name, admitted[in.name], budget/3, budget)
		assert.LessOrEqual(t, admitted[in.name], budget/3, "within its share")
		total += admitted[in.name]
	}
	t.Logf("outage: admitted %d in all for a budget of %d; slowest request %v", total, budget, worst.Round(time.Millisecond))
	assert.LessOrEqual(t, total, budget)
	if long() { // a latency bound is a measurement: the long form's, not the suite's under -race
		assert.Less(t, worst, 100*time.Millisecond+150*time.Millisecond, "at most the limiter's Timeout added (plus scheduling on 2 cores)")
	} else {
		assert.Less(t, worst, 2*time.Second, "the limiter's Timeout bounds the wait: no request waits for go-redis's retries")
	}
	f.stop()
	for _, in := range f.instances {
		lines := strings.Count(in.stderr.String(), "rate limiter lost redis")
		t.Logf("%s: %d log line(s) for the outage, %d lines in all", in.name, lines, strings.Count(in.stderr.String(), "\n"))
		assert.Equal(t, 1, lines, "one line per state change on %s:\n%s", in.name, in.stderr.String())
		assert.Zero(t, strings.Count(in.stderr.String(), "rate limiter is failing"), "FallbackLocal answers: the Guard sees no failure")
	}
	f.checkAudit(t)
}
