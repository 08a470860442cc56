// Package otelmetrics implements observe.Metrics with OpenTelemetry
// instruments, and observes an audit.Writer's queue. It lives in a module of
// its own so that the core module never imports OpenTelemetry.
//
//	m, err := otelmetrics.New(provider) // nil: otel.GetMeterProvider()
//	guard, err := mcpauth.New(keys, &mcpauth.Options{Metrics: m, Audit: writer})
//	reg, err := otelmetrics.ObserveAudit(provider, writer)
//	defer reg.Unregister()
//
// Instruments (scope ScopeName; durations in seconds, as OpenTelemetry's
// semantic conventions ask; attribute values come from fixed sets, never
// from request bytes, so their number is bounded):
//
//	mcpauth.request.duration      histogram  mcpauth.outcome, error.type (the refusal's reason), mcpauth.credential.kind
//	mcpauth.cache.lookups         counter    mcpauth.credential.kind, mcpauth.cache.result (hit, miss)
//	mcpauth.store.lookup.duration histogram  mcpauth.store.result (found, not_found, error), error.type
//	mcpauth.policy.decisions      counter    mcp.method.name, mcpauth.decision (allow, deny)
//	mcpauth.ratelimit.decisions   counter    mcpauth.decision
//	mcpauth.audit.queue.depth     up-down counter (observed)
//	mcpauth.audit.events.written  counter (observed)
//	mcpauth.audit.events.dropped  counter (observed)  mcpauth.audit.drop.reason (queue_full, caller_share)
//	mcpauth.audit.events.failed   counter (observed)
//	mcpauth.audit.events.rejected counter (observed)
//
// The Prometheus exporter names them mcpauth_request_duration_seconds,
// mcpauth_cache_lookups_total, and so on.
package otelmetrics

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/mcpauth/observe"
	"github.com/mcpauth/mcpauth/store"
)

// ScopeName is the instrumentation scope (meter name) of the instruments.
const ScopeName = "github.com/mcpauth/mcpauth/mcpauth/otelmetrics"

// Attribute keys: those of the audit log's slog events (audit.SlogSink)
// where both have the fact.
const (
	AttrOutcome        = attribute.Key("mcpauth.outcome")
	AttrCredentialKind = attribute.Key("mcpauth.credential.kind")
	AttrCacheResult    = attribute.Key("mcpauth.cache.result")
	AttrStoreResult    = attribute.Key("mcpauth.store.result")
	AttrErrorType      = attribute.Key("error.type")      // OpenTelemetry semantic conventions
	AttrMethod         = attribute.Key("mcp.method.name") // OpenTelemetry semantic conventions (MCP)
	AttrDecision       = attribute.Key("mcpauth.decision")
	AttrDropReason     = attribute.Key("mcpauth.audit.drop.reason")
)

// otherValue is the semantic conventions' value for a method that is not a
// known one.
const otherValue = "_OTHER"

// DurationBuckets are the histogram boundaries, in seconds: 10µs to 2.5s.
// The Guard's own time is microseconds when warm; a store lookup is
// milliseconds.
var DurationBuckets = []float64{0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}

// Metrics records the request path's measurements in OpenTelemetry
// instruments. Create it with New; it is safe for concurrent use. Every
// attribute set is built once and then reused, so recording allocates
// nothing of its own. The durations go to the SDK's histograms as they
// happen; the counts (cache lookups, policy and limiter decisions) are
// atomic counters of its own, which the SDK reads when it collects, so a
// count costs an atomic add instead of a call into the SDK (one of a
// request's four measurements instead of four reach the SDK).
type Metrics struct {
	requests metric.Float64Histogram
	store    metric.Float64Histogram

	requestSets options[requestKey]
	storeSets   [4]opts // found, not_found, error timeout, error other

	// The counters are counted here and observed when the SDK collects.
	cacheCounts   counters[cacheKey]
	policyCounts  counters[policyKey]
	limiterCounts counters[bool]
	registration  metric.Registration
}

