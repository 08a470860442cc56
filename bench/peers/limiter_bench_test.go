package peers_test

import (
	"context"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sethvargo/go-limiter/memorystore"

	"github.com/mcpauth/mcpauth/ratelimit"
)

const limiterKeys = 100_000

func keyNames(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "k:" + strconv.FormatUint(rand.Uint64(), 36)
	}
	return keys
}

// spread runs take over all keys from every goroutine, each starting at its
// own offset and stepping by 7, so consecutive calls touch different keys.
func spread(b *testing.B, keys []string, take func(key string)) {
	var seed atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seed.Add(7919) % uint64(len(keys)))
		for pb.Next() {
			i += 7
			if i >= len(keys) {
				i -= len(keys)
			}
			take(keys[i])
		}
	})
}

// BenchmarkLimiterVersusPeer is goal 4 of the performance issue: mcpauth's
// in-memory limiter against sethvargo/go-limiter's memorystore, 100,000
// active keys, admitted requests, b.RunParallel, in the same run. Both
// read the clock once per decision and keep one bucket per key. The peer's
// window is an hour (its bucket refills once per window, by window), so
// that no request of the run is denied by either.
func BenchmarkLimiterVersusPeer(b *testing.B) {
	keys := keyNames(limiterKeys)
	ctx := context.Background()
	limit := ratelimit.Limit{Name: "bench", Rate: 1_000_000_000, Per: time.Second}

	ours := ratelimit.NewMemory(nil)
	b.Cleanup(func() { _ = ours.Close(context.Background()) })
	for _, k := range keys {
		_, _ = ours.Allow(ctx, k, limit, 1)
	}
	peer, err := memorystore.New(&memorystore.Config{Tokens: 1_000_000_000, Interval: time.Hour, SweepInterval: 10 * time.Minute, SweepMinTTL: 10 * time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = peer.Close(context.Background()) })
	for _, k := range keys {
		_, _, _, _, _ = peer.Take(ctx, k)
	}

	b.Run("mcpauth", func(b *testing.B) {
		spread(b, keys, func(k string) {
			if d, err := ours.Allow(ctx, k, limit, 1); err != nil || !d.Allowed {
				b.Fatal("denied", err)
			}
		})
	})
	b.Run("sethvargo-memorystore", func(b *testing.B) {
		spread(b, keys, func(k string) {
			if _, _, _, ok, err := peer.Take(ctx, k); err != nil || !ok {
				b.Fatal("denied", err)
			}
		})
	})
}
