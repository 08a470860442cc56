// Package pgnotify is a store.ChangeFeed on PostgreSQL LISTEN/NOTIFY, for
// deployments that keep their keys in PostgreSQL (store/sqlstore): every
// key change a keyadmin.Manager stores is published with pg_notify, and
// every instance's Guard, listening on a connection of its own, drops the
// key from its cache when the notification arrives, typically within a
// millisecond or two of the publish.
//
// It is a module of its own so that the core module needs no PostgreSQL
// driver; it uses pgx directly (one listening connection and one for
// publishing per Feed, outside the application's *sql.DB pool).
//
// # Failure
//
// When the listening connection breaks (server restart, network), the Feed
// logs once (Warn), reconnects with backoff (ReconnectDelay doubling to
// MaxReconnectDelay) and, once it listens again, logs once (Info) and
// delivers a store.Change with Lost set, on which Guards drop their whole
// cache: notifications sent while it was down are lost, and that covers
// them. Meanwhile the Guards' poll (mcpauth.Options.RevocationPollInterval,
// 1s by default) is the bound. A connection that dies without a reset (a
// silent network partition) is found by TCP keepalive (KeepAlive), about
// 4 × KeepAlive after the last packet; until then the poll is the bound
// too. A failed publish is returned to the caller (the Manager logs it).
package pgnotify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mcpauth/mcpauth/store"
	"github.com/mcpauth/mcpauth/store/internal/feedloop"
)

// DefaultChannel is the notification channel when Options.Channel is empty.
const DefaultChannel = "mcpauth_key_changes"

var channelRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// ErrInvalidOptions reports options New cannot use.
var ErrInvalidOptions = errors.New("mcpauth/pgnotify: invalid options")

// Options configures New. A nil *Options means all defaults.
type Options struct {
	// Channel is the LISTEN/NOTIFY channel, [a-z_][a-z0-9_]* up to 63
	// bytes; every instance must use the same. Default "mcpauth_key_changes".
	Channel string
	// Logger receives one line per state change of the listening
	// connection (Warn when it is lost, Info when it listens again).
	// Default slog.Default().
	Logger *slog.Logger
	// ReconnectDelay is the first wait before reconnecting; it doubles up
	// to MaxReconnectDelay. Defaults 100ms and 5s.
	ReconnectDelay, MaxReconnectDelay time.Duration
	// KeepAlive is the TCP keepalive idle time and probe interval of both
	// connections (3 probes), which bounds how long a silently dead
	// connection goes unnoticed. Default 5s.
	KeepAlive time.Duration
	// PublishTimeout bounds one PublishChange when its context has no
	// earlier deadline. Default 2s.
	PublishTimeout time.Duration
}

// Feed is a store.ChangeFeed on PostgreSQL LISTEN/NOTIFY. It is safe for
// concurrent use; Close it on shutdown.
type Feed struct {
	cfg  *pgx.ConnConfig
	opts Options
	subs store.LocalFeed

	pubMu sync.Mutex
	pub   *pgx.Conn // nil until the first publish, and after a failure

	cancel context.CancelFunc
	done   chan struct{}
}

var _ store.ChangeFeed = (*Feed)(nil)

// New connects to PostgreSQL (connString as pgx.ParseConfig reads it:
// "postgres://..." or key=value), starts listening and returns the Feed.
// It fails if the first connection or the LISTEN fails, so that a
// misconfigured feed is noticed at start-up.
func New(ctx context.Context, connString string, opts *Options) (*Feed, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Channel == "" {
		o.Channel = DefaultChannel
	}
	if !channelRE.MatchString(o.Channel) {
		return nil, fmt.Errorf("%w: Channel %q must match [a-z_][a-z0-9_]* (at most 63 bytes)", ErrInvalidOptions, o.Channel)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ReconnectDelay <= 0 {
		o.ReconnectDelay = 100 * time.Millisecond
	}
	if o.MaxReconnectDelay <= 0 {
		o.MaxReconnectDelay = 5 * time.Second
	}
	if o.KeepAlive <= 0 {
		o.KeepAlive = 5 * time.Second
	}
	if o.PublishTimeout <= 0 {
		o.PublishTimeout = 2 * time.Second
	}
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		return nil, fmt.Errorf("%w: connection string: %w", ErrInvalidOptions, err)
	}
	d := &net.Dialer{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: o.KeepAlive, Interval: o.KeepAlive, Count: 3}}
	cfg.DialFunc = d.DialContext
	f := &Feed{cfg: cfg, opts: o, done: make(chan struct{})}
	conn, err := f.listen(ctx)
	if err != nil {
		return nil, err
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	go f.loop(loopCtx, conn)
	return f, nil
}

