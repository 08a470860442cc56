package ratelimit_test

import (
	"context"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/mcpauth/mcpauth/ratelimit"
	"github.com/mcpauth/mcpauth/ratelimit/limitertest"
)

const benchKeys = 100_000

func benchKeyNames(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "k:" + strconv.FormatUint(rand.Uint64(), 36)
	}
	return keys
}

// generous never denies at benchmark speeds, so every path measured is an
// admitted request on a known key.
var generous = ratelimit.Limit{Name: "bench", Rate: 1_000_000_000, Per: time.Second}

// BenchmarkMemory is the in-memory limiter with 100,000 active keys,
// decisions spread over all of them from every goroutine.
func BenchmarkMemory(b *testing.B) {
	keys := benchKeyNames(benchKeys)
	m := ratelimit.NewMemory(nil)
	defer m.Close(context.Background())
	ctx := context.Background()
	for _, k := range keys {
		_, _ = m.Allow(ctx, k, generous, 1)
	}
	var seed atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seed.Add(7919) % benchKeys)
		for pb.Next() {
			i += 7
			if i >= benchKeys {
				i -= benchKeys
			}
			if _, err := m.Allow(ctx, keys[i], generous, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkMemoryDenied measures denials (the path taken under attack).
func BenchmarkMemoryDenied(b *testing.B) {
	keys := benchKeyNames(benchKeys)
	m := ratelimit.NewMemory(nil)
	defer m.Close(context.Background())
	ctx := context.Background()
	stingy := ratelimit.Limit{Name: "bench", Rate: 1, Per: time.Hour}
	for _, k := range keys {
		_, _ = m.Allow(ctx, k, stingy, 1)
	}
	var seed atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seed.Add(7919) % benchKeys)
		for pb.Next() {
			i += 7
			if i >= benchKeys {
				i -= benchKeys
			}
			if d, _ := m.Allow(ctx, keys[i], stingy, 1); d.Allowed {
				b.Fatal("allowed")
			}
		}
	})
}

// mutexMap is the obvious limiter: one mutex around a map of
// rate.Limiters, time read outside the lock.
type mutexMap struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter
}

func (mm *mutexMap) allow(key string) bool {
	mm.mu.Lock()
	l, ok := mm.m[key]
	if !ok {
		l = rate.NewLimiter(rate.Limit(generous.Rate), generous.Rate)
		mm.m[key] = l
	}
	mm.mu.Unlock()
	return l.AllowN(time.Now(), 1)
}

// BenchmarkPeerMutexMap is the peer: sync.Mutex + map[string]*rate.Limiter.
func BenchmarkPeerMutexMap(b *testing.B) {
	keys := benchKeyNames(benchKeys)
	mm := &mutexMap{m: make(map[string]*rate.Limiter)}
	for _, k := range keys {
		mm.allow(k)
	}
	var seed atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seed.Add(7919) % benchKeys)
		for pb.Next() {
			i += 7
			if i >= benchKeys {
				i -= benchKeys
			}
			mm.allow(keys[i])
		}
	})
}

// BenchmarkMemoryMillionKeys measures the heap held by 1,000,000 keys and
// what is left after they go idle and the sweeper runs. Run it with
// -benchtime=1x.
func BenchmarkMemoryMillionKeys(b *testing.B) {
	const n = 1_000_000
	for range b.N {
		clock := limitertest.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		m := ratelimit.NewMemory(&ratelimit.MemoryOptions{Now: clock.Now, IdleTimeout: time.Minute, SweepInterval: 10 * time.Millisecond})
		ctx := context.Background()
		lim := ratelimit.Limit{Name: "m", Rate: 100, Per: time.Minute}
		before := heapInUse()
		var buf []byte
		for i := range n {
			buf = strconv.AppendInt(append(buf[:0], "k:user-"...), int64(i), 10)
			if _, err := m.Allow(ctx, string(buf), lim, 1); err != nil {
				b.Fatal(err)
			}
		}
		full := heapInUse()
		clock.Advance(2 * time.Minute)
		deadline := time.Now().Add(30 * time.Second)
		for m.Len() > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if m.Len() != 0 {
			b.Fatalf("%d keys left after idle timeout", m.Len())
		}
		after := heapInUse()
		b.ReportMetric(float64(full-before)/n, "B/key")
		b.ReportMetric(float64(full-before)/(1<<20), "MiB-1M-keys")
		b.ReportMetric(float64(int64(after)-int64(before))/(1<<20), "MiB-after-sweep")
		_ = m.Close(ctx)
		runtime.KeepAlive(m)
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

func BenchmarkPolicyResolve(b *testing.B) {
	p := tiered()
	s := ratelimit.Subject{KeyID: "AbC123xyz", UserID: "alice", Metadata: map[string]string{"tier": "paid"}}
	b.ReportAllocs()
	for b.Loop() {
		p.Resolve(s)
	}
}

// BenchmarkHeadersVersusDecision compares writing the RateLimit headers
// with the decision they report, one key, one goroutine: the headers must
// cost less than the decision.
func BenchmarkHeadersVersusDecision(b *testing.B) {
	m := ratelimit.NewMemory(nil)
	defer m.Close(context.Background())
	ctx := context.Background()
	d, _ := m.Allow(ctx, "k:one", generous, 1)
	b.Run("decision", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.Allow(ctx, "k:one", generous, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
	h := http.Header{}
	b.Run("SetHeaders", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ratelimit.SetHeaders(h, d, false)
		}
	})
	b.Run("HeaderValues.Set", func(b *testing.B) { // as the middleware writes them
		b.ReportAllocs()
		var hv ratelimit.HeaderValues
		for b.Loop() {
			hv.Set(h, d, false)
		}
	})
}
