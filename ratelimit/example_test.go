package ratelimit_test

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/mcpauth/mcpauth/ratelimit"
)

func ExampleMemory() {
	lim := ratelimit.NewMemory(nil)
	defer lim.Close(context.Background())

	perMinute := ratelimit.Limit{Name: "free", Rate: 3, Per: time.Minute}
	for range 4 {
		d, err := lim.Allow(context.Background(), "k:AbC123", perMinute, 1)
		if err != nil {
			panic(err)
		}
		fmt.Println(d.Allowed, d.Remaining, d.RetryAfter.Round(time.Second))
	}
	// Output:
	// true 2 0s
	// true 1 0s
	// true 0 0s
	// false 0 20s
}

func ExamplePolicy() {
	p := &ratelimit.Policy{
		Tiers: map[string]ratelimit.Limit{
			"free": {Rate: 60, Per: time.Minute},
			"paid": {Rate: 300, Per: time.Minute},
		},
		Costs: map[string]int{"tools/call:search_documents": 5, "ping": 0},
	}
	if err := p.Validate(); err != nil {
		panic(err)
	}
	bucket, limit := p.Resolve(ratelimit.Subject{KeyID: "AbC123", UserID: "alice", Metadata: map[string]string{"tier": "paid"}})
	fmt.Println(bucket, limit.Name, limit.Rate, limit.Per)
	bucket, limit = p.Resolve(ratelimit.Subject{KeyID: "XyZ789", UserID: "bob", Override: 10})
	fmt.Println(bucket, limit.Name, limit.Rate, limit.Per)
	fmt.Println(p.Cost("tools/call", "search_documents"), p.Cost("tools/call", "echo"), p.Cost("ping", ""))
	// Output:
	// k:AbC123 paid 300 1m0s
	// k:XyZ789 key 10 1m0s
	// 5 1 0
}

func ExampleSetHeaders() {
	h := http.Header{}
	ratelimit.SetHeaders(h, ratelimit.Decision{
		Limit: 100, Remaining: 0, Window: time.Minute,
		ResetAfter: 59 * time.Second, RetryAfter: 400 * time.Millisecond, Policy: "default",
	}, true)
	for _, k := range []string{"RateLimit-Policy", "RateLimit", "Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} {
		fmt.Printf("%s: %s\n", k, h.Get(k))
	}
	// Output:
	// RateLimit-Policy: "default";q=100;w=60
	// RateLimit: "default";r=0;t=59
	// Retry-After: 1
	// X-RateLimit-Limit: 100
	// X-RateLimit-Remaining: 0
	// X-RateLimit-Reset: 59
}
