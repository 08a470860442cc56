package redislimit

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcpauth/mcpauth/ratelimit"
)

//go:embed gcra.lua
var gcraSource string

var gcra = redis.NewScript(gcraSource)

// ErrInvalidOptions reports options New cannot use.
var ErrInvalidOptions = errors.New("mcpauth/ratelimit/redislimit: invalid options")

// Mode is what the limiter does when Redis cannot be reached.
type Mode int

const (
	// FailClosed refuses to decide: Allow returns an error wrapping
	// ratelimit.ErrUnavailable, which the middleware answers with 503.
	// This is the default: no request goes through unlimited.
	FailClosed Mode = iota
	// FallbackLocal decides with an in-process limiter until Redis is back.
	// Each app instance then enforces its share of the budget on its own:
	// Options.Instances = N gives each a bucket of ⌊burst/N⌋ and a rate of
	// ⌊rate/N⌋ per period (at least 1 of each), so N instances together
	// admit at most the budget (or N units, if the budget is below N).
	// Units spent during the outage are not carried back to Redis.
	FallbackLocal
)

func (m Mode) String() string {
	switch m {
	case FailClosed:
		return "fail-closed"
	case FallbackLocal:
		return "fallback-local"
	default:
		return "Mode(" + strconv.Itoa(int(m)) + ")"
	}
}

// Options configures New. A nil *Options means all defaults.
type Options struct {
	// Prefix is prepended to every bucket name. Default "mcpauth:rl:".
	Prefix string
	// OnUnavailable chooses the failure mode. Default FailClosed.
	OnUnavailable Mode
	// Fallback is the local limiter used by FallbackLocal. Default: a
	// ratelimit.NewMemory(nil) owned, and closed, by the Limiter.
	Fallback *ratelimit.Memory
	// Instances is how many app instances share the budget, for
	// FallbackLocal: each instance's local share is the budget divided by
	// it (see FallbackLocal). Set it to the number of instances you run
	// (more, if they scale out). Default 1: each instance admits the whole
	// budget during an outage.
	Instances int
	// Timeout bounds each Redis call on the request path, whatever the
	// client's own dial and read timeouts and retries (the call is waited
	// for on a separate goroutine and abandoned at the deadline). A call
	// that times out marks Redis unavailable, so later requests no longer
	// wait for it. The worst-case latency a Redis outage adds to a request
	// is therefore Timeout, for the requests in flight when it starts; 0
	// after that, until a background probe finds Redis back. Default
	// 100ms.
	Timeout time.Duration
	// ProbeInterval is the least time between two checks of whether Redis
	// is back, made in the background while the limiter is degraded.
	// Default 2 seconds.
	ProbeInterval time.Duration
	// Logger receives one record per state change (Warn when Redis becomes
	// unavailable, Info when it is back). Default slog.Default().
	Logger *slog.Logger
	// OnStateChange, if set, is called once per state change, after the
	// change, with the error that caused degradation (nil on recovery). It
	// must not block.
	OnStateChange func(degraded bool, err error)
}

// Limiter is a ratelimit.Limiter whose buckets live in Redis, so that
// several app instances share one budget per key. Every decision is one
// EVALSHA of a GCRA script that reads Redis' own clock.
//
// When Redis fails (network errors, LOADING, READONLY, CLUSTERDOWN...),
// the Limiter becomes degraded: it stops calling Redis on the request path,
// answers according to Options.OnUnavailable, logs the change once, and
// probes Redis in the background at most every ProbeInterval until it
// answers again. Errors that are not about availability (a key of the wrong
// type, a bad script) are returned, wrapped in ratelimit.ErrUnavailable,
// without degrading.
//
// Limiter is safe for concurrent use. Close stops probing and closes the
// fallback limiter it created; it does not close the Redis client.
type Limiter struct {
	client        redis.UniversalClient
	prefix        string
	mode          Mode
	fallback      *ratelimit.Memory
	ownFallback   bool
	probeInterval time.Duration
	instances     int
	timeout       time.Duration
	logger        *slog.Logger
	onState       func(bool, error)

	degraded  atomic.Bool
	probing   atomic.Bool
	lastProbe atomic.Int64 // unix nanoseconds

	mu     sync.Mutex // guards closed and wg.Add
	closed bool
	wg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
}

