package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcpauth/mcpauth/ratelimit"
	"github.com/mcpauth/mcpauth/ratelimit/redislimit"
)

// redisStartTimeout bounds the PING at start that reports whether Redis
// answers, so that an unreachable one delays the start by at most that.
const redisStartTimeout = 2 * time.Second

// limiter is where every generation's Guard spends rate-limit budgets. New
// builds it once, so that a reload neither refills nor empties them.
type limiter struct {
	ratelimit.Limiter
	close func(ctx context.Context) error
	// pinged is the Redis client /ready pings: set when budgets live in
	// Redis with fail_closed, where an unreachable Redis refuses requests.
	pinged *redis.Client
}

// newLimiter builds the limiter b names: in memory, or on the Redis whose
// URL is in the variable b.RedisURLEnv. A variable that is unset or does
// not parse is a *FieldError that does not quote it (it may hold a
// password). A Redis that does not answer is not an error: the gateway
// starts, logs a warning, and answers as b.OnRedisUnavailable says until
// Redis is back (the limiter probes it in the background).
func newLimiter(b RateBackend, getenv func(string) string, log *slog.Logger) (*limiter, error) {
	if b.RedisURLEnv == "" {
		m := ratelimit.NewMemory(nil)
		return &limiter{Limiter: m, close: m.Close}, nil
	}
	raw := strings.TrimSpace(getenv(b.RedisURLEnv))
	if raw == "" {
		return nil, fieldErr("rate_limit.redis_url_env", "$%s is not set", b.RedisURLEnv)
	}
	opts, err := redis.ParseURL(raw)
	if err != nil { // its text may quote the URL
		return nil, fieldErr("rate_limit.redis_url_env", "$%s is not a valid redis:// or rediss:// URL", b.RedisURLEnv)
	}
	mode := redislimit.FailClosed
	if b.OnRedisUnavailable == FallbackLocal {
		mode = redislimit.FallbackLocal
	}
	client := redis.NewClient(opts)
	rl, err := redislimit.New(client, &redislimit.Options{
		Prefix: b.RedisPrefix, OnUnavailable: mode, Instances: b.Instances, Logger: log,
	})
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("rate limiter: %w", err)
	}
	l := &limiter{Limiter: rl, close: func(ctx context.Context) error {
		return errors.Join(rl.Close(ctx), client.Close())
	}}
	if mode == redislimit.FailClosed {
		l.pinged = client
	}

	ctx, cancel := context.WithTimeout(context.Background(), redisStartTimeout)
	defer cancel()
	attrs := []any{slog.String("redis", opts.Addr), slog.String("on_redis_unavailable", b.OnRedisUnavailable)}
	if err := client.Ping(ctx).Err(); err != nil {
		then := "requests that spend a budget get 503 until it does"
		if mode == redislimit.FallbackLocal {
			then = "each instance limits alone, with its share of every budget, until it does"
		}
		log.Warn("rate limits: Redis does not answer; "+then,
			append(attrs, slog.String("error", scrub(err.Error(), opts.Password)))...)
	} else {
		log.Info("rate limits: budgets shared through Redis", attrs...)
	}
	return l, nil
}

// ready reports whether the limiter can decide: with Redis in fail_closed,
// whether Redis answers a PING. The memory limiter, and Redis with
// fallback_local (which decides alone meanwhile), are always ready.
func (l *limiter) ready(ctx context.Context) error {
	if l.pinged == nil {
		return nil
	}
	return l.pinged.Ping(ctx).Err()
}

// Close stops the limiter and closes its Redis client.
func (l *limiter) Close(ctx context.Context) error { return l.close(ctx) }

// scrub removes secret from msg.
func scrub(msg, secret string) string {
	if secret == "" {
		return msg
	}
	return strings.ReplaceAll(msg, secret, "…")
}
