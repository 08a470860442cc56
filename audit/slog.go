package audit

import (
	"context"
	"log/slog"
)

// SlogSink logs each event as one slog record with the message "audit" and
// the attributes of Event.Attrs. Allowed traffic and key lifecycle actions
// are logged at Info, refusals (denied, unauthenticated, rate_limited) at
// Warn, backend errors at Error. It is safe for concurrent use if the
// logger's handler is (every handler in log/slog is).
type SlogSink struct {
	l *slog.Logger
}

var _ Sink = (*SlogSink)(nil)

// NewSlogSink returns a sink logging to l; nil means slog.Default().
func NewSlogSink(l *slog.Logger) *SlogSink {
	if l == nil {
		l = slog.Default()
	}
	return &SlogSink{l: l}
}

// Record logs the event. The record's time is the event's Time (when it is
// set), not the time of logging.
func (s *SlogSink) Record(ctx context.Context, e Event) error {
	lvl := e.level()
	h := s.l.Handler()
	if !h.Enabled(ctx, lvl) {
		return nil
	}
	t := e.Time
	if t.IsZero() {
		t = timeNow()
	}
	r := slog.NewRecord(t, lvl, "audit", 0)
	r.AddAttrs(e.Attrs()...)
	return h.Handle(ctx, r)
}