var _ ratelimit.Limiter = (*Limiter)(nil)

// New returns a Redis-backed limiter using client.
func New(client redis.UniversalClient, opts *Options) (*Limiter, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil client", ErrInvalidOptions)
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	switch {
	case o.OnUnavailable != FailClosed && o.OnUnavailable != FallbackLocal:
		return nil, fmt.Errorf("%w: unknown OnUnavailable %v", ErrInvalidOptions, o.OnUnavailable)
	case o.ProbeInterval < 0:
		return nil, fmt.Errorf("%w: negative ProbeInterval", ErrInvalidOptions)
	case o.Fallback != nil && o.OnUnavailable != FallbackLocal:
		return nil, fmt.Errorf("%w: Fallback set without FallbackLocal", ErrInvalidOptions)
	case o.Instances < 0:
		return nil, fmt.Errorf("%w: negative Instances", ErrInvalidOptions)
	case o.Timeout < 0:
		return nil, fmt.Errorf("%w: negative Timeout", ErrInvalidOptions)
	}
	if o.Instances == 0 {
		o.Instances = 1
	}
	if o.Timeout == 0 {
		o.Timeout = 100 * time.Millisecond
	}
	if o.Prefix == "" {
		o.Prefix = "mcpauth:rl:"
	}
	if o.ProbeInterval == 0 {
		o.ProbeInterval = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	l := &Limiter{
		client:        client,
		prefix:        o.Prefix,
		mode:          o.OnUnavailable,
		fallback:      o.Fallback,
		probeInterval: o.ProbeInterval,
		instances:     o.Instances,
		timeout:       o.Timeout,
		logger:        o.Logger,
		onState:       o.OnStateChange,
	}
	if l.mode == FallbackLocal && l.fallback == nil {
		l.fallback = ratelimit.NewMemory(nil)
		l.ownFallback = true
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	return l, nil
}

// Allow implements ratelimit.Limiter.
func (l *Limiter) Allow(ctx context.Context, key string, limit ratelimit.Limit, cost int) (ratelimit.Decision, error) {
	cost, err := ratelimit.CheckRequest(key, limit, cost)
	if err != nil {
		return ratelimit.Decision{}, err
	}
	if l.degraded.Load() {
		l.maybeProbe()
		return l.unavailable(ctx, key, limit, cost, nil)
	}
	burst := limit.EffectiveBurst()
	interval := float64(limit.Per) / float64(limit.Rate) / float64(time.Microsecond)
	res, err := l.run(ctx, key, interval, burst, cost)
	if err == nil && len(res) != 4 {
		err = fmt.Errorf("unexpected script reply %v", res)
	}
	if err != nil {
		if ctx.Err() != nil {
			return ratelimit.Decision{}, fmt.Errorf("mcpauth/ratelimit/redislimit: %w", ctx.Err())
		}
		if errors.Is(err, errTimeout) {
			l.setDegraded(true, err)
			return l.unavailable(ctx, key, limit, cost, err)
		}
		if !unreachable(err) {
			return ratelimit.Decision{}, fmt.Errorf("%w: redis: %w", ratelimit.ErrUnavailable, err)
		}
		l.setDegraded(true, err)
		return l.unavailable(ctx, key, limit, cost, err)
	}
	d := ratelimit.Decision{
		Allowed:    res[0] == 1,
		Limit:      burst,
		Remaining:  int(max(res[1], 0)),
		Window:     limit.Per,
		ResetAfter: time.Duration(res[2]) * time.Microsecond,
		RetryAfter: time.Duration(res[3]) * time.Microsecond,
		Policy:     limit.Name,
	}
	if !d.Allowed && d.RetryAfter <= 0 {
		d.RetryAfter = time.Microsecond
	}
	return d, nil
}

// errTimeout: Redis did not answer within Options.Timeout.
var errTimeout = errors.New("no answer within the limiter's Timeout")

// run calls the script, waiting at most l.timeout (the caller's deadline,
// if earlier, still applies): the client's retries and timeouts may be far
// longer, and a request must not wait for them.
func (l *Limiter) run(ctx context.Context, key string, interval float64, burst, cost int) ([]int64, error) {
	type result struct {
		res []int64
		err error
	}
	cctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	done := make(chan result, 1)
	go func() {
		res, err := gcra.Run(cctx, l.client, []string{l.prefix + key},
			strconv.FormatFloat(interval, 'g', -1, 64), burst, cost).Int64Slice()
		done <- result{res, err}
	}()
	select {
	case r := <-done:
		if r.err != nil && ctx.Err() == nil && cctx.Err() != nil {
			return nil, fmt.Errorf("%w: %w", errTimeout, r.err)
		}
		return r.res, r.err
	case <-cctx.Done():
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, errTimeout
	}
}

// share is an instance's part of limit while Redis is down: burst and rate
// divided by Options.Instances, at least 1 each.
func (l *Limiter) share(limit ratelimit.Limit) ratelimit.Limit {
	if l.instances <= 1 {
		return limit
	}
	limit.Burst = max(1, limit.EffectiveBurst()/l.instances)
	limit.Rate = max(1, limit.Rate/l.instances)
	return limit
}

func (l *Limiter) unavailable(ctx context.Context, key string, limit ratelimit.Limit, cost int, cause error) (ratelimit.Decision, error) {
	if l.mode == FallbackLocal {
		return l.fallback.Allow(ctx, key, l.share(limit), cost)
	}
	if cause == nil {
		return ratelimit.Decision{}, fmt.Errorf("%w: redis is unreachable (degraded)", ratelimit.ErrUnavailable)
	}
	return ratelimit.Decision{}, fmt.Errorf("%w: redis: %w", ratelimit.ErrUnavailable, cause)
}

// unreachable reports whether err means Redis cannot serve requests now,
// as opposed to refusing this one.
func unreachable(err error) bool {
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		return true // network, pool or client-closed errors
	}
	for _, p := range []string{"LOADING", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "BUSY"} {
		if redis.HasErrorPrefix(err, p) {
			return true
		}
	}
	return false
}

// Degraded reports whether Redis is currently considered unreachable.
func (l *Limiter) Degraded() bool { return l.degraded.Load() }

func (l *Limiter) setDegraded(down bool, cause error) {
	if !l.degraded.CompareAndSwap(!down, down) {
		return
	}
	if down {
		l.lastProbe.Store(time.Now().UnixNano())
		l.logger.Warn("mcpauth: rate limiter lost redis",
			slog.String("mode", l.mode.String()), slog.String("error", cause.Error()))
	} else {
		l.logger.Info("mcpauth: rate limiter reconnected to redis")
	}
	if l.onState != nil {
		l.onState(down, cause)
	}
}

// maybeProbe starts a background check of Redis unless one is running or
// the last one started less than ProbeInterval ago.
func (l *Limiter) maybeProbe() {
	last := l.lastProbe.Load()
	now := time.Now().UnixNano()
	if now-last < int64(l.probeInterval) || !l.lastProbe.CompareAndSwap(last, now) {
		return
	}
	if !l.probing.CompareAndSwap(false, true) {
		return
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		l.probing.Store(false)
		return
	}
	l.wg.Add(1)
	l.mu.Unlock()
	go func() {
		defer l.wg.Done()
		defer l.probing.Store(false)
		ctx, cancel := context.WithTimeout(l.ctx, max(l.probeInterval, time.Second))
		defer cancel()
		if err := l.client.Ping(ctx).Err(); err == nil {
			l.setDegraded(false, nil)
		}
	}()
}

// Close stops background probing, waits for a running probe (or ctx), and
// closes the fallback limiter if New created it.
func (l *Limiter) Close(ctx context.Context) error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.cancel()
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("mcpauth/ratelimit/redislimit: close: %w", ctx.Err())
	}
	if l.ownFallback {
		return l.fallback.Close(ctx)
	}
	return nil
}
