package mcpgo

import (
	"context"
	"errors"
	"net/http"

	"github.com/mark3labs/mcp-go/server"
)

// HandlerOptions configures NewHandler. A nil *HandlerOptions uses every
// default.
type HandlerOptions struct {
	// Sessions configures the Sessions that binds each streamable HTTP
	// session to the user who created it: its HMAC key (set the same Key on
	// every instance behind a load balancer) and the underlying mcp-go
	// session ID manager (SessionOptions.Manager; use
	// &server.StatelessSessionIdManager{} for no sessions). Default: nil,
	// NewSessions' defaults (a random key per process, mcp-go's default
	// StatelessGeneratingSessionIdManager).
	Sessions *SessionOptions
	// ContextFunc, if set, runs after HTTPContextFunc for every request, to
	// add values of your own to the MCP request context. Default: none.
	ContextFunc server.HTTPContextFunc
	// HTTPOptions are more mcp-go streamable HTTP options (heartbeat, event
	// store, logger, idle TTL...). NewHandler applies its own after them,
	// so session and context options here (WithSessionIdManager,
	// WithSessionIdManagerResolver, WithStateLess, WithStateful,
	// WithHTTPContextFunc) have no effect: use Sessions and ContextFunc.
	// Default: none.
	HTTPOptions []server.StreamableHTTPOption
}

// Handler is an mcp-go streamable HTTP server whose sessions are bound to
// mcpauth users. Serve it inside mcpauth's Require. It is safe for
// concurrent use.
type Handler struct {
	http    *server.StreamableHTTPServer
	handler http.Handler
}

var _ http.Handler = (*Handler)(nil)

// NewHandler returns the streamable HTTP handler for s to put inside
// guard.Require: mcp-go's StreamableHTTPServer with HTTPContextFunc, and a
// Sessions both as its session ID manager resolver and in front of it
// (Sessions.Require). A request naming a session issued to another user,
// or not issued by this Handler's Sessions, is refused with 403
// session_user_mismatch before mcp-go sees it, and a request without an
// mcpauth principal with 401, both through the Guard's
// Options.ErrorHandler. It is the wiring to use unless you assemble the
// mcp-go server yourself (then see Sessions: without it, any user's key can
// use, stream and delete another user's session).
//
// NewHandler does not add the policy: build s with ServerOptions(policy,
// nil) for that. It fails when s is nil or opts.Sessions is invalid
// (see NewSessions).
//
//	s := server.NewMCPServer("docs", "1.0.0", mcpgo.ServerOptions(policy, nil)...)
//	h, err := mcpgo.NewHandler(s, nil)
//	mux.Handle("/mcp", guard.Require(h))
func NewHandler(s *server.MCPServer, opts *HandlerOptions) (*Handler, error) {
	if s == nil {
		return nil, errors.New("mcpauth/mcpgo: NewHandler needs an *server.MCPServer")
	}
	var o HandlerOptions
	if opts != nil {
		o = *opts
	}
	sessions, err := NewSessions(o.Sessions)
	if err != nil {
		return nil, err
	}
	contextFunc := HTTPContextFunc
	if user := o.ContextFunc; user != nil {
		contextFunc = func(ctx context.Context, r *http.Request) context.Context {
			return user(HTTPContextFunc(ctx, r), r)
		}
	}
	httpOpts := append(append([]server.StreamableHTTPOption(nil), o.HTTPOptions...),
		server.WithHTTPContextFunc(contextFunc),
		server.WithSessionIdManagerResolver(sessions))
	hs := server.NewStreamableHTTPServer(s, httpOpts...)
	return &Handler{http: hs, handler: sessions.Require(hs)}, nil
}

// ServeHTTP serves the MCP request after checking its session's user.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.handler.ServeHTTP(w, r)
}

// Shutdown closes the open sessions and stops mcp-go's idle-session
// sweeper (started by server.WithSessionIdleTTL), waiting at most until ctx
// is done.
func (h *Handler) Shutdown(ctx context.Context) error {
	return h.http.Shutdown(ctx)
}
