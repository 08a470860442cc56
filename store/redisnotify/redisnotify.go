// Package redisnotify is a store.ChangeFeed on Redis pub/sub, for
// deployments that have Redis (for the shared rate limiter,
// ratelimit/redislimit) whatever database holds their keys: every key
// change a keyadmin.Manager stores is PUBLISHed, and every instance's
// Guard, subscribed on a connection of its own, drops the key from its
// cache when the message arrives, typically within a millisecond of the
// publish.
//
// It is a module of its own so that the core module needs no Redis client.
//
// # Failure
//
// The Feed pings its subscription connection after HealthInterval without
// traffic; a connection that errors, or does not answer the ping within
// another HealthInterval, is dropped. The Feed then logs once (Warn),
// resubscribes with backoff (ReconnectDelay doubling to MaxReconnectDelay)
// and, once subscribed again, logs once (Info) and delivers a store.Change
// with Lost set, on which Guards drop their whole cache: messages published
// while it was down are lost (Redis pub/sub keeps nothing), and that covers
// them. Meanwhile the Guards' poll (mcpauth.Options.RevocationPollInterval,
// 1s by default) is the bound. A failed publish is returned to the caller
// (the Manager logs it); PublishChange is bounded by PublishTimeout.
package redisnotify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcpauth/mcpauth/store"
	"github.com/mcpauth/mcpauth/store/internal/feedloop"
)

// DefaultChannel is the pub/sub channel when Options.Channel is empty.
const DefaultChannel = "mcpauth:key-changes"

// ErrInvalidOptions reports options New cannot use.
var ErrInvalidOptions = errors.New("mcpauth/redisnotify: invalid options")

// Options configures New. A nil *Options means all defaults.
type Options struct {
	// Channel is the pub/sub channel; every instance must use the same.
	// Default "mcpauth:key-changes".
	Channel string
	// Logger receives one line per state change of the subscription (Warn
	// when it is lost, Info when it is back). Default slog.Default().
	Logger *slog.Logger
	// HealthInterval is how long the subscription may be silent before it
	// is pinged, and how long the ping may take: a dead connection is found
	// within 2 × HealthInterval. Default 2s.
	HealthInterval time.Duration
	// ReconnectDelay is the first wait before resubscribing; it doubles up
	// to MaxReconnectDelay. Defaults 100ms and 5s.
	ReconnectDelay, MaxReconnectDelay time.Duration
	// PublishTimeout bounds one PublishChange (a goroutine waits for the
	// client, whatever its own timeouts and retries). Default 500ms.
	PublishTimeout time.Duration
}

// Feed is a store.ChangeFeed on Redis pub/sub. It is safe for concurrent
// use; Close it on shutdown (it does not close the client).
type Feed struct {
	client redis.UniversalClient
	opts   Options
	subs   store.LocalFeed
	cancel context.CancelFunc
	done   chan struct{}

	mu  sync.Mutex
	cur *redis.PubSub // the live subscription, closed by Close to end a blocked read
}

var _ store.ChangeFeed = (*Feed)(nil)

// New subscribes to the channel with client and returns the Feed. It fails
// if the first subscription fails within ctx, so that a misconfigured feed
// is noticed at start-up.
func New(ctx context.Context, client redis.UniversalClient, opts *Options) (*Feed, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil client", ErrInvalidOptions)
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Channel == "" {
		o.Channel = DefaultChannel
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.HealthInterval <= 0 {
		o.HealthInterval = 2 * time.Second
	}
	if o.ReconnectDelay <= 0 {
		o.ReconnectDelay = 100 * time.Millisecond
	}
	if o.MaxReconnectDelay <= 0 {
		o.MaxReconnectDelay = 5 * time.Second
	}
	if o.PublishTimeout <= 0 {
		o.PublishTimeout = 500 * time.Millisecond
	}
	f := &Feed{client: client, opts: o, done: make(chan struct{})}
	ps, err := f.subscribe(ctx)
	if err != nil {
		return nil, err
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	go f.loop(loopCtx, ps)
	return f, nil
}

// subscribe subscribes and waits for Redis to confirm it.
func (f *Feed) subscribe(ctx context.Context) (*redis.PubSub, error) {
	ps := f.client.Subscribe(ctx, f.opts.Channel)
	if _, err := ps.ReceiveTimeout(ctx, f.opts.HealthInterval); err != nil { // the subscribe confirmation
		_ = ps.Close()
		return nil, fmt.Errorf("mcpauth/redisnotify: subscribe: %w", err)
	}
	return ps, nil
}

// loop delivers messages, and resubscribes when the subscription breaks.
func (f *Feed) loop(ctx context.Context, ps *redis.PubSub) {
	defer close(f.done)
	l := feedloop.Loop[*redis.PubSub]{
		Name: "mcpauth/redisnotify", Channel: f.opts.Channel, Again: "subscribed", Logger: f.opts.Logger,
		Delay: f.opts.ReconnectDelay, MaxDelay: f.opts.MaxReconnectDelay,
		Dial:    func(ctx context.Context, _ time.Duration) (*redis.PubSub, error) { return f.subscribe(ctx) },
		Receive: f.receive,
		Close:   func(ps *redis.PubSub) { _ = ps.Close() },
		Current: func(ps *redis.PubSub) {
			f.mu.Lock()
			f.cur = ps
			f.mu.Unlock()
		},
		Lost: func() { f.subs.Deliver(store.Change{Lost: true}) },
	}
	l.Run(ctx, ps)
}

// errNoPong: the connection did not answer a ping in time.
var errNoPong = errors.New("no answer to ping")

// receive delivers messages until the subscription fails.
func (f *Feed) receive(ctx context.Context, ps *redis.PubSub) error {
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, f.opts.HealthInterval)
		var nerr interface{ Timeout() bool }
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil && errors.As(err, &nerr) && nerr.Timeout():
			if pinged {
				return errNoPong
			}
			if err := ps.Ping(ctx); err != nil {
				return err
			}
			pinged = true
			continue
		case err != nil:
			return err
		}
		pinged = false
		if m, ok := msg.(*redis.Message); ok {
			if c, err := store.ParseChange(m.Payload); err == nil {
				f.subs.Deliver(c)
			}
		}
	}
}

// Subscribe implements store.ChangeSubscriber. fn runs on the Feed's
// receiving goroutine.
func (f *Feed) Subscribe(fn func(store.Change)) func() { return f.subs.Subscribe(fn) }

// PublishChange implements store.ChangePublisher with one PUBLISH per
// payload. It returns within PublishTimeout even when the client's own
// timeouts and retries are longer.
func (f *Feed) PublishChange(ctx context.Context, c store.Change) error {
	payloads, err := c.Encode()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, f.opts.PublishTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		var err error
		for _, p := range payloads {
			if err = f.client.Publish(ctx, f.opts.Channel, p).Err(); err != nil {
				break
			}
		}
		done <- err
	}()
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("mcpauth/redisnotify: publish: %w", err)
	}
	return nil
}

// Close stops the subscription and waits for its goroutine or ctx.
func (f *Feed) Close(ctx context.Context) error {
	f.cancel()
	f.mu.Lock()
	if f.cur != nil {
		_ = f.cur.Close()
	}
	f.mu.Unlock()
	select {
	case <-f.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("mcpauth/redisnotify: close: %w", ctx.Err())
	}
}
