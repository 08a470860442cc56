package fleet

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/redis/go-redis/v9"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/audit/sqlaudit"
	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/ratelimit"
	"github.com/mcpauth/mcpauth/ratelimit/redislimit"
	"github.com/mcpauth/mcpauth/store"
	"github.com/mcpauth/mcpauth/store/redisnotify"
	"github.com/mcpauth/mcpauth/store/sqlstore"
	"github.com/mcpauth/mcpauth/store/sqlstore/pgnotify"
)

// The environment of an instance process (the test binary re-executed).
const (
	envRole     = "MCPAUTH_FLEET_ROLE" // "instance"
	envName     = "MCPAUTH_FLEET_INSTANCE"
	envPrefix   = "MCPAUTH_FLEET_PREFIX" // table and Redis key prefix of the run
	envFeed     = "MCPAUTH_FLEET_FEED"   // "pg", "redis" or "none"
	envLimiter  = "MCPAUTH_FLEET_LIMITER_REDIS"
	envBudget   = "MCPAUTH_FLEET_BUDGET" // burst of the per-key limit, per hour
	envFallback = "MCPAUTH_FLEET_FALLBACK_INSTANCES"
	// envLimiterTimeout overrides redislimit.Options.Timeout (default 100 ms).
	envLimiterTimeout = "MCPAUTH_FLEET_LIMITER_TIMEOUT"
)

var pepper = apikey.Pepper{Version: 1, Secret: []byte("fleet harness pepper, not a secret")}

// ConfigurePool applies the documented pool settings (store/sqlstore's
// package doc): keep as many idle connections as open ones, so that bursts
// do not open new sessions.
func configurePool(db *sql.DB) {
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(20)
	db.SetConnMaxIdleTime(5 * time.Minute)
	db.SetConnMaxLifetime(30 * time.Minute)
}

// openChangeFeed opens the feed named by kind: pgnotify, redisnotify, or
// none (nil).
func openChangeFeed(ctx context.Context, kind, channel string, log *slog.Logger) (store.ChangeFeed, func(), error) {
	switch kind {
	case "pg":
		f, err := pgnotify.New(ctx, os.Getenv("MCPAUTH_TEST_POSTGRES_DSN"), &pgnotify.Options{Channel: channel, Logger: log})
		if err != nil {
			return nil, nil, err
		}
		return f, func() { _ = f.Close(context.Background()) }, nil
	case "redis":
		c := redis.NewClient(&redis.Options{Addr: os.Getenv("MCPAUTH_TEST_REDIS_ADDR")})
		f, err := redisnotify.New(ctx, c, &redisnotify.Options{Channel: channel, Logger: log})
		if err != nil {
			return nil, nil, err
		}
		return f, func() { _ = f.Close(context.Background()); _ = c.Close() }, nil
	}
	return nil, func() {}, nil
}

// runInstance is one server process: a Guard over the shared PostgreSQL
// keys (the SQL store, default cache and poll), the shared audit chain, the
// Redis limiter and the change feed, in front of a handler that answers
// 200. It prints "ADDR <host:port>" on stdout and serves until stdin
// closes, then shuts down cleanly (audit flushed).
func runInstance() error {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	prefix, name := os.Getenv(envPrefix), os.Getenv(envName)
	db, err := sql.Open("pgx", os.Getenv("MCPAUTH_TEST_POSTGRES_DSN"))
	if err != nil {
		return err
	}
	defer db.Close()
	configurePool(db)
	keys, err := sqlstore.New(db, &sqlstore.Options{Dialect: sqlstore.Postgres, TablePrefix: prefix})
	if err != nil {
		return err
	}
	events, err := sqlaudit.New(db, &sqlaudit.Options{Dialect: sqlstore.Postgres, TablePrefix: prefix, Chain: true})
	if err != nil {
		return err
	}
	w, err := audit.NewWriter(events, &audit.WriterOptions{Mode: audit.Blocking, Logger: log})
	if err != nil {
		return err
	}
	feed, closeFeed, err := openChangeFeed(ctx, os.Getenv(envFeed), prefix+"changes", log)
	if err != nil {
		return err
	}
	defer closeFeed()
	rc := redis.NewClient(&redis.Options{Addr: os.Getenv(envLimiter), MaxRetries: 3, DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond})
	defer rc.Close()
	lopts := &redislimit.Options{Prefix: prefix + "rl:", Logger: log, ProbeInterval: 200 * time.Millisecond}
	if d, err := time.ParseDuration(os.Getenv(envLimiterTimeout)); err == nil {
		lopts.Timeout = d
	}
	if n, _ := strconv.Atoi(os.Getenv(envFallback)); n > 0 {
		lopts.OnUnavailable, lopts.Instances = redislimit.FallbackLocal, n
	}
	limiter, err := redislimit.New(rc, lopts)
	if err != nil {
		return err
	}
	budget, _ := strconv.Atoi(os.Getenv(envBudget))
	opts := &mcpauth.Options{
		Peppers: []apikey.Pepper{pepper}, Instance: name, Audit: w, Logger: log, RateLimiter: limiter,
		RatePolicy: &ratelimit.Policy{Default: ratelimit.Limit{Name: "fleet", Rate: budget, Per: time.Hour}},
	}
	if feed != nil {
		opts.Changes = feed
	}
	g, err := mcpauth.New(keys, opts)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: g.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
	})), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	fmt.Printf("ADDR %s\n", ln.Addr())
	_, _ = io.Copy(io.Discard, bufio.NewReader(os.Stdin)) // until the harness closes stdin
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if err := g.Close(sctx); err != nil {
		return err
	}
	if err := w.Close(sctx); err != nil {
		return err
	}
	return limiter.Close(sctx)
}
