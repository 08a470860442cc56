// Package observe is the seam between the Guard (package mcpauth) and a
// metrics system: the Metrics interface the request path reports to
// (mcpauth.Options.Metrics) and what it is told. Module
// github.com/mcpauth/mcpauth/mcpauth/otelmetrics implements it with
// OpenTelemetry; the interface is here so that the core module needs no
// metrics library. A nil Metrics costs one nil check per call site.
package observe

import (
	"time"

	"github.com/mcpauth/mcpauth/audit"
)

// Metrics receives what the request path measures, at the points that
// already know it: one Request per request, each key and token cache
// lookup, each key store lookup, each policy and rate-limit decision. Set
// it in mcpauth.Options.Metrics; module github.com/mcpauth/mcpauth/mcpauth/otelmetrics
// implements it with OpenTelemetry instruments (and reads an audit.Writer's
// Stats for the audit queue). Its methods are called on the request's
// goroutine, concurrently from many requests: they must be safe for
// concurrent use, must not block, and must not keep the strings they are
// given beyond the call unless they copy them (every string passed is a
// constant of package mcpauth, never request bytes). Durations are measured
// with mcpauth.Options.Now.
type Metrics interface {
	// Request is called once per request that Require served: just before
	// the handler is called, or once the refusal has been written.
	Request(Request)
	// CacheLookup is called for each lookup of a credential in the Guard's
	// cache (credential is "api_key", "jwt" or "opaque_token"). A cached
	// "unknown key" answer is a hit.
	CacheLookup(credential string, hit bool)
	// StoreLookup is called after each key store lookup (a cache miss), with
	// how long it took and its error: nil, store.ErrNotFound (an ID the
	// store does not know), or the failure.
	StoreLookup(elapsed time.Duration, err error)
	// PolicyDecision is called for each message the MCP policy decided.
	// method is the message's method when it is a standard MCP method, else
	// "" (methods are client input; this keeps their number bounded).
	PolicyDecision(method string, allowed bool)
	// LimiterDecision is called for each rate-limit decision: the limiter's
	// answer, or a refusal without asking it (the request costs more than
	// the bucket holds). Not called when the limiter fails (that request's
	// Reason is "unavailable").
	LimiterDecision(allowed bool)
}

// Request is what Metrics.Request is told of a request.
type Request struct {
	// Outcome is the audit outcome: allowed, unauthenticated, denied,
	// rate_limited or error.
	Outcome audit.Outcome
	// Reason is the audit reason of a refusal (audit.Event.Reason: one of
	// a fixed set, such as "unknown_key" or "insufficient_scope"); "" when
	// allowed.
	Reason string
	// Credential is the kind of credential the request carried: "api_key",
	// "jwt", "opaque_token", or "" when it carried none that could be read.
	Credential string
	// Elapsed is the time the Guard spent on the request: from its arrival
	// until the handler was called or the refusal was written (for allowed
	// requests it leaves the handler's own time out).
	Elapsed time.Duration
}
