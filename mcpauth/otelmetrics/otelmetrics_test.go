package otelmetrics_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/mcpauth/observe"
	"github.com/mcpauth/mcpauth/mcpauth/otelmetrics"
	"github.com/mcpauth/mcpauth/ratelimit"
	"github.com/mcpauth/mcpauth/scope"
	"github.com/mcpauth/mcpauth/store"
)

var testPepper = apikey.Pepper{Version: 1, Secret: []byte("0123456789abcdef0123456789abcdef")}

// clock is a test clock that only moves when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// slowStore is a key store whose lookups take 3ms of the test clock.
type slowStore struct {
	*store.Memory
	clock *clock
}

func (s *slowStore) LookupKey(ctx context.Context, id string) (store.Key, error) {
	s.clock.Advance(3 * time.Millisecond)
	return s.Memory.LookupKey(ctx, id)
}

// point is one data point: a counter's value, or a histogram's count and sum.
type point struct {
	Value int64
	Count uint64
	Sum   float64
}

// collect reads every instrument of the reader, by name and then by the
// attribute set's encoding ("k=v,k=v", keys sorted).
func collect(t *testing.T, r sdkmetric.Reader) map[string]map[string]point {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.Collect(context.Background(), &rm))
	out := map[string]map[string]point{}
	enc := attribute.DefaultEncoder()
	for _, sm := range rm.ScopeMetrics {
		assert.Equal(t, otelmetrics.ScopeName, sm.Scope.Name)
		for _, m := range sm.Metrics {
			pts := map[string]point{}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					pts[p.Attributes.Encoded(enc)] = point{Value: p.Value}
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					pts[p.Attributes.Encoded(enc)] = point{Count: p.Count, Sum: p.Sum}
				}
			default:
				t.Fatalf("%s: unexpected data %T", m.Name, m.Data)
			}
			out[m.Name] = pts
		}
	}
	return out
}

