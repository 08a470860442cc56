package mcpauth

import "net/http"

// Require is the middleware: it authenticates every request (POST, GET and
// DELETE alike) and calls next only for valid keys, with the Principal in
// the request context (see PrincipalFrom). Failures go to
// Options.ErrorHandler. The ResponseWriter reaches next unwrapped, so
// streaming (http.Flusher, http.ResponseController, SSE) works as without
// the middleware.
//
// Require has the func(http.Handler) http.Handler shape, so it composes
// with chi's r.Use and with plain http.Handle.
func (g *Guard) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := g.authenticate(r)
		if err != nil {
			g.fail(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(withPrincipalPtr(r.Context(), p)))
	})
}
