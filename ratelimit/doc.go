// Package ratelimit decides whether a caller may make another request, and
// says so in standard headers.
//
// # Limiters
//
// A [Limiter] spends units from a named bucket under a [Limit] (Rate per
// Per, bursts up to Burst) and returns a [Decision]: allowed or not, what is
// left, when the bucket is full again and, when denied, when to retry. The
// limit is passed with every call, not fixed per limiter, because tiers and
// per-key overrides give keys different budgets; when a key's limit changes
// the new one applies at once and units already spent carry over.
//
// [NewMemory] is the in-process limiter: a sharded, pointer-free table of
// token buckets (x/time/rate's arithmetic), no allocation per decision,
// idle full buckets dropped by a background sweeper (so memory follows the
// number of recently active keys, not the number ever seen), and time read
// under the shard lock so that concurrent callers can never make a bucket
// refill twice. Package ratelimit/redislimit shares budgets across app
// instances through Redis. Both pass the ratelimit/limitertest suite.
//
// # Policies
//
// A [Policy] turns what is known about the caller (a [Subject]: key ID,
// user ID, scopes, key metadata, the key's own override) into a bucket and a
// limit, and an MCP operation into a cost. Precedence: the key's override
// (requests per minute, stored on the key), a tier named in key metadata
// (default metadata key "tier"), a tier granted by a scope, then the
// default: 100 requests per minute ([DefaultLimit]). Budgets are per key by
// default, or per user ([ByUser]) so that all keys of one user share one.
// Costs let an expensive tool call spend more than a ping.
//
// # Headers
//
// [SetHeaders] writes the IETF RateLimit-Policy and RateLimit fields
// (draft-ietf-httpapi-ratelimit-headers), optionally the legacy
// X-RateLimit-* trio, and Retry-After on denials, rounded up so a client that
// obeys it is never early.
//
// # Failure
//
// Limiters return errors wrapping [ErrInvalid] for bad input and
// [ErrUnavailable] when their backend is down; the middleware answers the
// latter with 503 and never shows the error text to the client.
package ratelimit
