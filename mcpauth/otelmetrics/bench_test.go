package otelmetrics_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/mcpauth/observe"
	"github.com/mcpauth/mcpauth/mcpauth/otelmetrics"
	"github.com/mcpauth/mcpauth/ratelimit"
	"github.com/mcpauth/mcpauth/scope"
	"github.com/mcpauth/mcpauth/store"
)

type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(int)             {}

type rewindBody struct{ bytes.Reader }

func (*rewindBody) Close() error { return nil }

// BenchmarkFullStackMetrics is mcpauth's BenchmarkFullPipeline (an allowed
// tools/call with 1 KiB of arguments through auth, policy, in-memory rate
// limit and audit enqueue) without and with otelmetrics on the OpenTelemetry
// SDK, as sub-benchmarks of one run: with -count=N they alternate.
func BenchmarkFullStackMetrics(b *testing.B) {
	policy, err := scope.NewPolicy(scope.PolicyConfig{Tools: []scope.Rule{{Match: "search_documents", Scopes: []string{"read"}}}})
	if err != nil {
		b.Fatal(err)
	}
	lim := ratelimit.NewMemory(nil)
	b.Cleanup(func() { _ = lim.Close(context.Background()) })
	w, err := audit.NewWriter(audit.SinkFunc(func(context.Context, audit.Event) error { return nil }), &audit.WriterOptions{QueueSize: 1 << 16})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = w.Close(context.Background()) })
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	m, err := otelmetrics.New(mp)
	if err != nil {
		b.Fatal(err)
	}
	reg, err := otelmetrics.ObserveAudit(mp, w)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = reg.Unregister() })
	body := []byte(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"search_documents","arguments":{"q":"` + strings.Repeat("x", 1024) + `"}}}`)
	for _, tc := range []struct {
		name    string
		metrics observe.Metrics
	}{{"metrics=off", nil}, {"metrics=otel", m}} {
		s := store.NewMemory()
		g, err := mcpauth.New(s, &mcpauth.Options{Peppers: []apikey.Pepper{testPepper}, Policy: policy, RateLimiter: lim,
			RatePolicy: &ratelimit.Policy{Default: ratelimit.Limit{Rate: 1 << 29, Per: time.Second}}, Audit: w, Metrics: tc.metrics})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = g.Close(context.Background()) })
		raw := createKey(b, s, "user-1", []string{"read"})
		h := g.Require(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		run := func(pb interface{ Next() bool }) {
			r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
			r.Header.Set("Authorization", "Bearer "+raw)
			r.ContentLength = int64(len(body))
			r.RemoteAddr = "203.0.113.7:5555"
			rb := &rewindBody{}
			wr := &discard{h: http.Header{}}
			for pb.Next() {
				rb.Reset(body)
				r.Body = rb
				h.ServeHTTP(wr, r)
			}
		}
		b.Run(tc.name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			run(loopNext{b})
		})
		b.Run(tc.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) { run(pb) })
		})
	}
}

type loopNext struct{ b *testing.B }

func (l loopNext) Next() bool { return l.b.Loop() }

// BenchmarkAllowedRequestMeasurements is what otelmetrics adds to an
// allowed, warm tools/call: its four measurements (request, cache, policy,
// limiter) into the OpenTelemetry SDK.
func BenchmarkAllowedRequestMeasurements(b *testing.B) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	m, err := otelmetrics.New(mp)
	if err != nil {
		b.Fatal(err)
	}
	record := func() {
		m.CacheLookup("api_key", true)
		m.LimiterDecision(true)
		m.PolicyDecision("tools/call", true)
		m.Request(observe.Request{Outcome: audit.OutcomeAllowed, Credential: "api_key", Elapsed: 3 * time.Microsecond})
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			record()
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				record()
			}
		})
	})
}
