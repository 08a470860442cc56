package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os/user"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcpauth/mcpauth/store"
	"github.com/mcpauth/mcpauth/store/redisnotify"
	"github.com/mcpauth/mcpauth/store/sqlstore/pgnotify"
)

// The environment that names the CLI in the audit trail and chooses where
// it announces key changes (docs/cli.md).
const (
	// envActor overrides the actor of the CLI's key changes; default
	// "cli:<OS user>".
	envActor = "MCPAUTH_ACTOR"
	// envInstance overrides the instance name of its audit events; default
	// audit.DefaultInstance() (host name and process ID).
	envInstance = "MCPAUTH_INSTANCE"
	// envChannel is the channel the servers listen on, on PostgreSQL
	// LISTEN/NOTIFY (pgnotify.Options.Channel) and on Redis pub/sub
	// (redisnotify.Options.Channel); default each feed's DefaultChannel.
	// "off" publishes nothing: servers then see changes at their poll.
	envChannel = "MCPAUTH_CHANGES_CHANNEL"
	// envRedis is a redis:// or rediss:// URL (redis.ParseURL): when set,
	// key changes are also PUBLISHed there, for servers whose feed is
	// store/redisnotify. It may hold a password; it is never printed.
	envRedis = "MCPAUTH_CHANGES_REDIS"
)

// connectTimeout bounds connecting to one change channel, so that an
// unreachable one delays a command by at most that.
const connectTimeout = 2 * time.Second

// actor is who the CLI's key changes are audited as.
func (a *app) actor() string {
	if s := strings.TrimSpace(a.env(envActor)); s != "" {
		return s
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	return "cli"
}

// changePublisher returns what key changes are announced on, so that the
// servers' caches drop a changed key within milliseconds: with a
// PostgreSQL database, NOTIFY on the servers' channel; with
// MCPAUTH_CHANGES_REDIS, a Redis PUBLISH; both when both apply. It is nil
// with neither (a SQLite file without Redis) or with
// MCPAUTH_CHANGES_CHANNEL=off. Channels are connected at the first change,
// so commands that change nothing connect to none.
//
// It never fails a command: a channel that cannot be reached is reported
// once on stderr (without secrets) and the servers' poll still sees the
// change within about a second. A channel name PostgreSQL does not accept
// (such as "app:changes") while MCPAUTH_CHANGES_REDIS is set goes to Redis
// only, silently: no pgnotify server can listen on such a name.
func (a *app) changePublisher() (store.ChangePublisher, func()) {
	channel := strings.TrimSpace(a.env(envChannel))
	if channel == "off" {
		return nil, func() {}
	}
	an := &announcer{ctx: a.ctx, stderr: a.stderr}
	redisURL := strings.TrimSpace(a.env(envRedis))
	if db := strings.TrimSpace(a.g.db); isPostgresURL(db) {
		an.chans = append(an.chans, &announceChannel{
			name:   "PostgreSQL NOTIFY",
			secret: urlPassword(db),
			connect: func(ctx context.Context) (store.ChangePublisher, func(), error) {
				f, err := pgnotify.New(ctx, db, &pgnotify.Options{Channel: channel, Logger: discardLogger()})
				if err != nil {
					if redisURL != "" && errors.Is(err, pgnotify.ErrInvalidOptions) {
						err = errSkipped
					}
					return nil, nil, err
				}
				return f, func() { _ = f.Close(context.Background()) }, nil
			},
		})
	}
	if redisURL != "" {
		an.chans = append(an.chans, redisChannel(redisURL, channel))
	}
	if len(an.chans) == 0 {
		return nil, func() {}
	}
	return an, an.close
}

// redisChannel is the Redis channel of MCPAUTH_CHANGES_REDIS. A URL that
// does not parse is reported without its text, which may hold a password.
func redisChannel(rawURL, channel string) *announceChannel {
	c := &announceChannel{name: "Redis"}
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		c.connect = func(context.Context) (store.ChangePublisher, func(), error) {
			return nil, nil, fmt.Errorf("$%s is not a valid redis:// or rediss:// URL", envRedis)
		}
		return c
	}
	c.name, c.secret = "Redis at "+opts.Addr, opts.Password
	if opts.DialTimeout <= 0 || opts.DialTimeout > connectTimeout {
		opts.DialTimeout = connectTimeout
	}
	c.connect = func(ctx context.Context) (store.ChangePublisher, func(), error) {
		client := redis.NewClient(opts)
		f, err := redisnotify.New(ctx, client, &redisnotify.Options{Channel: channel, Logger: discardLogger()})
		if err != nil {
			_ = client.Close()
			return nil, nil, err
		}
		return f, func() {
			_ = f.Close(context.Background())
			_ = client.Close()
		}, nil
	}
	return c
}

// errSkipped: a channel that is not used, and not worth a warning.
var errSkipped = errors.New("skipped")

// announcer is a store.ChangePublisher that publishes every change on each
// of its channels, connecting each at the first change. A channel that
// fails (to connect or to publish) is reported once on stderr and then left
// alone. It is safe for concurrent use.
type announcer struct {
	ctx    context.Context
	stderr io.Writer

	mu    sync.Mutex
	chans []*announceChannel
}

// announceChannel is one channel of an announcer.
type announceChannel struct {
	name    string // for messages: never a URL's user info
	secret  string // the password of its URL, scrubbed from messages
	connect func(ctx context.Context) (store.ChangePublisher, func(), error)

	pub    store.ChangePublisher // nil until connected
	close  func()
	failed bool // reported: publish nothing more
}

var _ store.ChangePublisher = (*announcer)(nil)

// PublishChange implements store.ChangePublisher. It returns the errors of
// the channels that failed; the change still went out on the others.
func (an *announcer) PublishChange(ctx context.Context, c store.Change) error {
	an.mu.Lock()
	defer an.mu.Unlock()
	var errs []error
	for _, ch := range an.chans {
		if ch.failed {
			continue
		}
		if ch.pub == nil {
			cctx, cancel := context.WithTimeout(an.ctx, connectTimeout)
			pub, closeFn, err := ch.connect(cctx)
			cancel()
			if err != nil {
				an.fail(ch, err)
				errs = append(errs, err)
				continue
			}
			ch.pub, ch.close = pub, closeFn
		}
		if err := ch.pub.PublishChange(ctx, c); err != nil {
			an.fail(ch, err)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// fail reports ch's first failure on stderr, unless it was skipped.
func (an *announcer) fail(ch *announceChannel, err error) {
	ch.failed = true
	if errors.Is(err, errSkipped) {
		return
	}
	msg := err.Error()
	if ch.secret != "" {
		msg = strings.ReplaceAll(msg, ch.secret, "…")
	}
	fmt.Fprintf(an.stderr, "warning: key changes are not announced on %s: %s; servers see them at their next poll (about 1s)\n", ch.name, msg)
}

// close closes the channels that were connected.
func (an *announcer) close() {
	an.mu.Lock()
	defer an.mu.Unlock()
	for _, ch := range an.chans {
		if ch.close != nil {
			ch.close()
			ch.close, ch.pub = nil, nil
		}
	}
}

// urlPassword is the password in a URL's user info, or "" (also for a
// string that does not parse).
func urlPassword(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return ""
	}
	p, _ := u.User.Password()
	return p
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
