package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"sync"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/scope"
)

// generation is one Guard built from one version of the reloadable
// configuration, and the handler it guards. Requests hold it while they run
// (acquire/release), and with it its OAuth verifier; a retired generation
// closes its Guard when its last request ends.
type generation struct {
	guard   *mcpauth.Guard
	handler http.Handler
	limited bool             // spends rate-limit budgets
	oauth   *runningVerifier // nil: API keys only

	mu      sync.Mutex
	active  int
	retired bool
	once    sync.Once
}

func (g *generation) bind(up http.Handler) {
	g.handler = g.guard.Require(notePrincipal(up))
}

func (s *Server) acquire() *generation {
	for {
		g := s.gen.Load()
		g.mu.Lock()
		if !g.retired {
			g.active++
			g.mu.Unlock()
			return g
		}
		g.mu.Unlock() // swapped out between Load and Lock: take the new one
	}
}

func (g *generation) release() {
	g.mu.Lock()
	g.active--
	done := g.retired && g.active == 0
	g.mu.Unlock()
	if done {
		g.close()
	}
}

// retire marks the generation replaced; its Guard closes once idle.
func (g *generation) retire() {
	g.mu.Lock()
	g.retired = true
	done := g.active == 0
	g.mu.Unlock()
	if done {
		g.close()
	}
}

func (g *generation) close() {
	g.once.Do(func() { _ = g.guard.Close(context.Background()) })
}

// newGeneration compiles the reloadable part of c (policy file, rate
// limits, trusted proxies, bearer-only, audit arguments, oauth) into a
// Guard. Its OAuth verifier is built from c.OAuth, reading the client
// secret again, unless neither the table nor the secret differs from
// prev's (the running generation's, nil in New): then prev is kept, with
// the keys it fetched. It changes nothing on error.
func (s *Server) newGeneration(c *Config, prev *runningVerifier) (*generation, error) {
	var policy *scope.Policy
	if c.Policy.File != "" {
		f, err := os.Open(c.Policy.File)
		if err != nil {
			return nil, fieldErr("policy.file", "%v", err)
		}
		policy, err = scope.LoadPolicy(f)
		f.Close()
		if err != nil {
			return nil, fieldErr("policy.file", "%s: %v", c.Policy.File, err)
		}
	}
	rates, err := c.RatePolicy()
	if err != nil {
		return nil, err
	}
	verifier, err := c.OAuth.verifier(prev, s.deps.Getenv, s.log)
	if err != nil {
		return nil, err
	}
	o := &mcpauth.Options{
		Prefix:             c.Keys.Prefix,
		Peppers:            s.peppers,
		BearerOnly:         c.Keys.BearerOnly,
		Logger:             s.log,
		Now:                s.deps.Now,
		TrustedProxies:     c.TrustedProxies,
		TrustedProxyHeader: c.TrustedProxyHeader,
		Policy:             policy,
		AuditArguments:     c.Audit.Arguments,
		AuditRedact:        c.Audit.Redact,
	}
	if verifier != nil {
		o.OAuth = verifier.v
	}
	if rates != nil {
		o.RateLimiter, o.RatePolicy = s.limiter.Limiter, rates
	}
	if s.audit != nil {
		o.Audit, o.AuditStrict = s.audit, c.Audit.Mode == "strict"
	}
	g, err := mcpauth.New(s.deps.Keys, o)
	if err != nil {
		return nil, fmt.Errorf("guard: %w", err)
	}
	if policy == nil {
		s.log.Warn("no policy.file: every valid key may call every tool, read every resource and get every prompt")
	}
	return &generation{guard: g, limited: rates != nil, oauth: verifier}, nil
}

// Reload applies a new configuration's policy, rate limits, trusted
// proxies, keys.bearer_only, audit arguments and oauth table without
// dropping a connection: requests in flight finish under the old Guard (and
// its OAuth verifier), new ones use the new one. The introspection client
// secret is read again: a changed one, or a changed oauth table, makes a
// new verifier (which fetches keys anew); otherwise the running one is
// kept. next is validated here; if it, its policy file or its client
// secret is bad, nothing changes and the error names the field (never the
// secret). Fields that need a restart
// (listen, upstream, database, peppers, the rate-limit backend, ...) keep
// their old values; their names are returned in ignored so the caller can
// log them.
func (s *Server) Reload(next *Config) (ignored []string, err error) {
	if next == nil {
		return nil, errors.New("gateway: Reload needs a configuration")
	}
	c := *next
	if err := c.Validate(); err != nil {
		return nil, err
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	old, now := s.cfg.restartOnly(), c.restartOnly()
	for k, v := range now {
		if old[k] != v {
			ignored = append(ignored, k)
		}
	}
	sort.Strings(ignored)
	running := s.gen.Load() // swapped only here and in New, under reloadMu
	g, err := s.newGeneration(&c, running.oauth)
	if err != nil {
		return nil, err
	}
	g.bind(s.up)
	s.gen.Swap(g).retire()
	// Keep the restart-only fields as they are running.
	merged := *s.cfg
	merged.Policy, merged.RateLimit = c.Policy, c.RateLimit
	merged.RateLimit.RateBackend = s.cfg.RateLimit.RateBackend
	merged.TrustedProxies, merged.TrustedProxyHeader = c.TrustedProxies, c.TrustedProxyHeader
	merged.Keys.BearerOnly = c.Keys.BearerOnly
	merged.Audit.Arguments, merged.Audit.Redact = c.Audit.Arguments, c.Audit.Redact
	merged.OAuth = c.OAuth
	s.cfg = &merged
	s.log.Info("configuration reloaded", slog.String("policy_file", c.Policy.File), slog.Bool("rate_limit", !c.RateLimit.Disabled),
		slog.Bool("oauth", g.oauth != nil), slog.Bool("oauth_verifier_kept", g.oauth != nil && g.oauth == running.oauth))
	if len(ignored) > 0 {
		s.log.Warn("configuration reload: these fields changed but need a restart", slog.Any("fields", ignored))
	}
	return ignored, nil
}
