package mcpauth

import (
	"context"
	"time"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/mcpauth/observe"
	"github.com/mcpauth/mcpauth/store"
)

// observeRequest reports a request to Options.Metrics; err is its refusal,
// nil when allowed.
func (g *Guard) observeRequest(x *exchange, err error) {
	if g.opts.Metrics == nil {
		return
	}
	m := observe.Request{Outcome: audit.OutcomeAllowed, Credential: string(x.kind), Elapsed: g.opts.Now().Sub(x.now)}
	if err != nil {
		mean := meaningOf(err)
		m.Outcome, m.Reason = mean.outcome, mean.reason
	}
	g.opts.Metrics.Request(m)
}

// cached looks id up in c (the key or the token cache), reporting the hit
// or miss to Options.Metrics.
func (g *Guard) cached(c *keyCache, credential string, id string, now time.Time) *cacheEntry {
	e := c.get(id, now)
	if g.opts.Metrics != nil {
		g.opts.Metrics.CacheLookup(credential, e != nil)
	}
	return e
}

// lookupKey asks the key store for id, timing it for Options.Metrics.
func (g *Guard) lookupKey(ctx context.Context, id string) (store.Key, error) {
	if g.opts.Metrics == nil {
		return g.keys.LookupKey(ctx, id)
	}
	start := g.opts.Now()
	k, err := g.keys.LookupKey(ctx, id)
	g.opts.Metrics.StoreLookup(g.opts.Now().Sub(start), err)
	return k, err
}

// observePolicy reports one policy decision to Options.Metrics.
func (g *Guard) observePolicy(method string, allowed bool) {
	if g.opts.Metrics == nil {
		return
	}
	g.opts.Metrics.PolicyDecision(knownMethods[method], allowed) // the constant, or ""
}

// observeLimit reports one rate-limit decision to Options.Metrics.
func (g *Guard) observeLimit(allowed bool) {
	if g.opts.Metrics != nil {
		g.opts.Metrics.LimiterDecision(allowed)
	}
}
