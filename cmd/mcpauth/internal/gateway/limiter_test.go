package gateway

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/store"
)

// The password of every Redis URL in these tests: it must never appear in
// an error, a log line or a response.
const redisPassword = "hunter2-redis-secret"

// redisAddr is the test Redis server's address, or skips (fails with
// MCPAUTH_TEST_REQUIRE_SERVICES=1).
func redisAddr(t *testing.T) string {
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

// redisPrefix is a fresh bucket prefix whose keys are deleted after the test.
func redisPrefix(t *testing.T, addr string) string {
	t.Helper()
	p := "mcpauth:gwtest:" + rand.Text()[:10] + ":"
	t.Cleanup(func() {
		c := redis.NewClient(&redis.Options{Addr: addr})
		defer c.Close()
		ctx := context.Background()
		iter := c.Scan(ctx, 0, p+"*", 1000).Iterator()
		for iter.Next(ctx) {
			_ = c.Del(ctx, iter.Val()).Err()
		}
	})
	return p
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// withEnv adds variables to what the gateway reads.
func withEnv(kv map[string]string) func(*Deps) {
	return func(d *Deps) {
		base := d.Getenv
		d.Getenv = func(k string) string {
			if v, ok := kv[k]; ok {
				return v
			}
			return base(k)
		}
	}
}

// withKeys makes the gateway read another gateway's key store: two
// instances of one deployment.
func withKeys(keys store.KeyLookup) func(*Deps) {
	return func(d *Deps) { d.Keys = keys }
}

// ready is the gateway's /ready status and body.
func (g *gw) ready() (int, string) {
	g.t.Helper()
	res, err := http.Get(g.base + "/ready")
	require.NoError(g.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(g.t, err)
	return res.StatusCode, string(b)
}

// postCall posts echoCall with key, as post does; it may run on any
// goroutine.
func postCall(url, key string) (int, http.Header, error) {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(echoCall))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	_, err = io.Copy(io.Discard, res.Body)
	return res.StatusCode, res.Header, err
}

const echoCall = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}`

// Two gateway instances with the same budget of N calls, in front of one
// upstream that counts the calls it runs. With budgets in Redis they share
// it: across both, exactly N calls reach the upstream and every other one
// is refused with 429. In memory (the control) each admits N.
func TestRedisSharedBudget(t *testing.T) {
	const budget, perInstance = 5, 12
	addr := redisAddr(t)
	cases := []struct {
		name    string
		backend func(t *testing.T) RateBackend
		want    int
	}{
		{"memory: each instance its own budget", func(*testing.T) RateBackend { return RateBackend{} }, 2 * budget},
		{"redis: one budget", func(t *testing.T) RateBackend {
			return RateBackend{RedisURLEnv: "GW_TEST_REDIS", RedisPrefix: redisPrefix(t, addr)}
		}, budget},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			up := startHTTPFixture(t, true)
			cfg := httpConfig(up.url)
			// Per hour, so that no unit comes back while the test runs.
			cfg.RateLimit.Default = LimitConfig{Rate: budget, Per: Duration(time.Hour)}
			cfg.RateLimit.RateBackend = tc.backend(t)
			env := withEnv(map[string]string{"GW_TEST_REDIS": "redis://" + addr + "/0"})
			var clients []*redis.Client
			t.Cleanup(func() { // after both gateways' Close (cleanups run last first)
				for _, c := range clients {
					assert.ErrorIs(t, c.Ping(context.Background()).Err(), redis.ErrClosed, "Close left the Redis client open")
				}
			})
			a := startGateway(t, cfg, env)
			b := startGateway(t, cfg, env, withKeys(a.keys))
			for _, g := range []*gw{a, b} {
				if g.srv.limiter.pinged != nil {
					clients = append(clients, g.srv.limiter.pinged)
				}
			}
			key := a.key("alice", "tools:basic")

			type outcome struct {
				gateway, status int
				retryAfter      string
			}
			out := make(chan outcome, 2*perInstance)
			var wg sync.WaitGroup
			for i, g := range []*gw{a, b} {
				for range perInstance {
					wg.Go(func() {
						status, h, err := postCall(g.url, key)
						if err != nil {
							t.Error(err)
							return
						}
						out <- outcome{i, status, h.Get("Retry-After")}
					})
				}
			}
			wg.Wait()
			close(out)
			allowed, refused := 0, [2]int{}
			for o := range out {
				switch o.status {
				case http.StatusOK:
					allowed++
				case http.StatusTooManyRequests:
					refused[o.gateway]++
					assert.NotEmpty(t, o.retryAfter, "a 429 without Retry-After")
				default:
					t.Errorf("gateway %d answered %d", o.gateway, o.status)
				}
			}
			assert.Equal(t, tc.want, allowed, "calls admitted across both instances")
			assert.Equal(t, 2*perInstance-tc.want, refused[0]+refused[1], "calls refused with 429")
			assert.EqualValues(t, tc.want, up.ran("echo"), "calls that reached the upstream")
			assert.Positive(t, refused[0], "instance a refused nothing")
			assert.Positive(t, refused[1], "instance b refused nothing")
			if p := cfg.RateLimit.RedisPrefix; p != "" {
				assert.Contains(t, a.log.String(), `"msg":"rate limits: budgets shared through Redis","redis":"`+addr+`"`)
				c := redis.NewClient(&redis.Options{Addr: addr})
				defer c.Close()
				buckets, err := c.Keys(context.Background(), p+"*").Result()
				require.NoError(t, err)
				assert.Len(t, buckets, 1, "one bucket, under rate_limit.redis_prefix: %v", buckets)
			}
		})
	}
}

// Redis unreachable with fail_closed (the default): the gateway starts,
// says so in its log without the password, /ready names the rate limiter,
// and a call that spends a budget is refused with 503 without reaching the
// upstream.
func TestRedisUnreachableFailsClosed(t *testing.T) {
	up := startHTTPFixture(t, true)
	cfg := httpConfig(up.url)
	cfg.RateLimit.RateBackend = RateBackend{RedisURLEnv: "GW_TEST_REDIS"}
	g := startGateway(t, cfg, withEnv(map[string]string{"GW_TEST_REDIS": "redis://:" + redisPassword + "@" + closedAddr(t) + "/0"}))
	key := g.key("alice", "tools:basic")

	status, body := g.ready()
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.JSONEq(t, `{"status":"unavailable","reason":"rate_limiter"}`, body)

	for i := range 3 { // the first waits for Redis, the others find the limiter degraded
		status, _, body := post(t, g.url, key, "", echoCall)
		assert.Equal(t, http.StatusServiceUnavailable, status, "call %d", i)
		assert.NotContains(t, body, "redis")
		assert.NotContains(t, body, redisPassword)
	}
	assert.EqualValues(t, 0, up.ran("echo"), "a call the limiter could not decide ran")

	log := g.log.String()
	assert.Contains(t, log, "rate limits: Redis does not answer; requests that spend a budget get 503")
	assert.NotContains(t, log, redisPassword)

	// With rate limits off, Redis is not needed to be ready.
	off := cfg
	off.RateLimit.Disabled = true
	off.Policy.File = g.srv.cfg.Policy.File
	ignored, err := g.srv.Reload(&off)
	require.NoError(t, err)
	assert.Empty(t, ignored, "the same backend, reported as changed")
	status, body = g.ready()
	assert.Equal(t, http.StatusOK, status, body)
}

// Redis unreachable with fallback_local and instances = 2: each instance
// admits half the budget on its own, and stays ready.
func TestRedisUnreachableFallsBackToShare(t *testing.T) {
	const budget = 4
	up := startHTTPFixture(t, true)
	cfg := httpConfig(up.url)
	cfg.RateLimit.Default = LimitConfig{Rate: budget, Per: Duration(time.Hour)}
	cfg.RateLimit.RateBackend = RateBackend{RedisURLEnv: "GW_TEST_REDIS", OnRedisUnavailable: FallbackLocal, Instances: 2}
	env := withEnv(map[string]string{"GW_TEST_REDIS": "redis://:" + redisPassword + "@" + closedAddr(t) + "/0"})
	a := startGateway(t, cfg, env)
	b := startGateway(t, cfg, env, withKeys(a.keys))
	key := a.key("alice", "tools:basic")

	for _, g := range []*gw{a, b} {
		statuses := map[int]int{}
		for range budget {
			status, _, _ := post(t, g.url, key, "", echoCall)
			statuses[status]++
		}
		assert.Equal(t, map[int]int{http.StatusOK: budget / 2, http.StatusTooManyRequests: budget / 2}, statuses)
		status, body := g.ready()
		assert.Equal(t, http.StatusOK, status, "fallback_local decides without Redis: ready; %s", body)
		assert.Contains(t, g.log.String(), "each instance limits alone")
		assert.NotContains(t, g.log.String(), redisPassword)
	}
	assert.EqualValues(t, budget, up.ran("echo"), "the two instances together admitted more than the budget")
}

// Where budgets live is read at start: a reload that changes it is
// reported and not applied, while the policy part of rate_limit applies
// and the units spent carry over.
func TestReloadKeepsRateBackend(t *testing.T) {
	up := startHTTPFixture(t, true)
	cfg := httpConfig(up.url)
	cfg.RateLimit.Default = LimitConfig{Rate: 2, Per: Duration(time.Hour)}
	g := startGateway(t, cfg)
	cfg.Policy.File = g.srv.cfg.Policy.File
	key := g.key("alice", "tools:basic")
	status, _, _ := post(t, g.url, key, "", echoCall)
	require.Equal(t, http.StatusOK, status)

	next := cfg
	next.RateLimit.Default = LimitConfig{Rate: 1, Per: Duration(time.Hour)}
	next.RateLimit.RateBackend = RateBackend{RedisURLEnv: "GW_NOT_SET", RedisPrefix: "other:", OnRedisUnavailable: FallbackLocal, Instances: 3}
	ignored, err := g.srv.Reload(&next)
	require.NoError(t, err)
	assert.Equal(t, []string{"rate_limit.instances", "rate_limit.on_redis_unavailable", "rate_limit.redis_prefix", "rate_limit.redis_url_env"}, ignored)
	assert.Equal(t, RateBackend{}, g.srv.cfg.RateLimit.RateBackend, "the running backend changed")
	assert.Equal(t, next.RateLimit.Default, g.srv.cfg.RateLimit.Default, "the reloadable part was not applied")

	// The new limit (1) with the unit already spent: refused, without
	// reaching the upstream.
	status, _, _ = post(t, g.url, key, "", echoCall)
	assert.Equal(t, http.StatusTooManyRequests, status)
	assert.EqualValues(t, 1, up.ran("echo"))
	assert.Contains(t, g.log.String(), "rate_limit.redis_url_env")
}

// What New does with the variable redis_url_env names: refuse to start,
// naming the field and the variable, never quoting the value.
func TestRedisURLErrors(t *testing.T) {
	cases := []struct{ name, value, want string }{
		{"unset", "", "$GW_TEST_REDIS is not set"},
		{"blank", "  ", "$GW_TEST_REDIS is not set"},
		{"bad port", "redis://:" + redisPassword + "@127.0.0.1:port/0", "$GW_TEST_REDIS is not a valid redis:// or rediss:// URL"},
		{"bad escape", "redis://:" + redisPassword + "%zz@127.0.0.1/0", "$GW_TEST_REDIS is not a valid"},
		{"other scheme", "http://:" + redisPassword + "@127.0.0.1/", "$GW_TEST_REDIS is not a valid"},
		{"no scheme", ":" + redisPassword + "@127.0.0.1:6379", "$GW_TEST_REDIS is not a valid"},
		{"bad database", "redis://:" + redisPassword + "@127.0.0.1:6379/zero", "$GW_TEST_REDIS is not a valid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := httpConfig("http://127.0.0.1:1/mcp")
			cfg.RateLimit.RateBackend = RateBackend{RedisURLEnv: "GW_TEST_REDIS"}
			cfg.Audit.Sink = "off"
			require.NoError(t, cfg.Validate())
			var log syncBuffer
			_, err := New(&cfg, Deps{
				Keys:   store.NewMemory(),
				Logger: slog.New(slog.NewJSONHandler(&log, nil)),
				Getenv: func(k string) string { return map[string]string{"GW_TEST_REDIS": tc.value}[k] },
			})
			var fe *FieldError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, "rate_limit.redis_url_env", fe.Field)
			assert.Contains(t, fe.Msg, tc.want)
			assert.NotContains(t, err.Error(), redisPassword)
			assert.NotContains(t, log.String(), redisPassword)
		})
	}
}

// The [rate_limit] backend keys: defaults, and errors that name the field
// and never echo a URL put where a variable name belongs.
func TestRateBackendConfig(t *testing.T) {
	read := func(t *testing.T, table string) (*Config, error) {
		c, err := ReadConfig(strings.NewReader("[upstream]\nurl = \"http://a/\"\n[rate_limit]\n" + table))
		if err != nil {
			return nil, err
		}
		return c, c.Validate()
	}
	t.Run("defaults", func(t *testing.T) {
		c, err := read(t, "")
		require.NoError(t, err)
		assert.Equal(t, RateBackend{}, c.RateLimit.RateBackend, "memory unless a variable is named")

		c, err = read(t, `redis_url_env = "MCPAUTH_GATEWAY_REDIS"`)
		require.NoError(t, err)
		assert.Equal(t, RateBackend{RedisURLEnv: "MCPAUTH_GATEWAY_REDIS", OnRedisUnavailable: FailClosed}, c.RateLimit.RateBackend)
		require.NoError(t, c.Validate(), "Validate twice")

		c, err = read(t, "redis_url_env = \"GW_REDIS\"\nredis_prefix = \"app:rl:\"\non_redis_unavailable = \"fallback_local\"\ninstances = 3\nby = \"user\"")
		require.NoError(t, err)
		assert.Equal(t, RateBackend{RedisURLEnv: "GW_REDIS", RedisPrefix: "app:rl:", OnRedisUnavailable: FallbackLocal, Instances: 3}, c.RateLimit.RateBackend)
		require.NoError(t, c.Validate(), "Validate twice")
		assert.Equal(t, "user", c.RateLimit.By)

		c, err = read(t, "redis_url_env = \"GW_REDIS\"\non_redis_unavailable = \"fail_closed\"\ninstances = 1")
		require.NoError(t, err, "the defaults, written out")
		assert.Equal(t, RateBackend{RedisURLEnv: "GW_REDIS", OnRedisUnavailable: FailClosed, Instances: 1}, c.RateLimit.RateBackend)
	})

	cases := []struct{ name, table, field string }{
		{"the URL instead of a name", `redis_url_env = "redis://:` + redisPassword + `@cache:6379/0"`, "rate_limit.redis_url_env"},
		{"name with a dollar", `redis_url_env = "$MCPAUTH_GATEWAY_REDIS"`, "rate_limit.redis_url_env"},
		{"name starting with a digit", `redis_url_env = "1REDIS"`, "rate_limit.redis_url_env"},
		{"name with a space", `redis_url_env = "GW REDIS"`, "rate_limit.redis_url_env"},
		{"the URL under a key of its own", `redis_url = "redis://:` + redisPassword + `@cache:6379/0"`, "rate_limit.redis_url"},
		{"prefix without Redis", `redis_prefix = "x:"`, "rate_limit.redis_prefix"},
		{"mode without Redis", `on_redis_unavailable = "fail_closed"`, "rate_limit.on_redis_unavailable"},
		{"instances without Redis", `instances = 2`, "rate_limit.instances"},
		{"unknown mode", "redis_url_env = \"R\"\non_redis_unavailable = \"fail_open\"", "rate_limit.on_redis_unavailable"},
		{"negative instances", "redis_url_env = \"R\"\non_redis_unavailable = \"fallback_local\"\ninstances = -1", "rate_limit.instances"},
		{"instances with fail_closed", "redis_url_env = \"R\"\ninstances = 2", "rate_limit.instances"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := read(t, tc.table)
			var fe *FieldError
			require.True(t, errors.As(err, &fe), "%v", err)
			assert.Equal(t, tc.field, fe.Field, fe.Msg)
			assert.NotContains(t, err.Error(), redisPassword)
		})
	}
}
