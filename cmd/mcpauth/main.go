// Command mcpauth is the operator CLI of an mcpauth deployment: it creates
// and upgrades the tables, issues, lists, rotates and revokes API keys, and
// reads, exports and verifies the audit log, on a SQLite file or a
// PostgreSQL database. Run "mcpauth --help" for the commands; docs/cli.md
// has the details.
package main

import (
	"context"
	"crypto/rand"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK        = 0 // success
	exitFailure   = 1 // runtime failure: database unreachable, store error, ...
	exitUsage     = 2 // bad command line or configuration: unknown flag, missing or invalid value
	exitNotFound  = 3 // the key named does not exist
	exitTampered  = 4 // audit verify found the hash chain broken
	defaultDBFile = "mcpauth.db"
)

// deps are what tests replace to make output deterministic.
type deps struct {
	now   func() time.Time
	rand  io.Reader
	sleep func(ctx context.Context, d time.Duration) error
}

// run is the whole program: it parses args (without the program name),
// writes to stdout and stderr, reads the environment through env, and
// returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) string) int {
	return runWith(ctx, args, stdout, stderr, env, deps{now: time.Now, rand: rand.Reader, sleep: sleepCtx})
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
