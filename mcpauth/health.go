package mcpauth

import (
	"context"
	"errors"
	"net/http"

	"github.com/mcpauth/mcpauth/store"
)

// healthProbeID is a well-formed key ID that is never issued (generated IDs
// are random base62; this one is fixed and documented).
const healthProbeID = "000000health"

// Health returns an unauthenticated handler reporting whether the key store
// answers: 200 {"status":"ok"} when a lookup of a never-issued ID comes back
// "not found" within StoreTimeout, 503 {"status":"unavailable"} otherwise.
// It never reveals the underlying error.
func (g *Guard) Health() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), g.opts.StoreTimeout)
		defer cancel()
		_, err := g.keys.LookupKey(ctx, healthProbeID)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if err == nil || errors.Is(err, store.ErrNotFound) {
			_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"status":"unavailable"}` + "\n"))
	})
}
