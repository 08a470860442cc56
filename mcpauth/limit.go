package mcpauth

import (
	"fmt"
	"net/http"

	"github.com/mcpauth/mcpauth/mcpauth/internal/rpcpeek"
	"github.com/mcpauth/mcpauth/ratelimit"
)

// costOf is what a request spends from its rate-limit budget: the sum of
// its messages' costs (RatePolicy.Cost; protocol messages are free by
// default), or the cost of its HTTP method for GET and DELETE.
func (g *Guard) costOf(r *http.Request, x *exchange) int {
	if r.Method != http.MethodPost {
		return g.opts.RatePolicy.Cost(r.Method, "")
	}
	cost := 0
	for i := range x.msgs {
		if m := &x.msgs[i]; m.Kind != rpcpeek.Response {
			cost += g.opts.RatePolicy.Cost(m.Method, targetOf(m))
		}
	}
	return cost
}

// limit spends the request's cost from its bucket and writes the rate-limit
// headers. Every message of a batch is counted; a request that costs more
// than remains is refused whole, and one that costs more than the bucket
// holds is refused without asking the limiter.
func (g *Guard) limit(w http.ResponseWriter, r *http.Request, x *exchange) error {
	cost := g.costOf(r, x)
	if cost == 0 {
		return nil
	}
	bucket, lim := x.entry.bucket, x.entry.limit
	if bucket == "" { // cache disabled or filled before a policy existed
		bucket, lim = g.opts.RatePolicy.Resolve(ratelimit.Subject{
			KeyID: x.entry.principal.KeyID, UserID: x.entry.principal.UserID, Scopes: x.entry.principal.Scopes,
			Metadata: x.entry.principal.Metadata, Override: x.entry.principal.RateLimit,
		})
	}
	if b := lim.EffectiveBurst(); cost > b {
		g.observeLimit(false)
		return &RateLimitError{ID: firstID(x), RetryAfter: lim.Per, Policy: lim.Name, Cost: cost, Burst: b}
	}
	d, err := g.opts.RateLimiter.Allow(r.Context(), bucket, lim, cost)
	if err != nil {
		g.limiterHealth.failed(r.Context(), x.entry.principal.KeyID, err) // logged once per outage
		return fmt.Errorf("%w: rate limiter", ErrUnavailable)
	}
	g.limiterHealth.ok(r.Context())
	g.observeLimit(d.Allowed)
	x.more.rateValues().Set(w.Header(), d, g.opts.LegacyRateLimitHeaders)
	if d.Allowed {
		return nil
	}
	return &RateLimitError{ID: firstID(x), RetryAfter: d.RetryAfter, Policy: d.Policy}
}