// A Guard with otelmetrics records each request, cache and store lookup,
// policy and limiter decision, and the audit Writer's counts, with the
// values the requests produced.
func TestGuardRecords(t *testing.T) {
	t.Parallel()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	m, err := otelmetrics.New(mp)
	require.NoError(t, err)

	policy, err := scope.NewPolicy(scope.PolicyConfig{Tools: []scope.Rule{
		{Match: "search", Scopes: []string{"read"}}, {Match: "delete", Scopes: []string{"admin"}}}})
	require.NoError(t, err)
	lim := ratelimit.NewMemory(nil)
	t.Cleanup(func() { _ = lim.Close(context.Background()) })
	w, err := audit.NewWriter(audit.SinkFunc(func(context.Context, audit.Event) error { return nil }), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.Close(context.Background()) })
	reg, err := otelmetrics.ObserveAudit(mp, w)
	require.NoError(t, err)
	t.Cleanup(func() { _ = reg.Unregister() })

	clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	s := &slowStore{Memory: store.NewMemory(), clock: clk}
	g, err := mcpauth.New(s, &mcpauth.Options{Peppers: []apikey.Pepper{testPepper}, Now: clk.Now, Metrics: m, Audit: w,
		Policy: policy, RateLimiter: lim, RatePolicy: &ratelimit.Policy{Default: ratelimit.Limit{Rate: 4, Per: time.Hour}},
		Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = g.Close(context.Background()) })
	k := createKey(t, s, "alice", []string{"read"})
	unknown := createKey(t, store.NewMemory(), "mallory", nil)

	ran := 0
	h := g.Require(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { ran++ }))
	call := func(key, tool string) {
		body := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":%q}}`, tool)
		r := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(body))
		if key != "" {
			r.Header.Set("Authorization", "Bearer "+key)
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	call(k, "search")       // allowed, cache miss, store 3ms
	call(k, "search")       // allowed, cache hit
	call(k, "delete")       // denied by policy
	call("", "search")      // no credential
	call(unknown, "search") // unknown key, store 3ms
	call(k, "search")       // allowed: the fourth costed call of four
	call(k, "search")       // rate limited
	require.Equal(t, 3, ran)
	require.NoError(t, w.Flush(context.Background()))

	got := collect(t, reader)
	assert.Equal(t, map[string]point{
		"mcpauth.credential.kind=api_key,mcpauth.outcome=allowed":                                {Count: 3, Sum: 0.003},
		"error.type=insufficient_scope,mcpauth.credential.kind=api_key,mcpauth.outcome=denied":   {Count: 1},
		"error.type=no_credential,mcpauth.outcome=unauthenticated":                               {Count: 1},
		"error.type=unknown_key,mcpauth.credential.kind=api_key,mcpauth.outcome=unauthenticated": {Count: 1, Sum: 0.003},
		"error.type=rate_limited,mcpauth.credential.kind=api_key,mcpauth.outcome=rate_limited":   {Count: 1},
	}, got["mcpauth.request.duration"])
	assert.Equal(t, map[string]point{
		"mcpauth.cache.result=miss,mcpauth.credential.kind=api_key": {Value: 2},
		"mcpauth.cache.result=hit,mcpauth.credential.kind=api_key":  {Value: 4},
	}, got["mcpauth.cache.lookups"])
	assert.Equal(t, map[string]point{
		"mcpauth.store.result=found":     {Count: 1, Sum: 0.003},
		"mcpauth.store.result=not_found": {Count: 1, Sum: 0.003},
	}, got["mcpauth.store.lookup.duration"])
	assert.Equal(t, map[string]point{
		"mcp.method.name=tools/call,mcpauth.decision=allow": {Value: 3},
		"mcp.method.name=tools/call,mcpauth.decision=deny":  {Value: 1},
	}, got["mcpauth.policy.decisions"])
	assert.Equal(t, map[string]point{
		"mcpauth.decision=allow": {Value: 4},
		"mcpauth.decision=deny":  {Value: 1},
	}, got["mcpauth.ratelimit.decisions"])
	assert.Equal(t, map[string]point{"": {Value: 7}}, got["mcpauth.audit.events.written"], "one event per request")
	assert.Equal(t, map[string]point{"": {Value: 0}}, got["mcpauth.audit.queue.depth"])
}

func createKey(t testing.TB, s store.KeyStore, user string, scopes []string) string {
	t.Helper()
	mgr, err := keyadmin.New(s, &keyadmin.Options{Peppers: []apikey.Pepper{testPepper}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = mgr.Close(context.Background()) })
	k, err := mgr.Create(context.Background(), user, keyadmin.CreateOptions{Scopes: scopes})
	require.NoError(t, err)
	return k.Raw
}

// fixedStats is an audit Writer's Stats, as given.
type fixedStats audit.Stats

func (s fixedStats) Stats() audit.Stats { return audit.Stats(s) }

// Each of the audit Writer's counts goes to its instrument, drops by reason.
func TestObserveAuditCounts(t *testing.T) {
	t.Parallel()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	reg, err := otelmetrics.ObserveAudit(mp, fixedStats{Queued: 7, Written: 100, Dropped: 5, DroppedQueueFull: 3, DroppedCallerShare: 2, Failed: 11, Rejected: 4})
	require.NoError(t, err)
	got := collect(t, reader)
	assert.Equal(t, map[string]map[string]point{
		"mcpauth.audit.queue.depth":     {"": {Value: 7}},
		"mcpauth.audit.events.written":  {"": {Value: 100}},
		"mcpauth.audit.events.dropped":  {"mcpauth.audit.drop.reason=queue_full": {Value: 3}, "mcpauth.audit.drop.reason=caller_share": {Value: 2}},
		"mcpauth.audit.events.failed":   {"": {Value: 11}},
		"mcpauth.audit.events.rejected": {"": {Value: 4}},
	}, got)
	require.NoError(t, reg.Unregister())
	assert.Empty(t, collect(t, reader), "nothing is observed once unregistered")
}

