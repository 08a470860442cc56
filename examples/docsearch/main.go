// Command docsearch is the AI document assistant of the write-up mcpauth
// started from ("Real Example: AI-Powered Document Search"), end to end: a
// host app with users, sessions and documents; an MCP server over the
// documents behind mcpauth's Require; an AI Assistant page whose backend
// calls that MCP server with a read-only key of the signed-in user; an API
// keys page for the user's own agents; and an Activity page from the audit
// log.
//
//	go run ./examples/docsearch
//
// SQLite (docsearch.db) by default; -db postgres://... for PostgreSQL.
// Without DOCSEARCH_MODEL the assistant answers with an embedded extractive
// answerer (offline); with it, through any OpenAI-compatible Chat
// Completions server (OPENAI_BASE_URL, OPENAI_API_KEY). See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mcpauth/mcpauth/mcpauth/apikey"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	dbSpec := flag.String("db", "docsearch.db", "database: a SQLite file or a postgres:// URL")
	demo := flag.Bool("demo", true, "create the demo users (with new passwords, printed) and their documents")
	secure := flag.Bool("secure-cookies", false, "mark the session cookie Secure (when served over HTTPS)")
	publicURL := flag.String("public-url", "", "the URL users and agents reach the app at (default http://<addr>)")
	flag.Parse()
	if err := run(*addr, *dbSpec, *publicURL, *demo, *secure, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(addr, dbSpec, publicURL string, demo, secure bool, out io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))

	var peppers []apikey.Pepper
	if v := os.Getenv("MCPAUTH_PEPPER"); v != "" {
		p, err := apikey.ParsePepper(v)
		if err != nil {
			return fmt.Errorf("MCPAUTH_PEPPER: %w", err)
		}
		peppers = append(peppers, p)
	}
	secret, err := parseSecret(os.Getenv("DOCSEARCH_SECRET"))
	if err != nil {
		return err
	}
	var answerer Answerer = extractive{}
	if m := modelFromEnv(); m.Model != "" {
		answerer = newChatCompletions(m, nil, logger)
	}

	db, err := openDatabase(ctx, dbSpec)
	if err != nil {
		return err
	}
	defer db.close()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%w (use -addr to pick another address)", err)
	}
	defer ln.Close()
	if publicURL == "" {
		publicURL = "http://" + ln.Addr().String()
	}
	a, err := newApp(config{db: db, baseURL: publicURL, peppers: peppers, secret: secret, answerer: answerer, secureCookies: secure, log: logger})
	if err != nil {
		return err
	}
	var seeded []demoUser
	if demo {
		if seeded, err = seedDemo(ctx, a.users, a.docs, time.Now()); err != nil {
			return errors.Join(err, a.close(context.Background()))
		}
	}
	printWelcome(out, publicURL, dbSpec, answerer, seeded, os.Getenv("DOCSEARCH_SECRET") == "")

	srv := &http.Server{Handler: a.handler, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return errors.Join(err, srv.Shutdown(shutdown), a.close(shutdown))
}

func printWelcome(out io.Writer, base, dbSpec string, answerer Answerer, seeded []demoUser, randomSecret bool) {
	fmt.Fprintf(out, "DocSearch: the AI document assistant on %s (MCP server: %s/mcp)\n", base, base)
	if strings.HasPrefix(dbSpec, "postgres://") || strings.HasPrefix(dbSpec, "postgresql://") {
		dbSpec = "PostgreSQL" // the URL may hold a password
	}
	fmt.Fprintf(out, "Database: %s. Answers: %s.\n", dbSpec, answerer.Name())
	if len(seeded) > 0 {
		fmt.Fprintln(out, "\nDemo users (passwords are new on every start):")
		for _, u := range seeded {
			state := ""
			if !u.Active {
				state = "   (deactivated: cannot sign in, its keys are refused)"
			}
			fmt.Fprintf(out, "  %-20s %s%s\n", u.Email, u.Password, state)
		}
	}
	if randomSecret {
		fmt.Fprintln(out, "\nDOCSEARCH_SECRET is not set: assistant keys are sealed with a secret of this run only\n(they are replaced after a restart). Set it to 32 random bytes, base64: openssl rand -base64 32")
	}
	fmt.Fprintln(out, "\nPress Ctrl-C to stop.")
}
