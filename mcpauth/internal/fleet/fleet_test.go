// Package fleet is the multi-instance harness of issue 13: three OS
// processes (this test binary re-executed as servers) on one PostgreSQL and
// one Redis, measuring what must hold across instances: the shared rate
// budget, how long a revocation and a rotation's grace end take to be
// refused on every instance (with each change channel and without), one
// audit chain with as many events as requests, and a Redis outage.
//
// The short form runs with the test suite when PostgreSQL and Redis are
// configured; MCPAUTH_FLEET_LONG=1 runs the long form whose figures are in
// docs/BENCHMARKS.md.
package fleet

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/audit/sqlaudit"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/store/sqlstore"
)

func TestMain(m *testing.M) {
	if os.Getenv(envRole) == "instance" {
		if err := runInstance(); err != nil {
			fmt.Fprintln(os.Stderr, "instance:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func services(t *testing.T) (dsn, redisAddr string) {
	t.Helper()
	dsn, redisAddr = os.Getenv("MCPAUTH_TEST_POSTGRES_DSN"), os.Getenv("MCPAUTH_TEST_REDIS_ADDR")
	if dsn == "" || redisAddr == "" {
		if os.Getenv("MCPAUTH_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatal("MCPAUTH_TEST_POSTGRES_DSN and MCPAUTH_TEST_REDIS_ADDR must be set")
		}
		t.Skip("MCPAUTH_TEST_POSTGRES_DSN and MCPAUTH_TEST_REDIS_ADDR are not set")
	}
	return dsn, redisAddr
}

func long() bool { return os.Getenv("MCPAUTH_FLEET_LONG") == "1" }

// instance is one running server process.
type instance struct {
	name   string
	url    string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *syncBuffer
	mu     sync.Mutex
	sent   int // requests answered by this instance
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

// fleet is one run: its tables, its instances and the harness's Manager
// (the operator's tool, like the CLI, on its own process).
type fleet struct {
	t         *testing.T
	prefix    string
	db        *sql.DB
	keys      *sqlstore.Store
	events    *sqlaudit.Store
	mgr       *keyadmin.Manager
	instances []*instance
	client    *http.Client
}

type fleetConfig struct {
	feed      string // "pg", "redis", "none"
	budget    int    // per key, per hour
	limiter   string // Redis address for the limiter
	fallbackN int    // FallbackLocal with Instances = n; 0 fails closed
}

func startFleet(t *testing.T, cfg fleetConfig) *fleet {
	t.Helper()
	dsn, _ := services(t)
	ctx := context.Background()
	f := &fleet{t: t, prefix: fmt.Sprintf("fleet%d_", time.Now().UnixNano()%1e12), client: &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	db, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	configurePool(db)
	f.db = db
	f.keys, err = sqlstore.New(db, &sqlstore.Options{Dialect: sqlstore.Postgres, TablePrefix: f.prefix})
	require.NoError(t, err)
	require.NoError(t, f.keys.Migrate(ctx))
	f.events, err = sqlaudit.New(db, &sqlaudit.Options{Dialect: sqlstore.Postgres, TablePrefix: f.prefix, Chain: true})
	require.NoError(t, err)
	require.NoError(t, f.events.Migrate(ctx))
	t.Cleanup(func() {
		for _, tbl := range []string{"keys", "key_addresses", "audit_events", "audit_head", "audit_anchors", "schema_migrations"} {
			_, _ = db.Exec("DROP TABLE IF EXISTS " + f.prefix + tbl)
		}
		_ = db.Close()
	})
	feed, closeFeed, err := openChangeFeed(ctx, cfg.feed, f.prefix+"changes", nil)
	require.NoError(t, err)
	t.Cleanup(closeFeed)
	mopts := &keyadmin.Options{Peppers: nil, Audit: f.events, Instance: "harness", Actor: "cli:harness", MaxActiveKeys: -1}
	mopts.Peppers = append(mopts.Peppers, pepper)
	if feed != nil {
		mopts.Changes = feed
	}
	f.mgr, err = keyadmin.New(f.keys, mopts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.mgr.Close(context.Background()) })

	for i := range 3 {
		in := &instance{name: fmt.Sprintf("instance-%d", i+1), stderr: &syncBuffer{}}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envRole+"=instance", envName+"="+in.name, envPrefix+"="+f.prefix, envFeed+"="+cfg.feed,
			envLimiter+"="+cfg.limiter, envBudget+"="+strconv.Itoa(cfg.budget), envFallback+"="+strconv.Itoa(cfg.fallbackN))
		if !long() && cfg.fallbackN == 0 {
			// The short form runs in the test suite, under -race on a loaded
			// machine: give Redis calls time, so that only what is tested
			// (changes, budgets) decides a status.
			cmd.Env = append(cmd.Env, envLimiterTimeout+"=2s")
		}
		cmd.Stderr = in.stderr
		in.stdin, err = cmd.StdinPipe()
		require.NoError(t, err)
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		in.cmd = cmd
		line, err := bufio.NewReader(out).ReadString('\n')
		require.NoError(t, err, "instance %s did not start: %s", in.name, in.stderr.String())
		addr, ok := strings.CutPrefix(strings.TrimSpace(line), "ADDR ")
		require.True(t, ok, line)
		in.url = "http://" + addr + "/mcp"
		f.instances = append(f.instances, in)
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	}
	return f
}

// stop shuts every instance down cleanly (their audit writers flush).
func (f *fleet) stop() {
	for _, in := range f.instances {
		_ = in.stdin.Close()
	}
	for _, in := range f.instances {
		require.NoError(f.t, in.cmd.Wait(), "instance %s: %s", in.name, in.stderr.String())
	}
}

const toolCall = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","arguments":{}}}`

// call sends one MCP request with raw to in and returns the status.
func (f *fleet) call(in *instance, raw string) int {
	req, _ := http.NewRequest(http.MethodPost, in.url, strings.NewReader(toolCall))
	req.Header.Set("Authorization", "Bearer "+raw)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := f.client.Do(req)
	require.NoError(f.t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	in.mu.Lock()
	in.sent++
	in.mu.Unlock()
	return resp.StatusCode
}

func (f *fleet) newKey() keyadmin.CreatedKey {
	k, err := f.mgr.Create(context.Background(), "alice", keyadmin.CreateOptions{})
	require.NoError(f.t, err)
	return k
}

// untilRefused calls each instance with raw in a loop until it answers
// 401, and returns when each did, measured from `from`.
func (f *fleet) untilRefused(raw string, from time.Time) []time.Duration {
	out := make([]time.Duration, len(f.instances))
	var wg sync.WaitGroup
	for i, in := range f.instances {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(60 * time.Second)
			for time.Now().Before(deadline) {
				if f.call(in, raw) == http.StatusUnauthorized {
					out[i] = time.Since(from)
					return
				}
				time.Sleep(200 * time.Microsecond) // resolution enough; spares the 2 cores
			}
			out[i] = time.Hour // never refused: fails every bound
		}()
	}
	wg.Wait()
	return out
}

// warm makes every instance cache raw.
func (f *fleet) warm(raw string) {
	for _, in := range f.instances {
		require.Equal(f.t, http.StatusOK, f.call(in, raw))
	}
}

// dist is a latency distribution.
type dist []time.Duration

func (d dist) pct(p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(float64(len(s))*p+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

func (d dist) String() string {
	return fmt.Sprintf("n=%d p50=%v p99=%v max=%v", len(d), d.pct(0.5).Round(10*time.Microsecond),
		d.pct(0.99).Round(10*time.Microsecond), d.pct(1).Round(10*time.Microsecond))
}

// measureRevoke revokes n cached keys, one at a time, and returns the time
// from the start of the Revoke call (before its commit) to refusal on each
// instance.
func (f *fleet) measureRevoke(n int) dist {
	var d dist
	for range n {
		k := f.newKey()
		f.warm(k.Raw)
		start := time.Now()
		require.NoError(f.t, f.mgr.Revoke(context.Background(), k.Key.ID))
		d = append(d, f.untilRefused(k.Raw, start)...)
	}
	return d
}

// measureGraceEnd rotates n cached keys with grace and returns the time
// from the end of each old key's grace to refusal on each instance.
func (f *fleet) measureGraceEnd(n int, grace time.Duration) dist {
	var d dist
	for range n {
		k := f.newKey()
		f.warm(k.Raw)
		_, err := f.mgr.Rotate(context.Background(), k.Key.ID, grace)
		require.NoError(f.t, err)
		old, err := f.mgr.Get(context.Background(), k.Key.ID)
		require.NoError(f.t, err)
		end := old.ExpiresAt
		// Before the end: still served everywhere (the cache was refreshed
		// with the new expiry, not dropped for good).
		time.Sleep(time.Until(end.Add(-grace / 2)))
		for _, in := range f.instances {
			require.Equal(f.t, http.StatusOK, f.call(in, k.Raw), "in its grace on %s", in.name)
		}
		time.Sleep(time.Until(end.Add(-5 * time.Millisecond)))
		for _, x := range f.untilRefused(k.Raw, end) {
			d = append(d, max(0, x))
		}
	}
	return d
}

// TestFleetChangeToRefusal is item 1 and 2 of issue 13: for each change
// channel, the time from a change to its refusal on all three instances.
// With a channel the bound is p99 ≤ 100 ms and max ≤ 250 ms; without
// one, the poll's (1 s by default) plus a round trip.
func TestFleetChangeToRefusal(t *testing.T) {
	_, redisAddr := services(t)
	revokes, rotations := 10, 3
	if long() {
		revokes, rotations = 100, 20
	}
	for _, feed := range []string{"pg", "redis", "none"} {
		t.Run(feed, func(t *testing.T) {
			f := startFleet(t, fleetConfig{feed: feed, budget: 1_000_000, limiter: redisAddr})
			nr, ng := revokes, rotations
			if feed == "none" && !long() {
				nr, ng = 3, 2 // each takes about a poll interval
			}
			rev := f.measureRevoke(nr)
			graceLen := 300 * time.Millisecond
			if !long() {
				graceLen = 2 * time.Second // a request inside the grace must arrive inside it, even under -race
			}
			grace := f.measureGraceEnd(ng, graceLen)
			t.Logf("feed=%s revoke (from the Revoke call) %v", feed, rev)
			t.Logf("feed=%s rotate grace end (from the end of the grace) %v", feed, grace)
			bound, bmax := 100*time.Millisecond, 250*time.Millisecond
			if feed == "none" {
				bound, bmax = 1500*time.Millisecond, 2*time.Second // poll 1s + round trips
			}
			if !long() {
				// The short form (in the test suite, under -race, on a
				// shared machine) proves that every change is refused on
				// every instance; the bounds are the long form's, measured
				// on its own (docs/BENCHMARKS.md).
				bound, bmax = 5*time.Second, 5*time.Second
			}
			assert.LessOrEqual(t, rev.pct(0.99), bound, "revoke p99")
			assert.LessOrEqual(t, rev.pct(1), bmax, "revoke max")
			assert.LessOrEqual(t, grace.pct(0.99), bound, "grace end p99")
			assert.LessOrEqual(t, grace.pct(1), bmax, "grace end max")
			f.stop()
			f.checkAudit(t)
		})
	}
}

// checkAudit: every request an instance answered is one event of that
// instance, every key change one event of the harness, and the chain the
// four processes wrote together verifies.
func (f *fleet) checkAudit(t *testing.T) {
	rows, err := f.db.Query("SELECT instance, action, actor, count(*) FROM " + f.prefix + "audit_events GROUP BY instance, action, actor ORDER BY 1, 2")
	require.NoError(t, err)
	defer rows.Close()
	requests := map[string]int{}
	changes := map[string]int{}
	for rows.Next() {
		var instance, action, actor string
		var n int
		require.NoError(t, rows.Scan(&instance, &action, &actor, &n))
		if action == "" || action == "expired_key_used" {
			requests[instance] += n
		} else {
			assert.Equal(t, "harness", instance)
			assert.Equal(t, "cli:harness", actor)
			changes[action] += n
		}
	}
	require.NoError(t, rows.Err())
	for _, in := range f.instances {
		t.Logf("%s: %d requests, %d audit events", in.name, in.sent, requests[in.name])
		assert.Equal(t, in.sent, requests[in.name], "events = requests on %s", in.name)
	}
	t.Logf("key changes audited: %v", changes)
	assert.Positive(t, changes["created"])
	v, err := f.events.Verify(context.Background(), time.Time{}, time.Time{})
	require.NoError(t, err, "the shared chain verifies")
	t.Logf("chain verified: %d events", v.Events)
}

// TestFleetSharedBudget: three instances spend one key's budget together;
// admitted stays within 1 % of it.
func TestFleetSharedBudget(t *testing.T) {
	_, redisAddr := services(t)
	budget := 300
	if long() {
		budget = 3000
	}
	f := startFleet(t, fleetConfig{feed: "pg", budget: budget, limiter: redisAddr})
	k := f.newKey()
	var mu sync.Mutex
	admitted, refused := 0, 0
	var wg sync.WaitGroup
	start := time.Now()
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range budget / 2 {
				st := f.call(f.instances[(w+i)%3], k.Raw)
				mu.Lock()
				switch st {
				case http.StatusOK:
					admitted++
				case http.StatusTooManyRequests:
					refused++
				default:
					t.Errorf("status %d", st)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	// The bucket refills at budget per hour: count what the elapsed time added.
	allowed := budget + int(time.Since(start)*time.Duration(budget)/time.Hour)
	t.Logf("budget %d (with refill %d): admitted %d, refused %d over %v on 3 instances", budget, allowed, admitted, refused, time.Since(start).Round(time.Millisecond))
	assert.LessOrEqual(t, admitted, allowed+allowed/100)
	assert.GreaterOrEqual(t, admitted, budget-budget/100)
	f.stop()
	f.checkAudit(t)
}
