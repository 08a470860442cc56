package redislimit_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/ratelimit"
	"github.com/mcpauth/mcpauth/ratelimit/redislimit"
)

var benchLimit = ratelimit.Limit{Name: "bench", Rate: 1_000_000_000, Per: time.Second}

// runGoroutines runs f from exactly n goroutines and reports decisions per
// second.
func runGoroutines(b *testing.B, n int, f func(i int) error) {
	b.ReportAllocs()
	if n > 1 {
		b.SetParallelism((n + 1) / 2) // GOMAXPROCS=2 on the reference machine
	}
	var ctr atomic.Int64
	start := time.Now()
	if n == 1 {
		for i := 0; b.Loop(); i++ {
			if err := f(i); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		b.RunParallel(func(pb *testing.PB) {
			base := int(ctr.Add(1)) * 1_000_003
			for i := base; pb.Next(); i++ {
				if err := f(i); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "decisions/s")
}

func BenchmarkRedis(b *testing.B) {
	c := sharedClient(b)
	l := newLimiter(b, c, &redislimit.Options{Prefix: testPrefix(b, c)})
	ctx := context.Background()
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "k:" + strconv.Itoa(i)
	}
	for _, n := range []int{1, 16} {
		b.Run("goroutines="+strconv.Itoa(n), func(b *testing.B) {
			runGoroutines(b, n, func(i int) error {
				_, err := l.Allow(ctx, keys[i%len(keys)], benchLimit, 1)
				return err
			})
		})
	}
}

// BenchmarkPeerFixedWindow is the plain INCR+EXPIRE fixed window (two
// commands in one pipeline), the simplest Redis limiter.
func BenchmarkPeerFixedWindow(b *testing.B) {
	c := sharedClient(b)
	prefix := testPrefix(b, c)
	ctx := context.Background()
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = prefix + "fw:" + strconv.Itoa(i)
	}
	for _, n := range []int{1, 16} {
		b.Run("goroutines="+strconv.Itoa(n), func(b *testing.B) {
			runGoroutines(b, n, func(i int) error {
				pipe := c.Pipeline()
				incr := pipe.Incr(ctx, keys[i%len(keys)])
				pipe.ExpireNX(ctx, keys[i%len(keys)], time.Minute)
				if _, err := pipe.Exec(ctx); err != nil {
					return err
				}
				_ = incr.Val() <= 1_000_000_000
				return nil
			})
		})
	}
}