var _ observe.Metrics = (*Metrics)(nil)

// New creates the instruments on a meter of mp (nil: the global
// otel.GetMeterProvider()). It fails only if the provider refuses an
// instrument.
func New(mp metric.MeterProvider) (*Metrics, error) {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	meter := mp.Meter(ScopeName)
	m := &Metrics{}
	var err error
	seconds := []metric.Float64HistogramOption{metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(DurationBuckets...)}
	if m.requests, err = meter.Float64Histogram("mcpauth.request.duration", append(seconds,
		metric.WithDescription("Time the Guard spent on a request, until its handler was called or its refusal written."))...); err != nil {
		return nil, fmt.Errorf("otelmetrics: %w", err)
	}
	if m.store, err = meter.Float64Histogram("mcpauth.store.lookup.duration", append(seconds,
		metric.WithDescription("Duration of key store lookups (cache misses)."))...); err != nil {
		return nil, fmt.Errorf("otelmetrics: %w", err)
	}
	cache, err := meter.Int64ObservableCounter("mcpauth.cache.lookups", metric.WithUnit("{lookup}"),
		metric.WithDescription("Lookups of credentials in the Guard's cache."))
	if err != nil {
		return nil, fmt.Errorf("otelmetrics: %w", err)
	}
	policy, err := meter.Int64ObservableCounter("mcpauth.policy.decisions", metric.WithUnit("{decision}"),
		metric.WithDescription("MCP policy decisions, one per message."))
	if err != nil {
		return nil, fmt.Errorf("otelmetrics: %w", err)
	}
	limiter, err := meter.Int64ObservableCounter("mcpauth.ratelimit.decisions", metric.WithUnit("{decision}"),
		metric.WithDescription("Rate-limit decisions, one per request that costs something."))
	if err != nil {
		return nil, fmt.Errorf("otelmetrics: %w", err)
	}
	if m.registration, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		m.cacheCounts.observe(o, cache)
		m.policyCounts.observe(o, policy)
		m.limiterCounts.observe(o, limiter)
		return nil
	}, cache, policy, limiter); err != nil {
		return nil, fmt.Errorf("otelmetrics: %w", err)
	}
	m.requestSets.make = func(k requestKey) attribute.Set {
		kv := []attribute.KeyValue{AttrOutcome.String(k.outcome)}
		if k.reason != "" {
			kv = append(kv, AttrErrorType.String(k.reason))
		}
		if k.credential != "" {
			kv = append(kv, AttrCredentialKind.String(k.credential))
		}
		return attribute.NewSet(kv...)
	}
	m.cacheCounts.make = func(k cacheKey) attribute.Set {
		return attribute.NewSet(AttrCredentialKind.String(k.credential), AttrCacheResult.String(map[bool]string{true: "hit", false: "miss"}[k.hit]))
	}
	m.policyCounts.make = func(k policyKey) attribute.Set {
		method := k.method
		if method == "" {
			method = otherValue
		}
		return attribute.NewSet(AttrMethod.String(method), decision(k.allowed))
	}
	m.storeSets = [4]opts{
		optsOf(attribute.NewSet(AttrStoreResult.String("found"))),
		optsOf(attribute.NewSet(AttrStoreResult.String("not_found"))),
		optsOf(attribute.NewSet(AttrStoreResult.String("error"), AttrErrorType.String("timeout"))),
		optsOf(attribute.NewSet(AttrStoreResult.String("error"), AttrErrorType.String(otherValue))),
	}
	m.limiterCounts.make = func(allowed bool) attribute.Set { return attribute.NewSet(decision(allowed)) }
	return m, nil
}

func decision(allowed bool) attribute.KeyValue {
	if allowed {
		return AttrDecision.String("allow")
	}
	return AttrDecision.String("deny")
}

type requestKey struct{ outcome, reason, credential string }

type cacheKey struct {
	credential string
	hit        bool
}

type policyKey struct {
	method  string
	allowed bool
}

