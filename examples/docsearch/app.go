package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/alexedwards/scs/postgresstore"
	"github.com/alexedwards/scs/sqlite3store"
	"github.com/alexedwards/scs/v2"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/mcpauth/gosdk"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/ratelimit"
	"github.com/mcpauth/mcpauth/store/sqlstore"
)

// config is what the app is built from; main reads it from flags and the
// environment, tests set it directly.
type config struct {
	db *database
	// baseURL is where the app is served, such as http://127.0.0.1:8080:
	// the assistant's MCP client calls baseURL+"/mcp", and the keys page
	// puts it in the agent snippets.
	baseURL string
	// peppers hash API keys (MCPAUTH_PEPPER). Default none: plain SHA-256.
	peppers []apikey.Pepper
	// secret seals the assistant's keys (DOCSEARCH_SECRET, 32 bytes).
	secret []byte
	// answerer writes the assistant's answers. Default: extractive.
	answerer Answerer
	// secureCookies marks the session cookie Secure (serve over HTTPS).
	secureCookies bool
	// bcryptCost is the cost of password hashes. Default
	// bcrypt.DefaultCost (10); tests use bcrypt.MinCost.
	bcryptCost int
	now        func() time.Time
	log        *slog.Logger
}

// app is the whole program: the host app's pages and the MCP server, in one
// handler over one database.
type app struct {
	cfg       config
	users     *users
	docs      *documents
	mcp       *mcpServer
	guard     *mcpauth.Guard
	limiter   *ratelimit.Memory
	keys      *keyadmin.Manager
	events    *audit.Writer
	sessions  *scs.SessionManager
	stopStore func()
	assistant *assistant
	pages     *pages
	handler   http.Handler
}

// newApp wires the parts. It starts background work (audit writer, rate
// limiter sweeper, session cleanup, last-used flushes); close stops it.
func newApp(cfg config) (_ *app, err error) {
	if cfg.now == nil {
		cfg.now = time.Now
	}
	if cfg.log == nil {
		cfg.log = slog.Default()
	}
	if cfg.answerer == nil {
		cfg.answerer = extractive{}
	}
	a := &app{cfg: cfg, docs: &documents{d: cfg.db, now: cfg.now}}
	defer func() {
		if err != nil {
			err = errors.Join(err, a.close(context.Background()))
		}
	}()
	if a.users, err = newUsers(cfg.db, cfg.bcryptCost); err != nil {
		return nil, err
	}
	// Audit: one hash-chained log in the same database, written in batches
	// off the request path; requests and key changes are one trail.
	if a.events, err = audit.NewWriter(cfg.db.audit, nil); err != nil {
		return nil, err
	}
	a.limiter = ratelimit.NewMemory(nil)
	a.guard, err = mcpauth.New(cfg.db.keys, &mcpauth.Options{
		Peppers:     cfg.peppers,
		Users:       a.users,   // a deactivated user's keys stop at once (403)
		Policy:      policy,    // per-tool scopes, default blocklist on
		RateLimiter: a.limiter, // 100 requests a minute per key
		Audit:       a.events,
		// JSON-RPC errors with HTTP 200 for policy, rate-limit and outage
		// refusals: the go-sdk client (the assistant's) reads their reason
		// and code instead of a bare HTTP status (docs/refusals.md).
		Refusals: mcpauth.RefusalJSONRPC,
		Logger:   cfg.log,
		Now:      cfg.now,
	})
	if err != nil {
		return nil, err
	}
	a.keys, err = keyadmin.New(cfg.db.keys, &keyadmin.Options{
		Peppers:       cfg.peppers,
		OnChange:      a.guard.Forget, // revocations reach this process's Guard at once
		Audit:         a.events,
		AllowedScopes: allScopes,
		MaxLifetime:   365 * 24 * time.Hour,
		Logger:        cfg.log,
		Now:           cfg.now,
	})
	if err != nil {
		return nil, err
	}
	ring, err := newAssistantKeys(cfg.db, a.keys, cfg.secret, cfg.now, cfg.log)
	if err != nil {
		return nil, err
	}
	a.assistant = &assistant{keys: ring, mcpURL: cfg.baseURL + "/mcp", http: &http.Client{}, answerer: cfg.answerer, log: cfg.log}
	a.mcp = newMCPServer(a.docs)
	a.sessions = scs.New()
	a.sessions.Lifetime = 12 * time.Hour
	a.sessions.IdleTimeout = 2 * time.Hour
	a.sessions.Cookie.Name = "docsearch_session"
	a.sessions.Cookie.HttpOnly = true
	a.sessions.Cookie.SameSite = http.SameSiteLaxMode
	a.sessions.Cookie.Secure = cfg.secureCookies
	if cfg.db.dialect == sqlstore.Postgres {
		s := postgresstore.New(cfg.db.db)
		a.sessions.Store, a.stopStore = s, s.StopCleanup
	} else {
		s := sqlite3store.New(cfg.db.db)
		a.sessions.Store, a.stopStore = s, s.StopCleanup
	}
	if a.pages, err = newPages(a); err != nil {
		return nil, err
	}
	a.handler, err = a.routes()
	if err != nil {
		return nil, err
	}
	return a, nil
}

// routes mounts the MCP server behind Require, and the pages behind the
// session and cross-origin protection.
func (a *app) routes() (http.Handler, error) {
	mux := http.NewServeMux()
	// Steps 6-8: the MCP server. Bearer keys, not cookies, so cross-site
	// requests carry no credential; Require authenticates every request.
	mux.Handle("/mcp", a.guard.Require(gosdk.Bridge(a.mcp.handler())))
	mux.Handle("GET /health", a.guard.Health())

	// The JSON keys API for the signed-in user's own scripts, beside the
	// keys page (which calls the Manager directly).
	keysAPI, err := a.keys.Handler(a.pages.sessionUserID, &keyadmin.HandlerOptions{Path: "/api/keys", ClientIP: a.guard.ClientIP})
	if err != nil {
		return nil, err
	}
	web := http.NewServeMux()
	web.Handle("/api/keys", keysAPI)
	web.Handle("/api/keys/", keysAPI)
	a.pages.mount(web)
	// Every state-changing request of the web app must come from its own
	// origin (Sec-Fetch-Site, or Origin against Host): a cross-site form
	// cannot use the session cookie.
	mux.Handle("/", http.NewCrossOriginProtection().Handler(a.sessions.LoadAndSave(web)))
	return mux, nil
}

// close stops the background work and flushes what is pending: last-used
// times, audit events.
func (a *app) close(ctx context.Context) error {
	var errs []error
	if a.stopStore != nil {
		a.stopStore()
	}
	if a.keys != nil {
		errs = append(errs, a.keys.Close(ctx))
	}
	if a.guard != nil {
		errs = append(errs, a.guard.Close(ctx))
	}
	if a.limiter != nil {
		errs = append(errs, a.limiter.Close(ctx))
	}
	if a.events != nil {
		errs = append(errs, a.events.Close(ctx))
	}
	return errors.Join(errs...)
}
