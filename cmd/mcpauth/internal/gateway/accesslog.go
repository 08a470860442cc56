package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/mcpauth/mcpauth/mcpauth"
)

// The access log: one line per request on the MCP path, with the key ID and
// user of the principal when the Guard let the request through (refusals
// carry neither; their audit events do). Never a credential.

type reqStateKey struct{}

// reqState is what the layers inside the Guard tell the ones outside it.
type reqState struct {
	keyID, userID string
	// aborted: the upstream copy failed mid-response (httputil.ReverseProxy
	// panics with http.ErrAbortHandler). The panic is held inside the Guard
	// so that the request completes normally through the layers around it
	// (the access log writes its line, with aborted set), then raised again
	// outside them so that the client's connection is still aborted. (The
	// Guard would record the audit events of a panicking handler anyway.)
	aborted bool
}

func stateFrom(ctx context.Context) *reqState {
	st, _ := ctx.Value(reqStateKey{}).(*reqState)
	return st
}

// withState runs next with a fresh reqState and re-raises a held abort.
func withState(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := &reqState{}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), reqStateKey{}, st)))
		if st.aborted {
			panic(http.ErrAbortHandler)
		}
	})
}

// holdAbort, deferred inside the Guard, turns http.ErrAbortHandler into
// reqState.aborted; any other panic goes on.
func holdAbort(r *http.Request) {
	v := recover()
	if v == nil {
		return
	}
	if st := stateFrom(r.Context()); st != nil && v == http.ErrAbortHandler {
		st.aborted = true
		return
	}
	panic(v)
}

// accessLog wraps the guarded handler (inside withState): notePrincipal,
// inside the Guard, fills in the line's key and user.
func accessLog(log *slog.Logger, now func() time.Time, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := now()
		info := stateFrom(r.Context())
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", r.Method),
			slog.Int("status", sw.status),
			slog.Bool("aborted", info.aborted),
			slog.String("key_id", info.keyID),
			slog.String("user_id", info.userID),
			slog.String("request_id", w.Header().Get("X-Request-Id")),
			slog.Float64("duration_ms", float64(now().Sub(start).Microseconds())/1000))
	})
}

// notePrincipal records the principal for the access log.
func notePrincipal(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if st := stateFrom(r.Context()); st != nil {
			if p, ok := mcpauth.PrincipalFrom(r.Context()); ok {
				st.keyID, st.userID = p.KeyID, p.UserID
			}
		}
		defer holdAbort(r)
		next.ServeHTTP(w, r)
	})
}

// statusWriter remembers the status; Unwrap keeps http.ResponseController
// (flushes, deadlines) working through it.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
