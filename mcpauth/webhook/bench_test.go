package webhook_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/mcpauth/webhook"
)

// BenchmarkVerify is the receiver's cost per request, with a body of the
// usual size.
func BenchmarkVerify(b *testing.B) {
	body := []byte(`{"id":"3f1c0a9e5b7d4e2f8a6c1b0d9e8f7a6b","type":"key.created","at":"2026-01-02T03:04:05Z","user_id":"user-42","key_id":"AbCdEfGhIjKl","key_name":"laptop","expires_at":"2026-04-02T03:04:05Z"}`)
	h := http.Header{}
	h.Set(webhook.HeaderTimestamp, strconv.FormatInt(t0.Unix(), 10))
	h.Set(webhook.HeaderSignature, webhook.Sign(secret, t0.Unix(), body))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := webhook.Verify(secret, h, body, t0, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkNotify is one delivery to a local server: encode, sign, POST.
func BenchmarkNotify(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer srv.Close()
	n, err := webhook.New(srv.URL, secret, &webhook.Options{Now: func() time.Time { return t0 }})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := n.Notify(context.Background(), note); err != nil {
			b.Fatal(err)
		}
	}
}