// listen opens a connection and LISTENs on the channel.
func (f *Feed) listen(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, f.cfg)
	if err != nil {
		return nil, fmt.Errorf("mcpauth/pgnotify: connect: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+f.opts.Channel); err != nil {
		_ = conn.Close(context.Background())
		return nil, fmt.Errorf("mcpauth/pgnotify: listen: %w", err)
	}
	return conn, nil
}

// loop delivers notifications, and reconnects when the connection breaks.
func (f *Feed) loop(ctx context.Context, conn *pgx.Conn) {
	defer close(f.done)
	l := feedloop.Loop[*pgx.Conn]{
		Name: "mcpauth/pgnotify", Channel: f.opts.Channel, Again: "listening", Logger: f.opts.Logger,
		Delay: f.opts.ReconnectDelay, MaxDelay: f.opts.MaxReconnectDelay,
		Dial: func(ctx context.Context, delay time.Duration) (*pgx.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, max(delay, time.Second))
			defer cancel()
			return f.listen(ctx)
		},
		Receive: f.receive,
		Close:   func(c *pgx.Conn) { _ = c.Close(context.Background()) },
		Lost:    func() { f.subs.Deliver(store.Change{Lost: true}) },
	}
	l.Run(ctx, conn)
}

// receive delivers notifications until the connection fails.
func (f *Feed) receive(ctx context.Context, conn *pgx.Conn) error {
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if c, err := store.ParseChange(n.Payload); err == nil {
			f.subs.Deliver(c)
		}
	}
}

// Subscribe implements store.ChangeSubscriber. fn runs on the Feed's
// listening goroutine.
func (f *Feed) Subscribe(fn func(store.Change)) func() { return f.subs.Subscribe(fn) }

// PublishChange implements store.ChangePublisher with one
// SELECT pg_notify(channel, payload) per payload, on the Feed's publishing
// connection (opened on first use, reopened after a failure). PostgreSQL
// delivers it to every listener, this Feed's included.
func (f *Feed) PublishChange(ctx context.Context, c store.Change) error {
	payloads, err := c.Encode()
	if err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.opts.PublishTimeout)
		defer cancel()
	}
	f.pubMu.Lock()
	defer f.pubMu.Unlock()
	if f.pub == nil {
		if f.pub, err = pgx.ConnectConfig(ctx, f.cfg); err != nil {
			f.pub = nil
			return fmt.Errorf("mcpauth/pgnotify: publish: connect: %w", err)
		}
	}
	for _, p := range payloads {
		if _, err := f.pub.Exec(ctx, "SELECT pg_notify($1, $2)", f.opts.Channel, p); err != nil {
			_ = f.pub.Close(context.Background())
			f.pub = nil
			return fmt.Errorf("mcpauth/pgnotify: publish: %w", err)
		}
	}
	return nil
}

// Close stops listening and closes both connections; it waits for the
// listening goroutine or ctx.
func (f *Feed) Close(ctx context.Context) error {
	f.cancel()
	select {
	case <-f.done:
	case <-ctx.Done():
		return fmt.Errorf("mcpauth/pgnotify: close: %w", ctx.Err())
	}
	f.pubMu.Lock()
	defer f.pubMu.Unlock()
	if f.pub != nil {
		err := f.pub.Close(ctx)
		f.pub = nil
		return err
	}
	return nil
}
