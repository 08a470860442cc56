// Command protected puts the go-sdk's conformance everything-server behind
// mcpauth, for the MCP conformance suite (.ci/conformance.sh, see
// docs/conformance.md):
//
//	conformance client ─▶ inject Authorization ─▶ Guard.Require ─▶ reverse proxy ─▶ everything-server
//
// It starts the everything-server binary (-server) as a child on a loopback
// port, creates a key in a memory store at start, and serves a Guard with a
// policy allowing every tool, resource, prompt and completion of that
// server (each kind needs its own scope, which the key holds) and the
// quickstart's rate limit (the default ratelimit.Policy, 100 requests per
// minute per key, in a memory limiter). The conformance CLI cannot send an
// Authorization header, so the first handler sets it to the key on every
// request; everything after it is the request path a real client meets.
//
// It prints "URL <url>" on stdout once it serves, and stops (with its
// child) on SIGINT or SIGTERM. It is a test fixture: it listens on
// loopback only and the key never leaves the process.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/ratelimit"
	"github.com/mcpauth/mcpauth/scope"
	"github.com/mcpauth/mcpauth/store"
)

func main() {
	server := flag.String("server", "", "path to the everything-server binary (required)")
	stateless := flag.Bool("stateless", true, "run the everything-server in stateless mode")
	addr := flag.String("addr", "127.0.0.1:0", "listen address (loopback)")
	flag.Parse()
	if *server == "" {
		log.Fatal("protected: -server is required")
	}
	if err := run(*server, *stateless, *addr); err != nil {
		log.Fatal("protected: ", err)
	}
}

// policy allows every tool, resource, prompt and completion, each kind
// with its own scope: the everything-server's names change between SDK
// releases, and the point of the run is that mcpauth changes nothing a
// permitted client sees.
func policy() (*scope.Policy, error) {
	return scope.NewPolicy(scope.PolicyConfig{
		Tools:       []scope.Rule{{Match: "*", Scopes: []string{"conformance:tools"}}},
		Resources:   []scope.Rule{{Match: "*", Scopes: []string{"conformance:resources"}}},
		Prompts:     []scope.Rule{{Match: "*", Scopes: []string{"conformance:prompts"}}},
		Completions: []scope.Rule{{Match: "*", Scopes: []string{"conformance:prompts"}}},
	})
}

func run(server string, stateless bool, addr string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	backend, err := freeLoopbackAddr()
	if err != nil {
		return err
	}
	child := exec.Command(server, "-http", backend, "-stateless="+strconv.FormatBool(stateless))
	child.Stdout, child.Stderr = os.Stderr, os.Stderr
	if err := child.Start(); err != nil {
		return err
	}
	defer func() {
		_ = child.Process.Signal(syscall.SIGTERM)
		_ = child.Wait()
	}()
	if err := waitListening(backend, 10*time.Second); err != nil {
		return err
	}

	p, err := policy()
	if err != nil {
		return err
	}
	limiter := ratelimit.NewMemory(nil)
	keys := store.NewMemory()
	guard, err := mcpauth.New(keys, &mcpauth.Options{Policy: p, RateLimiter: limiter})
	if err != nil {
		return err
	}
	mgr, err := keyadmin.New(keys, &keyadmin.Options{OnChange: guard.Forget})
	if err != nil {
		return err
	}
	key, err := mgr.Create(ctx, "conformance", keyadmin.CreateOptions{
		Name:      "conformance suite",
		Scopes:    []string{"conformance:tools", "conformance:resources", "conformance:prompts"},
		ExpiresIn: 24 * time.Hour,
	})
	if err != nil {
		return err
	}

	target := &url.URL{Scheme: "http", Host: backend}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			// Keep the client's Host: the everything-server's DNS-rebinding
			// check must see what the conformance client sent.
			r.Out.Host = r.In.Host
		},
		FlushInterval: -1, // SSE: pass every event on at once
	}
	inject := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+key.Raw)
			next.ServeHTTP(w, r)
		})
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: inject(guard.Require(proxy)), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Printf("URL http://%s/\n", ln.Addr())

	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Streams (GET SSE) stay open until the client goes: do not wait for them.
	_ = srv.Close()
	return errors.Join(err, guard.Close(shutdown), limiter.Close(shutdown))
}

// freeLoopbackAddr returns a loopback address whose port was free a moment ago.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	a := ln.Addr().String()
	return a, ln.Close()
}

func waitListening(addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("everything-server did not listen on %s within %s: %w", addr, within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
