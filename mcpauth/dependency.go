package mcpauth

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/mcpauth/mcpauth/store"
)

// dependency tracks whether a backend the request path calls (the key
// store, the rate limiter) is failing, so that an outage is logged once
// when it starts (Error, with the first error) and once when it ends (Info,
// with how long it lasted and how many calls failed), not once per refused
// request. It is safe for concurrent use; a healthy call costs one atomic
// load.
type dependency struct {
	name     string // "key store", "rate limiter"
	log      *slog.Logger
	now      func() time.Time
	down     atomic.Bool
	since    atomic.Int64 // unix nanoseconds the outage started
	failures atomic.Int64 // failed calls in the current outage
}

func newDependency(name string, log *slog.Logger, now func() time.Time) *dependency {
	return &dependency{name: name, log: log, now: now}
}

// failed records a failed call; the first of an outage is logged.
func (d *dependency) failed(ctx context.Context, keyID string, err error) {
	d.failures.Add(1)
	if d.down.Load() || !d.down.CompareAndSwap(false, true) {
		return
	}
	d.since.Store(d.now().UnixNano())
	d.log.LogAttrs(ctx, slog.LevelError, "mcpauth: "+d.name+" is failing; refusing requests that need it (logged once until it recovers)",
		slog.String("key_id", keyID), slog.String("error", err.Error()))
}

// ok records a call that worked; the first after an outage is logged.
func (d *dependency) ok(ctx context.Context) {
	if !d.down.Load() || !d.down.CompareAndSwap(true, false) {
		return
	}
	d.log.LogAttrs(ctx, slog.LevelInfo, "mcpauth: "+d.name+" recovered",
		slog.Duration("outage", d.now().Sub(time.Unix(0, d.since.Load()))), slog.Int64("failed_calls", d.failures.Swap(0)))
}

// observeLookup records a key store answer: "not found" is an answer.
func (d *dependency) observeLookup(ctx context.Context, keyID string, err error) {
	if err == nil || errors.Is(err, store.ErrNotFound) {
		d.ok(ctx)
		return
	}
	d.failed(ctx, keyID, err)
}
