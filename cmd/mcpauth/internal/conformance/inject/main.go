// Command inject is a test fixture of .ci/conformance.sh: the MCP
// conformance suite cannot send an Authorization header, so this reverse
// proxy adds "Authorization: Bearer $MCPAUTH_CONFORMANCE_KEY" to every
// request and passes it to the gateway (-target), keeping the client's
// Host and Origin (the gateway's DNS-rebinding check must see what the
// suite sent). Everything after it is the request path a real client
// meets. It listens on loopback only, prints "URL <url>" once it serves,
// and stops on SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// transport opens a connection per request to the gateway (see the
// keep-alive note in main).
var transport = func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DisableKeepAlives = true
	return t
}()

func main() {
	target := flag.String("target", "", "gateway base URL, e.g. http://127.0.0.1:8080 (required)")
	path := flag.String("path", "/mcp", "MCP path, printed in the URL line")
	flag.Parse()
	key := os.Getenv("MCPAUTH_CONFORMANCE_KEY")
	if *target == "" || key == "" {
		log.Fatal("inject: -target and $MCPAUTH_CONFORMANCE_KEY are required")
	}
	t, err := url.Parse(*target)
	if err != nil {
		log.Fatal("inject: ", err)
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(t)
			r.Out.Host = r.In.Host
			r.Out.Header.Set("Authorization", "Bearer "+key)
		},
		FlushInterval: -1,
		Transport:     transport,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal("inject: ", err)
	}
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	// One request per client connection too: with keep-alive, about one
	// session in 40 of the TypeScript SDK client (which aborts all of a
	// transport's fetches, finished ones included, on close) lost a request
	// on a reused socket behind this proxy; straight to the gateway, 60 of
	// 60 passed. Closing each connection takes the fixture out of the result.
	srv.SetKeepAlivesEnabled(false)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); _ = srv.Close() }()
	fmt.Printf("URL http://%s%s\n", ln.Addr(), *path)
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		log.Fatal("inject: ", err)
	}
}
