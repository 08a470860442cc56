// Command metrics runs an MCP server protected by mcpauth with its metrics
// on a Prometheus endpoint of its own port:
//
//	go run ./examples/metrics
//	curl -s 127.0.0.1:9464/metrics | grep mcpauth_
//
// The Guard reports through module otelmetrics to an OpenTelemetry
// MeterProvider whose reader is the Prometheus exporter; promhttp serves
// the exporter's registry. Keys live in memory, hashed without a
// pepper (see the quickstart for one): a demo key is printed on start. The MCP endpoint is /mcp on -addr; /metrics is on -metrics-addr
// only, so that it is not exposed where clients connect.
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
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/gosdk"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/mcpauth/otelmetrics"
	"github.com/mcpauth/mcpauth/ratelimit"
	"github.com/mcpauth/mcpauth/scope"
	"github.com/mcpauth/mcpauth/store"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "MCP listen address")
	metricsAddr := flag.String("metrics-addr", "127.0.0.1:9464", "Prometheus /metrics listen address")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, *metricsAddr, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, addr, metricsAddr string, out io.Writer) error {
	mcpLn, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	metricsLn, err := net.Listen("tcp", metricsAddr)
	if err != nil {
		_ = mcpLn.Close()
		return err
	}
	s, err := start(mcpLn, metricsLn)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "MCP server on http://%s/mcp, metrics on http://%s/metrics\nDemo API key (scope echo): %s\n",
		mcpLn.Addr(), metricsLn.Addr(), s.key)
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.close(shutdown)
}

// server is the running example: the MCP and metrics servers, and what
// must be closed after them.
type server struct {
	key     string // the demo key
	closers []func(context.Context) error
}

// close stops the servers, then the Guard, the audit Writer and the
// metrics, in that order.
func (s *server) close(ctx context.Context) error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i](ctx))
	}
	return errors.Join(errs...)
}

// policy lets a key with scope "echo" call the echo tool; other tools are
// refused.
var policy = func() *scope.Policy {
	p, err := scope.NewPolicy(scope.PolicyConfig{Tools: []scope.Rule{{Match: "echo", Scopes: []string{"echo"}}}})
	if err != nil {
		panic(err) // a constant policy
	}
	return p
}()

// start serves MCP on mcpLn and /metrics on metricsLn.
func start(mcpLn, metricsLn net.Listener) (*server, error) {
	s := &server{}
	fail := func(err error) (*server, error) {
		_ = s.close(context.Background())
		_ = mcpLn.Close()
		_ = metricsLn.Close()
		return nil, err
	}

	// Metrics: OpenTelemetry SDK, read by the Prometheus exporter into a
	// registry of its own, which promhttp serves.
	registry := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(registry))
	if err != nil {
		return fail(err)
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	s.closers = append(s.closers, provider.Shutdown)
	metrics, err := otelmetrics.New(provider)
	if err != nil {
		return fail(err)
	}

	events, err := audit.NewWriter(audit.NewSlogSink(slog.Default()), nil)
	if err != nil {
		return fail(err)
	}
	s.closers = append(s.closers, events.Close)
	reg, err := otelmetrics.ObserveAudit(provider, events)
	if err != nil {
		return fail(err)
	}
	s.closers = append(s.closers, func(context.Context) error { return reg.Unregister() })

	keys := store.NewMemory()
	limiter := ratelimit.NewMemory(nil)
	s.closers = append(s.closers, limiter.Close)
	guard, err := mcpauth.New(keys, &mcpauth.Options{
		Policy: policy, RateLimiter: limiter, Audit: events, Metrics: metrics,
		RatePolicy: &ratelimit.Policy{Default: ratelimit.Limit{Name: "default", Rate: 100, Per: time.Minute}},
	})
	if err != nil {
		return fail(err)
	}
	s.closers = append(s.closers, guard.Close)
	mgr, err := keyadmin.New(keys, &keyadmin.Options{OnChange: guard.Forget})
	if err != nil {
		return fail(err)
	}
	s.closers = append(s.closers, mgr.Close)
	k, err := mgr.Create(context.Background(), "demo-user", keyadmin.CreateOptions{Name: "metrics demo", Scopes: []string{"echo"}})
	if err != nil {
		return fail(err)
	}
	s.key = k.Raw

	mcpServer := mcp.NewServer(&mcp.Implementation{Name: "metrics-example", Version: "1"}, nil)
	mcp.AddTool(mcpServer, &mcp.Tool{Name: "echo", Description: "Returns its text."},
		func(_ context.Context, _ *mcp.CallToolRequest, in struct {
			Text string `json:"text"`
		}) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
		})
	mcpHandler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return mcpServer },
		&mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true})
	mux := http.NewServeMux()
	mux.Handle("/mcp", guard.Require(gosdk.Bridge(mcpHandler)))

	metricsMux := http.NewServeMux()
	metricsMux.Handle("/metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))

	for _, srv := range []struct {
		ln net.Listener
		h  http.Handler
	}{{mcpLn, mux}, {metricsLn, metricsMux}} {
		hs := &http.Server{Handler: srv.h, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = hs.Serve(srv.ln) }()
		s.closers = append(s.closers, hs.Shutdown)
	}
	return s, nil
}
