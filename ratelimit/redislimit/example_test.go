package redislimit_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcpauth/mcpauth/ratelimit"
	"github.com/mcpauth/mcpauth/ratelimit/redislimit"
)

// Several app instances pointing at one Redis share one budget per key.
// When Redis is down this one keeps serving with a local limiter and logs
// the change; Degraded feeds a health check.
func ExampleNew() {
	client := redis.NewClient(&redis.Options{
		Addr:        "127.0.0.1:6379",
		DialTimeout: 200 * time.Millisecond,
		ReadTimeout: 100 * time.Millisecond,
	})
	defer client.Close()

	lim, err := redislimit.New(client, &redislimit.Options{
		OnUnavailable: redislimit.FallbackLocal,
		OnStateChange: func(degraded bool, err error) {
			slog.Info("rate limiter state", "degraded", degraded)
		},
	})
	if err != nil {
		panic(err)
	}
	defer lim.Close(context.Background())

	d, err := lim.Allow(context.Background(), "k:AbC123", ratelimit.DefaultLimit, 1)
	switch {
	case errors.Is(err, ratelimit.ErrUnavailable):
		fmt.Println("503")
	case err != nil:
		panic(err)
	case !d.Allowed:
		fmt.Println("429, retry in", d.RetryAfter)
	}
}
