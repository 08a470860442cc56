package gateway

import (
	"net/http"
	"strings"
)

// sseWriter writes server-sent events, flushing each one.
type sseWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

// startSSE sends the headers of an event stream.
func startSSE(w http.ResponseWriter) *sseWriter {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache, no-transform")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	s := &sseWriter{w: w, rc: http.NewResponseController(w)}
	_ = s.rc.Flush()
	return s
}

// event writes one "message" event holding data (a one-line JSON message).
func (s *sseWriter) event(data []byte) error {
	if _, err := s.w.Write(append(append([]byte("event: message\ndata: "), data...), '\n', '\n')); err != nil {
		return err
	}
	return s.rc.Flush()
}

// accepts reports whether the request's Accept header lists media type
// (or */*).
func accepts(r *http.Request, media string) bool {
	for _, v := range r.Header.Values("Accept") {
		for _, part := range strings.Split(v, ",") {
			t, _, _ := strings.Cut(part, ";")
			t = strings.TrimSpace(t)
			if strings.EqualFold(t, media) || t == "*/*" {
				return true
			}
		}
	}
	return false
}
