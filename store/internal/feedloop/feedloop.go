// Package feedloop keeps the connection of a change feed (the modules
// store/sqlstore/pgnotify and store/redisnotify) alive: it receives until
// the connection breaks, logs that once, redials with exponential backoff,
// logs once when the channel is back, and then tells subscribers that
// changes may have been missed. One log line per state change, never per
// attempt.
package feedloop

import (
	"context"
	"log/slog"
	"time"
)

// Loop is one feed's receiving loop over connections of type C.
type Loop[C any] struct {
	// Name prefixes log messages ("mcpauth/pgnotify"); Channel and Again
	// ("listening", "subscribed") complete them.
	Name, Channel, Again string
	Logger               *slog.Logger
	// Delay is the first wait before a redial; it doubles up to MaxDelay.
	Delay, MaxDelay time.Duration
	// Dial opens a connection and subscribes it; delay is the wait that
	// preceded this attempt, for a dialer that bounds its attempt by it.
	Dial func(ctx context.Context, delay time.Duration) (C, error)
	// Receive delivers changes from c until it fails.
	Receive func(ctx context.Context, c C) error
	// Close closes a connection that failed or is no longer needed.
	Close func(c C)
	// Current, if set, is told of each connection the loop starts to
	// receive on (for a Close that must interrupt it).
	Current func(c C)
	// Lost is called once the channel is back after an outage: subscribers
	// drop what they cached, since changes may have been missed.
	Lost func()
}

// Run receives on c, and on the connections that replace it, until ctx
// ends.
func (l *Loop[C]) Run(ctx context.Context, c C) {
	for {
		if l.Current != nil {
			l.Current(c)
		}
		if ctx.Err() != nil { // closed before c was current
			l.Close(c)
			return
		}
		err := l.Receive(ctx, c)
		l.Close(c)
		if ctx.Err() != nil {
			return
		}
		l.Logger.LogAttrs(ctx, slog.LevelWarn, l.Name+": change channel lost; instances rely on their poll until it is back",
			slog.String("channel", l.Channel), slog.String("error", err.Error()))
		start := time.Now()
		var ok bool
		if c, ok = l.redial(ctx); !ok {
			return // closed
		}
		l.Logger.LogAttrs(ctx, slog.LevelInfo, l.Name+": change channel "+l.Again+" again; caches dropped",
			slog.String("channel", l.Channel), slog.Duration("outage", time.Since(start)))
		l.Lost()
	}
}

// redial retries Dial with backoff until it succeeds or ctx ends (false).
func (l *Loop[C]) redial(ctx context.Context) (C, bool) {
	delay := l.Delay
	for {
		select {
		case <-ctx.Done():
			var zero C
			return zero, false
		case <-time.After(delay):
		}
		if c, err := l.Dial(ctx, delay); err == nil {
			return c, true
		}
		delay = min(2*delay, l.MaxDelay)
	}
}