// Request records the request's duration under its outcome, reason and
// credential kind.
func (m *Metrics) Request(r observe.Request) {
	m.requests.Record(context.Background(), r.Elapsed.Seconds(),
		m.requestSets.get(requestKey{string(r.Outcome), r.Reason, r.Credential}).record...)
}

// CacheLookup counts a cache lookup.
func (m *Metrics) CacheLookup(credential string, hit bool) {
	m.cacheCounts.add(cacheKey{credential, hit})
}

// StoreLookup records a key store lookup's duration under its result.
func (m *Metrics) StoreLookup(elapsed time.Duration, err error) {
	i := 0
	switch {
	case err == nil:
	case errors.Is(err, store.ErrNotFound):
		i = 1
	case errors.Is(err, context.DeadlineExceeded):
		i = 2
	default:
		i = 3
	}
	m.store.Record(context.Background(), elapsed.Seconds(), m.storeSets[i].record...)
}

// PolicyDecision counts a policy decision.
func (m *Metrics) PolicyDecision(method string, allowed bool) {
	m.policyCounts.add(policyKey{method, allowed})
}

// LimiterDecision counts a rate-limit decision.
func (m *Metrics) LimiterDecision(allowed bool) {
	m.limiterCounts.add(allowed)
}

// Unregister stops the SDK from reading this Metrics' counters when it
// collects (the counters then disappear from its output); call it when the
// Guard using it is closed, if the MeterProvider outlives it.
func (m *Metrics) Unregister() error { return m.registration.Unregister() }

// AuditStats is what ObserveAudit reads: *audit.Writer.
type AuditStats interface{ Stats() audit.Stats }

// ObserveAudit registers the audit.Writer's counters (see audit.Stats) as
// observed instruments on a meter of mp (nil: the global provider): its
// queue depth and the events written, dropped (by reason), failed and
// rejected since it was created. They are read from w.Stats when the
// provider collects, never on the request path. Unregister the result when
// the Writer is closed.
func ObserveAudit(mp metric.MeterProvider, w AuditStats) (metric.Registration, error) {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	meter := mp.Meter(ScopeName)
	depth, err := meter.Int64ObservableUpDownCounter("mcpauth.audit.queue.depth", metric.WithUnit("{event}"),
		metric.WithDescription("Audit events accepted and not yet written or given up."))
	if err != nil {
		return nil, fmt.Errorf("otelmetrics: %w", err)
	}
	counter := func(name, desc string) (metric.Int64ObservableCounter, error) {
		c, err := meter.Int64ObservableCounter(name, metric.WithUnit("{event}"), metric.WithDescription(desc))
		if err != nil {
			return nil, fmt.Errorf("otelmetrics: %w", err)
		}
		return c, nil
	}
	written, err := counter("mcpauth.audit.events.written", "Audit events accepted by the sink.")
	if err != nil {
		return nil, err
	}
	dropped, err := counter("mcpauth.audit.events.dropped", "Audit events not queued (BestEffort): the queue was full, or their caller held its share of it.")
	if err != nil {
		return nil, err
	}
	failed, err := counter("mcpauth.audit.events.failed", "Audit events in batches the sink refused after every retry.")
	if err != nil {
		return nil, err
	}
	rejected, err := counter("mcpauth.audit.events.rejected", "Audit events Record refused (closed writer, context ended while waiting).")
	if err != nil {
		return nil, err
	}
	full := metric.WithAttributes(AttrDropReason.String("queue_full"))
	share := metric.WithAttributes(AttrDropReason.String("caller_share"))
	return meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s := w.Stats()
		o.ObserveInt64(depth, int64(s.Queued))
		o.ObserveInt64(written, int64(s.Written))
		o.ObserveInt64(dropped, int64(s.DroppedQueueFull), full)
		o.ObserveInt64(dropped, int64(s.DroppedCallerShare), share)
		o.ObserveInt64(failed, int64(s.Failed))
		o.ObserveInt64(rejected, int64(s.Rejected))
		return nil
	}, depth, written, dropped, failed, rejected)
}
