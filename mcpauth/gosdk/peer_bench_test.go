package gosdk_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/adaptertest"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/store"
)

// BenchmarkAuthVersusPeer compares the full warm-cache path of
// mcpauth's Require with the official Go SDK's auth.RequireBearerToken
// over a map-based verifier, in the same run (the peer does strictly less:
// no checksum, no hash, no cache, no user check, no request ID). It lives
// in this module so that the core module does not depend on the SDK.
func BenchmarkAuthVersusPeer(b *testing.B) {
	users := store.UserCheckerFunc(func(context.Context, string) (bool, error) { return true, nil })
	ks := store.NewMemory()
	pepper := apikey.Pepper{Version: 1, Secret: []byte("benchmark pepper, 32 bytes long!")}
	g, err := mcpauth.New(ks, &mcpauth.Options{Users: users, Peppers: []apikey.Pepper{pepper}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = g.Close(context.Background()) })
	k, err := adaptertest.MustManager(b, ks, g, &keyadmin.Options{Peppers: []apikey.Pepper{pepper}}).Create(context.Background(), "user-1", keyadmin.CreateOptions{Scopes: []string{"read"}})
	if err != nil {
		b.Fatal(err)
	}
	raw := k.Raw
	ours := g.Require(noop)

	tokens := map[string]*auth.TokenInfo{raw: {UserID: "user-1", Scopes: []string{"read"}, Expiration: time.Now().Add(time.Hour)}}
	peer := auth.RequireBearerToken(func(_ context.Context, tok string, _ *http.Request) (*auth.TokenInfo, error) {
		if ti, ok := tokens[tok]; ok {
			return ti, nil
		}
		return nil, auth.ErrInvalidToken
	}, nil)(noop)

	b.Run("mcpauth/serial", func(b *testing.B) { serveLoop(b, ours, raw) })
	b.Run("gosdk-peer/serial", func(b *testing.B) { serveLoop(b, peer, raw) })
	b.Run("mcpauth/parallel", func(b *testing.B) { serveParallel(b, ours, raw) })
	b.Run("gosdk-peer/parallel", func(b *testing.B) { serveParallel(b, peer, raw) })
}

// noop is the handler behind both middlewares.
var noop = http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})

// discard is a ResponseWriter that costs nothing.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(int)             {}

// benchBody is the body of benchmarked requests: the smallest MCP message.
var benchBody = []byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}`)

// rewindBody is a request body reset before each request, without allocating.
type rewindBody struct{ bytes.Reader }

func (*rewindBody) Close() error { return nil }

func newBenchRequest(token string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	r.Header.Set("Authorization", "Bearer "+token)
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
