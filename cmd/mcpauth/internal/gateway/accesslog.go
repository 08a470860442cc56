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

type logInfoKey struct{}

type logInfo struct{ keyID, userID string }

// accessLog wraps the guarded handler: it starts the line's facts, and
// notePrincipal (inside the Guard) fills them in.
func accessLog(log *slog.Logger, now func() time.Time, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := now()
		info := &logInfo{}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), logInfoKey{}, info)))
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", r.Method),
			slog.Int("status", sw.status),
			slog.String("key_id", info.keyID),
			slog.String("user_id", info.userID),
			slog.String("request_id", w.Header().Get("X-Request-Id")),
			slog.Duration("duration", now().Sub(start)))
	})
}

// notePrincipal records the principal for the access log.
func notePrincipal(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if info, ok := r.Context().Value(logInfoKey{}).(*logInfo); ok {
			if p, ok := mcpauth.PrincipalFrom(r.Context()); ok {
				info.keyID, info.userID = p.KeyID, p.UserID
			}
		}
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
