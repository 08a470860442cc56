package sqltest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/store"
)

// BenchmarkMiddlewareWarmCache runs requests through the full middleware
// (mcpauth.Guard.Require) with a warm key cache, on the memory store and on
// the SQL store: with the cache warm the store is not called on the request
// path (last-used times are flushed in the background), so the figures must
// match within noise.
func BenchmarkMiddlewareWarmCache(b *testing.B) {
	backends := []struct {
		name string
		new  func(b *testing.B) store.KeyStore
	}{
		{"memory", func(*testing.B) store.KeyStore { return store.NewMemory() }},
		{"sqlite", func(b *testing.B) store.KeyStore { return newSQLiteStore(b) }},
		{"postgres", func(b *testing.B) store.KeyStore { return newPostgresStore(b) }},
	}
	noop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			keys := be.new(b)
			pepper := apikey.Pepper{Version: 1, Secret: []byte("bench-pepper-bench-pepper-bench!")}
			g, err := mcpauth.New(keys, &mcpauth.Options{Peppers: []apikey.Pepper{pepper}})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = g.Close(context.Background()) })
			k, err := newManager(b, keys, pepper, g).Create(context.Background(), "user-1", keyadmin.CreateOptions{Scopes: []string{"read"}})
			if err != nil {
				b.Fatal(err)
			}
			h := g.Require(noop)
			newReq := func() *http.Request {
				r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
				r.Header.Set("Authorization", "Bearer "+k.Raw)
				return r
			}
			// Warm the cache, and check that the key works.
			w := httptest.NewRecorder()
			h.ServeHTTP(w, newReq())
			if w.Code != http.StatusOK {
				b.Fatalf("warm-up request: status %d", w.Code)
			}
			b.Run("serial", func(b *testing.B) {
				b.ReportAllocs()
				r, w := newReq(), &discardWriter{h: http.Header{}}
				for b.Loop() {
					h.ServeHTTP(w, r)
				}
			})
			b.Run("parallel", func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					r, w := newReq(), &discardWriter{h: http.Header{}}
					for pb.Next() {
						h.ServeHTTP(w, r)
					}
				})
			})
		})
	}
}

type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}
