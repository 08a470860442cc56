package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL driver "pgx"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	_ "modernc.org/sqlite" // SQLite driver "sqlite"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/audit/sqlaudit"
	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/mcpauth/gosdk"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/ratelimit"
	"github.com/mcpauth/mcpauth/scope"
	"github.com/mcpauth/mcpauth/store"
	"github.com/mcpauth/mcpauth/store/sqlstore"
)

// ballast is heap both servers carry, so that the garbage collector runs
// as often in each (the go-sdk allocates a lot per call).
var ballast []byte

type echoIn struct {
	Text string `json:"text"`
}

type echoOut struct {
	Text string `json:"text"`
}

func echo(_ context.Context, _ *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, echoOut, error) {
	return nil, echoOut(in), nil
}

// runServer serves one MCP server on a loopback port until its stdin
// closes; the first line it prints is "URL <url>" (and "KEY <key>" for the
// protected server).
func runServer(kind string, stateful bool, auditTo, dsn string, ballastMiB int) error {
	ballast = make([]byte, ballastMiB<<20)
	server := mcp.NewServer(&mcp.Implementation{Name: "bench", Version: "1.0.0"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "echo", Description: "Returns its text."}, echo)
	var handler http.Handler
	var key string
	var cleanup func(context.Context) error
	switch kind {
	case "bare":
		handler = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, &mcp.StreamableHTTPOptions{Stateless: !stateful})
		cleanup = func(context.Context) error { return nil }
	case "protected":
		var err error
		handler, key, cleanup, err = protect(server, stateful, auditTo, dsn)
		if err != nil {
			return err
		}
	default:
		return fmt.Errorf("-serve %q: want bare or protected", kind)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/mcp", handler)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	line := "URL http://" + ln.Addr().String() + "/mcp"
	if key != "" {
		line += " KEY " + key
	}
	fmt.Println(line)
	_, _ = io.Copy(io.Discard, os.Stdin) // until the load generator is done
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	runtime.KeepAlive(ballast)
	return errors.Join(srv.Shutdown(ctx), cleanup(ctx))
}

// protect puts server behind mcpauth as a production deployment would:
// API key (memory store; the warm path never reads it), a per-tool policy,
// the in-memory rate limiter, hash-chained SQL audit through a Writer in
// Blocking mode (no event lost: a slow database slows the server down).
func protect(server *mcp.Server, stateful bool, auditTo, dsn string) (http.Handler, string, func(context.Context) error, error) {
	ctx := context.Background()
	policy, err := scope.NewPolicy(scope.PolicyConfig{Tools: []scope.Rule{{Match: "echo", Scopes: []string{"tools:echo"}}}})
	if err != nil {
		return nil, "", nil, err
	}
	var sink audit.Sink
	var closeDB func() error = func() error { return nil }
	switch auditTo {
	case "none":
	case "sqlite", "postgres":
		driver, dialect, src := "sqlite", sqlstore.SQLite, ""
		if auditTo == "postgres" {
			if dsn == "" {
				return nil, "", nil, errors.New("-audit postgres needs -dsn (or MCPAUTH_TEST_POSTGRES_DSN)")
			}
			driver, dialect, src = "pgx", sqlstore.Postgres, dsn
		} else {
			dir, err := os.MkdirTemp("", "mcpbench")
			if err != nil {
				return nil, "", nil, err
			}
			src = "file:" + filepath.Join(dir, "audit.db") + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
			prev := closeDB
			closeDB = func() error { err := prev(); _ = os.RemoveAll(dir); return err }
		}
		db, err := sql.Open(driver, src)
		if err != nil {
			return nil, "", nil, err
		}
		prev := closeDB
		closeDB = func() error { return errors.Join(db.Close(), prev()) }
		s, err := sqlaudit.New(db, &sqlaudit.Options{Dialect: dialect, Chain: true, TablePrefix: "bench" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36) + "_"})
		if err != nil {
			return nil, "", nil, errors.Join(err, closeDB())
		}
		// The tables are the run's own: dropped when it ends (with the
		// temporary SQLite file, or from the PostgreSQL database).
		closeTables := func() error {
			var errs []error
			for _, t := range append(s.Tables(), s.MigrationsTable()) {
				if _, err := db.ExecContext(context.Background(), "DROP TABLE IF EXISTS "+t); err != nil {
					errs = append(errs, err)
				}
			}
			return errors.Join(errs...)
		}
		closeWithDB := closeDB
		closeDB = func() error { return errors.Join(closeTables(), closeWithDB()) }
		if err := s.Migrate(ctx); err != nil {
			return nil, "", nil, errors.Join(err, closeDB())
		}
		sink = s
	default:
		return nil, "", nil, fmt.Errorf("-audit %q: want sqlite, postgres or none", auditTo)
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	peppers := []apikey.Pepper{{Version: 1, Secret: secret}}
	keys := store.NewMemory()
	limiter := ratelimit.NewMemory(nil)
	opts := &mcpauth.Options{
		Peppers:     peppers,
		Policy:      policy,
		RateLimiter: limiter,
		RatePolicy:  &ratelimit.Policy{Default: ratelimit.Limit{Name: "default", Rate: 1 << 30, Per: time.Minute}},
	}
	var w *audit.Writer
	if sink != nil {
		if w, err = audit.NewWriter(sink, &audit.WriterOptions{Mode: audit.Blocking, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}); err != nil {
			return nil, "", nil, err
		}
		opts.Audit = w
	}
	closeMetrics, err := setMetrics(opts, w)
	if err != nil {
		return nil, "", nil, err
	}
	guard, err := mcpauth.New(keys, opts)
	if err != nil {
		return nil, "", nil, err
	}
	mgr, err := keyadmin.New(keys, &keyadmin.Options{Peppers: peppers, OnChange: guard.Forget})
	if err != nil {
		return nil, "", nil, err
	}
	k, err := mgr.Create(ctx, "bench-user", keyadmin.CreateOptions{Scopes: []string{"tools:echo"}})
	if err != nil {
		return nil, "", nil, err
	}
	server.AddReceivingMiddleware(gosdk.Middleware(policy))
	mcpHandler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, &mcp.StreamableHTTPOptions{Stateless: !stateful})
	cleanup := func(ctx context.Context) error {
		err := errors.Join(mgr.Close(ctx), guard.Close(ctx), limiter.Close(ctx), closeMetrics(ctx))
		if w != nil {
			st := w.Stats()
			fmt.Fprintf(os.Stderr, "mcpbench: protected server audit: written %d, dropped %d, failed %d\n", st.Written, st.Dropped, st.Failed)
			err = errors.Join(err, w.Close(ctx))
		}
		return errors.Join(err, closeDB())
	}
	return guard.Require(gosdk.Bridge(mcpHandler)), k.Raw, cleanup, nil
}
