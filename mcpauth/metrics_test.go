package mcpauth_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/mcpauth/observe"
	"github.com/mcpauth/mcpauth/ratelimit"
	"github.com/mcpauth/mcpauth/scope"
	"github.com/mcpauth/mcpauth/store"
)

// metricsLog is a Metrics that writes down every call, in order.
type metricsLog struct {
	mu    sync.Mutex
	calls []string
}

func (l *metricsLog) add(format string, args ...any) {
	l.mu.Lock()
	l.calls = append(l.calls, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

func (l *metricsLog) Request(m observe.Request) {
	l.add("request %s reason=%q credential=%q %v", m.Outcome, m.Reason, m.Credential, m.Elapsed)
}
func (l *metricsLog) CacheLookup(credential string, hit bool) {
	l.add("cache %s hit=%v", credential, hit)
}
func (l *metricsLog) StoreLookup(d time.Duration, err error) {
	l.add("store %v notfound=%v err=%v", d, errors.Is(err, store.ErrNotFound), err != nil)
}
func (l *metricsLog) PolicyDecision(method string, allowed bool) {
	l.add("policy %q allowed=%v", method, allowed)
}
func (l *metricsLog) LimiterDecision(allowed bool) { l.add("limit allowed=%v", allowed) }

func (l *metricsLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.calls
	l.calls = nil
	return c
}

// slowStore is a key store whose lookups take 3ms of the test clock, and
// fail while broken.
type slowStore struct {
	*store.Memory
	clock  *clock
	broken atomic.Bool
}

func (s *slowStore) LookupKey(ctx context.Context, id string) (store.Key, error) {
	s.clock.Advance(3 * time.Millisecond)
	if s.broken.Load() {
		return store.Key{}, errBroken
	}
	return s.Memory.LookupKey(ctx, id)
}

// Every hook is called at its step with the facts of the request, and only
// for the steps the request reached.
func TestMetricsHooks(t *testing.T) {
	t.Parallel()
	policy, err := scope.NewPolicy(scope.PolicyConfig{Tools: []scope.Rule{
		{Match: "search", Scopes: []string{"read"}}, {Match: "delete", Scopes: []string{"admin"}}}})
	require.NoError(t, err)
	lim := ratelimit.NewMemory(nil)
	t.Cleanup(func() { _ = lim.Close(context.Background()) })
	clk := newClock()
	s := &slowStore{Memory: store.NewMemory(), clock: clk}
	log := &metricsLog{}
	g, err := mcpauth.New(s, &mcpauth.Options{Peppers: []apikey.Pepper{testPepper}, Now: clk.Now, Metrics: log, Logger: slog.New(slog.DiscardHandler),
		Policy: policy, RateLimiter: lim, RatePolicy: &ratelimit.Policy{Default: ratelimit.Limit{Rate: 4, Per: time.Hour}}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = g.Close(context.Background()) })
	mgr := managerFor(t, g, s, clk.Now)
	k, err := mgr.Create(context.Background(), "alice", keyadmin.CreateOptions{Scopes: []string{"read"}})
	require.NoError(t, err)
	other, err := managerFor(t, g, store.NewMemory(), clk.Now).Create(context.Background(), "mallory", keyadmin.CreateOptions{})
	require.NoError(t, err)
	ran := 0
	h := g.Require(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { ran++ }))
	call := func(key, method, tool string) {
		body := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":%q,"params":{"name":%q}}`, method, tool)
		r := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(body))
		if key != "" {
			r.Header.Set("Authorization", "Bearer "+key)
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
	}

	call(k.Raw, "tools/call", "search")
	assert.Equal(t, []string{
		"cache api_key hit=false",
		"store 3ms notfound=false err=false",
		"limit allowed=true",
		`policy "tools/call" allowed=true`,
		`request allowed reason="" credential="api_key" 3ms`,
	}, log.take(), "first use: a cache miss, timed in the store")
	assert.Equal(t, 1, ran)

	call(k.Raw, "tools/call", "search")
	assert.Equal(t, []string{
		"cache api_key hit=true",
		"limit allowed=true",
		`policy "tools/call" allowed=true`,
		`request allowed reason="" credential="api_key" 0s`,
	}, log.take(), "warm: no store lookup")

	call(k.Raw, "tools/call", "delete")
	assert.Equal(t, []string{
		"cache api_key hit=true",
		"limit allowed=true",
		`policy "tools/call" allowed=false`,
		`request denied reason="insufficient_scope" credential="api_key" 0s`,
	}, log.take())

	call(k.Raw, "x-vendor/"+strings.Repeat("a", 40), "")
	assert.Equal(t, []string{
		"cache api_key hit=true",
		"limit allowed=true",
		`policy "" allowed=true`,
		`request allowed reason="" credential="api_key" 0s`,
	}, log.take(), "a method that is not MCP's is reported as \"\", never as the client's bytes")

	call(k.Raw, "tools/call", "search") // the fifth costed call of a budget of four
	assert.Equal(t, []string{
		"cache api_key hit=true",
		"limit allowed=false",
		`request rate_limited reason="rate_limited" credential="api_key" 0s`,
	}, log.take(), "refused by the limiter: the policy was not asked")
	assert.Equal(t, 3, ran, "neither the refused nor the rate-limited call ran")

	call("", "tools/call", "search")
	assert.Equal(t, []string{`request unauthenticated reason="no_credential" credential="" 0s`}, log.take())

	call(other.Raw, "tools/call", "search")
	assert.Equal(t, []string{
		"cache api_key hit=false",
		"store 3ms notfound=true err=true",
		`request unauthenticated reason="unknown_key" credential="api_key" 3ms`,
	}, log.take())
	call(other.Raw, "tools/call", "search")
	assert.Equal(t, []string{
		"cache api_key hit=true",
		`request unauthenticated reason="unknown_key" credential="api_key" 0s`,
	}, log.take(), "the negative cache answers")

	s.broken.Store(true)
	g.Forget(k.Key.ID)
	call(k.Raw, "tools/call", "search")
	assert.Equal(t, []string{
		"cache api_key hit=false",
		"store 3ms notfound=false err=true",
		`request error reason="unavailable" credential="api_key" 3ms`,
	}, log.take())
	assert.Equal(t, 3, ran)
}

// nopMetrics does nothing: what the hooks themselves cost.
type nopMetrics struct{}

func (nopMetrics) Request(observe.Request)          {}
func (nopMetrics) CacheLookup(string, bool)         {}
func (nopMetrics) StoreLookup(time.Duration, error) {}
func (nopMetrics) PolicyDecision(string, bool)      {}
func (nopMetrics) LimiterDecision(bool)             {}

// Calling the hooks allocates nothing: an allowed tools/call allocates as
// often with Options.Metrics set as without.
func TestMetricsHookAllocations(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation count (not under -race)")
	}
	without := allowedToolsCallAllocs(t, nil)
	with := allowedToolsCallAllocs(t, nopMetrics{})
	assert.Equal(t, without, with)
	assert.LessOrEqual(t, with, 6.0)
}
