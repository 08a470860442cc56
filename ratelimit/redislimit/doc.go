// Package redislimit is a ratelimit.Limiter backed by Redis, for apps that
// run several instances behind a load balancer: all instances spend from
// one budget per key.
//
// # Algorithm
//
// Each decision is one round trip: EVALSHA of a GCRA script (falling back
// to EVAL when Redis has not cached it). The script reads the time with
// Redis TIME, so app instances with skewed clocks still agree, keeps one
// small hash per bucket, and sets it to expire when the bucket would be
// full again, so idle keys cost no memory. Buckets are named
// Options.Prefix + key (default "mcpauth:rl:"); each script touches a
// single key, so it works with Redis Cluster too.
//
// Decisions match the in-memory limiter: both pass the
// ratelimit/limitertest suite. A change of a key's limit applies at once and
// keeps the units already spent.
//
// # Failure modes
//
// When Redis is unreachable the limiter degrades, logs once (slog, Warn),
// calls Options.OnStateChange, and either fails closed (the default:
// errors wrap ratelimit.ErrUnavailable, the middleware answers 503) or
// decides with a local in-memory limiter (FallbackLocal: each instance then
// enforces its share, the budget divided by Options.Instances, so that
// together they admit at most the budget). While degraded it does not touch Redis on the
// request path; a background PING at most every Options.ProbeInterval
// (default 2s) detects recovery, which is logged (Info) and reported the
// same way. Limiter.Degraded exposes the state for health checks.
//
// # Latency during an outage
//
// Each Redis call on the request path is bounded by Options.Timeout
// (default 100ms), whatever the client's DialTimeout, ReadTimeout and
// MaxRetries: the call is abandoned at the deadline and Redis is marked
// unavailable. The worst-case latency an outage adds to a request is
// Timeout, for the requests in flight when it starts; later requests do
// not wait for Redis at all until a background probe finds it back.
// TestOutageAddsAtMostTimeout checks it: 16 requests in flight when Redis
// hangs, with a client that would wait 3 s per read and retry 5 times, are
// all answered within Timeout + 50 ms; the multi-instance harness measured
// 129 ms for the slowest request of a Redis outage (docs/distributed.md). The middleware logs one line when
// the limiter starts failing and one when it recovers, not one per refused
// request.
package redislimit
