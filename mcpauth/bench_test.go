package mcpauth_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/ratelimit"
	"github.com/mcpauth/mcpauth/scope"
	"github.com/mcpauth/mcpauth/store"
)

// noop is the handler behind every benchmarked middleware.
var noop = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})

// discard is a ResponseWriter that costs nothing.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(int)             {}

func benchGuard(b testing.TB, s store.KeyStore, opts *mcpauth.Options) (*mcpauth.Guard, string) {
	b.Helper()
	if opts == nil {
		opts = &mcpauth.Options{}
	}
	if opts.Peppers == nil {
		opts.Peppers = []apikey.Pepper{testPepper}
	}
	g, err := mcpauth.New(s, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = g.Close(context.Background()) })
	k, err := managerFor(b, g, s, opts.Now).Create(context.Background(), "user-1", keyadmin.CreateOptions{Scopes: []string{"read"}})
	if err != nil {
		b.Fatal(err)
	}
	return g, k.Raw
}

// benchBody is the body of benchmarked requests: the smallest MCP message.
var benchBody = []byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}`)

// rewindBody is a request body reset before each request, without allocating.
type rewindBody struct{ bytes.Reader }

func (*rewindBody) Close() error { return nil }

func newBenchRequest(token string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	r.ContentLength = int64(len(benchBody))
	return r
}

func serveLoop(b *testing.B, h http.Handler, token string) {
	b.ReportAllocs()
	r := newBenchRequest(token)
	w := &discard{h: http.Header{}}
	var body rewindBody
	for b.Loop() {
		body.Reset(benchBody)
		r.Body = &body
		h.ServeHTTP(w, r)
	}
}

func serveParallel(b *testing.B, h http.Handler, token string) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := newBenchRequest(token)
		w := &discard{h: http.Header{}}
		var body rewindBody
		for pb.Next() {
			body.Reset(benchBody)
			r.Body = &body
			h.ServeHTTP(w, r)
		}
	})
}

// BenchmarkMiddleware is the full warm-cache path of Require: header,
// checksum, cache, HMAC-SHA256, constant-time compare, user check,
// principal into the context. Its comparison with the go-sdk's
// auth.RequireBearerToken, in the same run, is BenchmarkAuthVersusPeer in
// the mcpauth/gosdk module (peers stay out of the core module).
func BenchmarkMiddleware(b *testing.B) {
	users := store.UserCheckerFunc(func(context.Context, string) (bool, error) { return true, nil })
	g, raw := benchGuard(b, store.NewMemory(), &mcpauth.Options{Users: users})
	ours := g.Require(noop)
	b.Run("mcpauth/serial", func(b *testing.B) { serveLoop(b, ours, raw) })
	b.Run("mcpauth/parallel", func(b *testing.B) { serveParallel(b, ours, raw) })
}

// BenchmarkRejections measures what attackers can make the server do.
func BenchmarkRejections(b *testing.B) {
	g, raw := benchGuard(b, store.NewMemory(), nil)
	h := g.Require(noop)
	b.Run("bad-checksum", func(b *testing.B) { serveLoop(b, h, badChecksum(raw)) })
	b.Run("huge-header-1MiB", func(b *testing.B) { serveLoop(b, h, strings.Repeat("a", 1<<20)) })
	other, _ := benchGuard(b, store.NewMemory(), nil)
	unknown, err := managerFor(b, other, store.NewMemory(), nil).Create(context.Background(), "u", keyadmin.CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("unknown-id-negative-cache", func(b *testing.B) { serveParallel(b, h, unknown.Raw) })
	b.Run("no-credential", func(b *testing.B) { serveLoop(b, h, "") })
}

func BenchmarkParseKey(b *testing.B) {
	_, raw := benchGuard(b, store.NewMemory(), nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := apikey.ParseKey(raw, ""); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkColdLookup disables the cache: every request reads the memory store.
func BenchmarkColdLookup(b *testing.B) {
	g, raw := benchGuard(b, store.NewMemory(), &mcpauth.Options{CacheTTL: -1})
	h := g.Require(noop)
	b.Run("serial", func(b *testing.B) { serveLoop(b, h, raw) })
	b.Run("parallel", func(b *testing.B) { serveParallel(b, h, raw) })
}

// BenchmarkFullPipeline is the warm path with every feature on: key check,
// body inspection of a tools/call with 1 KiB of arguments, rate limit
// decision (in-memory), policy decision and an audit enqueue (BestEffort
// writer to a discarding sink).
func BenchmarkFullPipeline(b *testing.B) {
	policy, err := scope.NewPolicy(scope.PolicyConfig{Tools: []scope.Rule{{Match: "search_documents", Scopes: []string{"documents:read"}}}})
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
	huge := ratelimit.Limit{Rate: 1 << 29, Per: time.Second}
	body := []byte(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"search_documents","arguments":{"q":"` + strings.Repeat("x", 1024) + `"}}}`)
	for _, tc := range []struct {
		name string
		opts mcpauth.Options
	}{
		{"auth-only", mcpauth.Options{}},
		{"auth+policy", mcpauth.Options{Policy: policy}},
		{"auth+policy+ratelimit", mcpauth.Options{Policy: policy, RateLimiter: lim, RatePolicy: &ratelimit.Policy{Default: huge}}},
		{"auth+policy+ratelimit+audit", mcpauth.Options{Policy: policy, RateLimiter: lim, RatePolicy: &ratelimit.Policy{Default: huge}, Audit: w}},
	} {
		o := tc.opts
		g, raw := benchGuard(b, store.NewMemory(), &o)
		h := g.Require(noop)
		run := func(pb interface{ Next() bool }) {
			r := newBenchRequest(raw)
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

// loopNext adapts b.Loop to the pb.Next shape.
type loopNext struct{ b *testing.B }

func (l loopNext) Next() bool { return l.b.Loop() }
