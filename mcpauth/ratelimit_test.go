package mcpauth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/ratelimit"
)

func limitedServer(t *testing.T, policy *ratelimit.Policy, legacy bool) (*fixture, *httptest.Server) {
	t.Helper()
	f := newFixture(t, nil)
	lim := ratelimit.NewMemory(&ratelimit.MemoryOptions{Now: f.clock.Now})
	t.Cleanup(func() { _ = lim.Close(context.Background()) })
	g, err := mcpauth.New(f.store, &mcpauth.Options{Now: f.clock.Now, Peppers: []apikey.Pepper{testPepper},
		RateLimiter: lim, RatePolicy: policy, LegacyRateLimitHeaders: legacy})
	require.NoError(t, err)
	t.Cleanup(func() { _ = g.Close(context.Background()) })
	f.guard, f.mgr = g, managerFor(t, g, f.store, f.clock.Now)
	srv := httptest.NewServer(g.Require(&echo{}))
	t.Cleanup(srv.Close)
	return f, srv
}

func TestRateLimitThroughMiddleware(t *testing.T) {
	t.Parallel()
	f, srv := limitedServer(t, &ratelimit.Policy{Default: ratelimit.Limit{Rate: 3, Per: time.Minute}}, true)
	k := f.create(t, "alice", keyadmin.CreateOptions{})
	other := f.create(t, "bob", keyadmin.CreateOptions{})
	for i := range 3 {
		resp, _ := post(t, srv, k.Raw, toolCall("search_documents", "1"))
		require.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, `"default";q=3;w=60`, resp.Header.Get("RateLimit-Policy"))
		assert.Contains(t, resp.Header.Get("RateLimit"), `"default";r=`+string(rune('2'-i)))
		assert.Equal(t, "3", resp.Header.Get("X-RateLimit-Limit"))
	}
	resp, body := post(t, srv, k.Raw, toolCall("search_documents", `"q-9"`))
	assert.Equal(t, 429, resp.StatusCode)
	retry, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	require.NoError(t, err)
	assert.InDelta(t, 20, retry, 1, "one request refills in 60s/3, rounded up")
	assert.JSONEq(t, `{"jsonrpc":"2.0","id":"q-9","error":{"code":-32012,"message":"Too many requests from this API key, please try again later.","data":{"error":"rate_limited","retry_after":21}}}`, body)

	// The GET stream and protocol messages are free: an exhausted key can
	// still keep its session alive and close it.
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("Authorization", "Bearer "+k.Raw)
	gr, err := srv.Client().Do(req)
	require.NoError(t, err)
	gr.Body.Close()
	assert.Equal(t, 200, gr.StatusCode)
	resp, _ = post(t, srv, k.Raw, `{"jsonrpc":"2.0","id":2,"method":"ping"}`)
	assert.Equal(t, 200, resp.StatusCode)

	resp, _ = post(t, srv, other.Raw, toolCall("search_documents", "1"))
	assert.Equal(t, 200, resp.StatusCode, "keys have separate budgets")

	f.clock.Advance(time.Duration(retry) * time.Second)
	resp, _ = post(t, srv, k.Raw, toolCall("search_documents", "1"))
	assert.Equal(t, 200, resp.StatusCode, "Retry-After was not early")
}

