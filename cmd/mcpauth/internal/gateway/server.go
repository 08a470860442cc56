package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/store"
)

// Deps are what the gateway is given rather than opens itself.
type Deps struct {
	// Keys is the key store (required).
	Keys store.KeyLookup
	// AuditSink receives events when audit.sink is "database" (the CLI
	// passes the keys database's sqlaudit store). Required then.
	AuditSink audit.Sink
	// Stdout receives JSON-lines events when audit.sink is "stdout"
	// (the CLI passes its stdout); nil with "stdout" makes New fail.
	Stdout io.Writer
	// Logger is the gateway's log. Default slog.Default().
	Logger *slog.Logger
	// Getenv reads the environment (peppers, the OAuth client secret, the
	// Redis URL of rate_limit.redis_url_env). Default: none set.
	Getenv func(string) string
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// upstream is what serves authenticated MCP requests.
type upstream interface {
	http.Handler
	ready(ctx context.Context) error
	Close(ctx context.Context) error
}

// Server is a running gateway's state. Create it with New, serve it with
// Serve (or mount Handler), change its policy and limits with Reload, and
// stop it with Shutdown. Safe for concurrent use.
type Server struct {
	deps    Deps
	log     *slog.Logger
	peppers []apikey.Pepper
	limiter *limiter      // one for all generations
	audit   *audit.Writer // nil: audit off
	up      upstream
	streams *streamSet
	hosts   hostCheck
	handler http.Handler

	reloadMu sync.Mutex // serialises Reload; guards cfg
	cfg      *Config
	gen      atomic.Pointer[generation]
	draining atomic.Bool
	calls    sync.WaitGroup // MCP requests other than GET streams, in flight
}

// New builds a gateway from a validated configuration (Config.Validate).
// It reads the policy file and the peppers and starts the audit writer and
// the rate limiter (pinging Redis, if budgets live there: one that does not
// answer is logged, not an error); it starts no upstream process (stdio
// processes start per session).
func New(cfg *Config, d Deps) (*Server, error) {
	if d.Keys == nil {
		return nil, errors.New("gateway: Deps.Keys is required")
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Getenv == nil {
		d.Getenv = func(string) string { return "" }
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	c := *cfg
	s := &Server{deps: d, log: d.Logger, cfg: &c, streams: &streamSet{}}
	var err error
	if s.peppers, err = c.Peppers(d.Getenv); err != nil {
		return nil, err
	}
	if len(s.peppers) == 0 {
		s.log.Warn("no pepper configured: keys are checked as plain SHA-256; set $" + c.Keys.PepperEnv + " or keys.pepper_file as for \"mcpauth keys create\"")
	}
	if err := s.startAudit(&c); err != nil {
		return nil, err
	}
	if s.limiter, err = newLimiter(c.RateLimit.RateBackend, d.Getenv, s.log); err != nil {
		s.closeBackground(context.Background())
		return nil, err
	}
	g, err := s.newGeneration(&c, nil)
	if err != nil {
		s.closeBackground(context.Background())
		return nil, err
	}
	if c.Upstream.URL != "" {
		s.up, err = newHTTPUpstream(c.Upstream.URL, c.Upstream.PrincipalHeaders, s.streams, s.log)
	} else {
		s.up, err = newStdioUpstream(c.Stdio, d.Getenv, s.streams, s.log, d.Now)
	}
	if err != nil {
		_ = g.guard.Close(context.Background())
		s.closeBackground(context.Background())
		return nil, err
	}
	g.bind(s.up)
	s.gen.Store(g)
	s.hosts = newHostCheck(c.Listen, c.AllowedHosts)
	s.handler = s.routes(&c)
	return s, nil
}

func (s *Server) startAudit(c *Config) error {
	var sink audit.Sink
	switch c.Audit.Sink {
	case "off":
		return nil
	case "database":
		sink = s.deps.AuditSink
	case "stdout":
		if s.deps.Stdout != nil {
			sink = audit.NewJSONSink(s.deps.Stdout)
		}
	}
	if sink == nil {
		return fieldErr("audit.sink", "%s: no sink available", c.Audit.Sink)
	}
	mode := map[string]audit.Mode{"best_effort": audit.BestEffort, "blocking": audit.Blocking, "strict": audit.Strict}[c.Audit.Mode]
	o := &audit.WriterOptions{Mode: mode, Logger: s.log, Now: s.deps.Now}
	if mode == audit.Strict {
		o.MaxRetries, o.RetryBackoff = 1, 50*time.Millisecond
	}
	w, err := audit.NewWriter(sink, o)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	s.audit = w
	return nil
}

func (s *Server) routes(c *Config) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", s.serveHealth)
	mux.HandleFunc("GET /ready", s.serveReady)
	var mcp http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			s.calls.Add(1)
			defer s.calls.Done()
		}
		g := s.acquire()
		defer g.release()
		g.handler.ServeHTTP(w, r)
	})
	if *c.Log.Requests {
		mcp = accessLog(s.log, s.deps.Now, mcp)
	}
	mux.Handle(c.Path, withState(mcp))
	// Mounted with oauth off too: a reload may switch it on. The current
	// Guard's handler answers, from its verifier; without one, 404.
	md := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g := s.acquire()
		defer g.release()
		g.guard.ResourceMetadataHandler().ServeHTTP(w, r)
	})
	for _, p := range metadataPaths {
		mux.Handle(p, md)
	}
	return s.hosts.wrap(mux)
}