// Store errors are told apart by error.type; methods that are not MCP's are
// _OTHER.
func TestAttributeValues(t *testing.T) {
	t.Parallel()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	m, err := otelmetrics.New(mp)
	require.NoError(t, err)
	m.StoreLookup(2*time.Second, fmt.Errorf("lookup: %w", context.DeadlineExceeded))
	m.StoreLookup(time.Millisecond, io.ErrUnexpectedEOF)
	m.StoreLookup(time.Millisecond, errors.Join(errors.New("x"), store.ErrNotFound))
	m.PolicyDecision("", false)
	m.CacheLookup("jwt", true)
	got := collect(t, reader)
	assert.Equal(t, map[string]point{
		"error.type=timeout,mcpauth.store.result=error": {Count: 1, Sum: 2},
		"error.type=_OTHER,mcpauth.store.result=error":  {Count: 1, Sum: 0.001},
		"mcpauth.store.result=not_found":                {Count: 1, Sum: 0.001},
	}, got["mcpauth.store.lookup.duration"])
	assert.Equal(t, map[string]point{"mcp.method.name=_OTHER,mcpauth.decision=deny": {Value: 1}}, got["mcpauth.policy.decisions"])
	assert.Equal(t, map[string]point{"mcpauth.cache.result=hit,mcpauth.credential.kind=jwt": {Value: 1}}, got["mcpauth.cache.lookups"])
}

// Recording allocates nothing once an attribute combination has been seen.
func TestRecordingAllocations(t *testing.T) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	m, err := otelmetrics.New(mp)
	require.NoError(t, err)
	record := func() {
		m.Request(observe.Request{Outcome: audit.OutcomeAllowed, Credential: "api_key", Elapsed: time.Microsecond})
		m.CacheLookup("api_key", true)
		m.PolicyDecision("tools/call", true)
		m.LimiterDecision(true)
		m.StoreLookup(time.Millisecond, nil)
	}
	record()
	assert.Zero(t, testing.AllocsPerRun(100, record))
}

// The counters are counted by Metrics and read when the SDK collects:
// counts made concurrently with collections all arrive, past 1,024
// attribute combinations the rest is counted under otel.metric.overflow,
// and after Unregister the counters are no longer reported.
func TestCountersObserved(t *testing.T) {
	t.Parallel()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	m, err := otelmetrics.New(mp)
	require.NoError(t, err)

	const workers, each = 4, 2500
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				m.LimiterDecision(true)
				m.CacheLookup("api_key", false)
			}
		})
	}
	for range 20 {
		collect(t, reader) // while counting
	}
	wg.Wait()
	got := collect(t, reader)
	assert.Equal(t, map[string]point{"mcpauth.decision=allow": {Value: workers * each}}, got["mcpauth.ratelimit.decisions"])
	assert.Equal(t, map[string]point{"mcpauth.cache.result=miss,mcpauth.credential.kind=api_key": {Value: workers * each}}, got["mcpauth.cache.lookups"])

	for i := range 1100 {
		m.PolicyDecision(fmt.Sprintf("m%d", i), true)
	}
	m.PolicyDecision("m0", true) // a kept combination still counts as itself
	policy := collect(t, reader)["mcpauth.policy.decisions"]
	assert.Len(t, policy, 1025, "1,024 combinations and the overflow")
	assert.Equal(t, point{Value: 2}, policy["mcp.method.name=m0,mcpauth.decision=allow"])
	assert.Equal(t, point{Value: 1100 - 1024}, policy["otel.metric.overflow=true"])

	require.NoError(t, m.Unregister())
	m.LimiterDecision(false)
	after := collect(t, reader)
	assert.NotContains(t, after, "mcpauth.ratelimit.decisions")
	assert.NotContains(t, after, "mcpauth.policy.decisions")
}