func TestRateLimitTiersOverridesCostsAndUsers(t *testing.T) {
	t.Parallel()
	f, srv := limitedServer(t, &ratelimit.Policy{
		Default: ratelimit.Limit{Rate: 2, Per: time.Minute},
		Tiers:   map[string]ratelimit.Limit{"paid": {Rate: 5, Per: time.Minute}},
		Costs:   map[string]int{"tools/call:expensive_report": 5, "ping": 0},
		By:      ratelimit.ByUser,
	}, false)
	paid := f.create(t, "carol", keyadmin.CreateOptions{Metadata: map[string]string{"tier": "paid"}})
	override := f.create(t, "dave", keyadmin.CreateOptions{RateLimit: 1})
	a1 := f.create(t, "erin", keyadmin.CreateOptions{})
	a2 := f.create(t, "erin", keyadmin.CreateOptions{})

	resp, _ := post(t, srv, paid.Raw, toolCall("expensive_report", "1"))
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, `"paid";q=5;w=60`, resp.Header.Get("RateLimit-Policy"))
	resp, _ = post(t, srv, paid.Raw, toolCall("search", "2"))
	assert.Equal(t, 429, resp.StatusCode, "the expensive call spent the whole paid budget")
	for range 5 {
		resp, _ = post(t, srv, paid.Raw, `{"jsonrpc":"2.0","id":3,"method":"ping"}`)
		assert.Equal(t, 200, resp.StatusCode, "pings are free")
	}

	resp, _ = post(t, srv, override.Raw, toolCall("search", "1"))
	assert.Equal(t, 200, resp.StatusCode)
	resp, _ = post(t, srv, override.Raw, toolCall("search", "1"))
	assert.Equal(t, 429, resp.StatusCode, "the key's own override (1/min) applies")

	resp, _ = post(t, srv, a1.Raw, toolCall("search", "1"))
	assert.Equal(t, 200, resp.StatusCode)
	resp, _ = post(t, srv, a2.Raw, toolCall("search", "1"))
	assert.Equal(t, 200, resp.StatusCode)
	resp, _ = post(t, srv, a1.Raw, toolCall("search", "1"))
	assert.Equal(t, 429, resp.StatusCode, "two keys of one user share the user's budget")
}

func TestRateLimiterFailureFailsClosed(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	broken := ratelimit.LimiterFunc(func(context.Context, string, ratelimit.Limit, int) (ratelimit.Decision, error) {
		return ratelimit.Decision{}, errors.Join(ratelimit.ErrUnavailable, errors.New("dial tcp 10.0.0.9:6379: refused"))
	})
	g, err := mcpauth.New(f.store, &mcpauth.Options{Now: f.clock.Now, Peppers: []apikey.Pepper{testPepper}, RateLimiter: broken})
	require.NoError(t, err)
	t.Cleanup(func() { _ = g.Close(context.Background()) })
	k, err := managerFor(t, g, f.store, f.clock.Now).Create(context.Background(), "alice", keyadmin.CreateOptions{})
	require.NoError(t, err)
	srv := httptest.NewServer(g.Require(&echo{}))
	t.Cleanup(srv.Close)
	resp, body := post(t, srv, k.Raw, toolCall("search", "1"))
	assert.Equal(t, 503, resp.StatusCode)
	assert.NotContains(t, body, "10.0.0.9")

	_, err = mcpauth.New(f.store, &mcpauth.Options{RateLimiter: broken, RatePolicy: &ratelimit.Policy{Default: ratelimit.Limit{Rate: -1, Per: time.Minute}}})
	require.Error(t, err, "an invalid policy fails at New")
}

// TestRatePolicyCopiedAtNew: the Guard keeps its own copy of the policy, so
// a caller changing its maps after New neither changes the limits nor races
// with requests (run with -race).
func TestRatePolicyCopiedAtNew(t *testing.T) {
	t.Parallel()
	policy := &ratelimit.Policy{Default: ratelimit.Limit{Rate: 2, Per: time.Minute}, Costs: map[string]int{"tools/call": 1}}
	f, srv := limitedServer(t, policy, false)
	k := f.create(t, "alice", keyadmin.CreateOptions{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 1000 {
			policy.Costs["tools/call"] = i % 3 // the caller's map, written concurrently
		}
	}()
	for range 2 {
		resp, _ := post(t, srv, k.Raw, toolCall("search_documents", "1"))
		assert.Equal(t, 200, resp.StatusCode)
	}
	<-done
	policy.Costs["tools/call"] = 0
	resp, _ := post(t, srv, k.Raw, toolCall("search_documents", "1"))
	assert.Equal(t, 429, resp.StatusCode, "the cost the Guard was built with still applies")
}