// Handler is the gateway's HTTP handler: /health, /ready, the MCP path and
// the protected resource metadata (404 while oauth is off).
func (s *Server) Handler() http.Handler { return s.handler }

// serveHealth is liveness: the process serves. It checks nothing else, so
// that an outage of the database does not get the gateway restarted.
func (s *Server) serveHealth(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = io.WriteString(w, `{"status":"ok"}`+"\n")
}

// streamEndGrace is how long after the last call in flight ends the GET
// streams are ended, on shutdown.
const streamEndGrace = 500 * time.Millisecond

// healthProbeID is a well-formed key ID never issued (the Guard's own
// Health uses it too).
const healthProbeID = "000000health"

// serveReady is readiness: not draining, the key store answers, the
// upstream is reachable (HTTP: accepts a TCP connection) and, while rate
// limits are on with budgets in Redis and fail_closed, Redis answers. The
// reason named on 503 is one word, never an error text.
func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	reason := ""
	if s.draining.Load() {
		reason = "draining"
	} else if _, err := s.deps.Keys.LookupKey(ctx, healthProbeID); err != nil && !errors.Is(err, store.ErrNotFound) {
		reason = "key_store"
	} else if err := s.up.ready(ctx); err != nil {
		reason = "upstream"
	} else if s.gen.Load().limited && s.limiter.ready(ctx) != nil {
		reason = "rate_limiter"
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if reason != "" {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"status":"unavailable","reason":"`+reason+`"}`+"\n")
		return
	}
	_, _ = io.WriteString(w, `{"status":"ready"}`+"\n")
}

// Serve serves on ln until ctx ends, then shuts down gracefully (Shutdown).
// TLS is used when the configuration names a certificate.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	base, hardStop := context.WithCancel(context.Background())
	defer hardStop()
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.reloadMu.Lock()
	c := s.cfg
	s.reloadMu.Unlock()
	if c.TLS.Cert != "" {
		cert, err := tls.LoadX509KeyPair(c.TLS.Cert, c.TLS.Key)
		if err != nil {
			return fieldErr("tls.cert", "%v", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("gateway serving", slog.String("addr", ln.Addr().String()), slog.String("path", c.Path), slog.Bool("tls", c.TLS.Cert != ""))

	var serveErr error
	select {
	case serveErr = <-errc:
	case <-ctx.Done():
	}
	return errors.Join(serveErr, s.shutdown(srv, hardStop, c.ShutdownTimeout.D()))
}

// shutdown drains: /ready turns 503 and no connection is accepted;
// requests in flight (and their event streams) get timeout to finish; once
// they have (and streamEndGrace more), the standalone GET event streams end
// (clients reconnect elsewhere); past timeout every connection is closed. Then the upstream
// stops (stdio processes end), the Guard flushes last-used times, and the
// audit writer writes what it holds.
func (s *Server) shutdown(srv *http.Server, hardStop context.CancelFunc, timeout time.Duration) error {
	s.draining.Store(true)
	s.log.Info("gateway draining", slog.Duration("timeout", timeout))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	drained := make(chan struct{})
	go func() { s.calls.Wait(); close(drained) }()
	go func() {
		select {
		case <-drained:
			// Clients read a call's last bytes before they see the stream end.
			t := time.NewTimer(streamEndGrace)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
			}
		case <-ctx.Done():
		}
		s.log.Debug("requests drained: ending the event streams")
		s.streams.endAll()
	}()
	var errs []error
	if err := srv.Shutdown(ctx); err != nil {
		s.log.Warn("drain timed out: closing the remaining connections")
		hardStop()
		errs = append(errs, srv.Close())
	}
	final, cancel2 := context.WithTimeout(context.Background(), timeout+5*time.Second)
	defer cancel2()
	errs = append(errs, s.up.Close(final))
	if g := s.gen.Load(); g != nil {
		g.retire()
	}
	errs = append(errs, s.closeBackground(final))
	s.log.Info("gateway stopped")
	return errors.Join(errs...)
}

// closeBackground stops the limiter and flushes the audit writer.
func (s *Server) closeBackground(ctx context.Context) error {
	var errs []error
	if s.limiter != nil {
		errs = append(errs, s.limiter.Close(ctx))
	}
	if s.audit != nil {
		if err := s.audit.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("audit flush: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Close stops the gateway without serving: for a Server that was mounted
// with Handler rather than run with Serve.
func (s *Server) Close(ctx context.Context) error {
	s.draining.Store(true)
	s.streams.endAll()
	err := s.up.Close(ctx)
	if g := s.gen.Load(); g != nil {
		g.retire()
	}
	return errors.Join(err, s.closeBackground(ctx))
}
