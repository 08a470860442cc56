package mcpgo

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/scope"
)

// Errors a refusing request hook returns. mcp-go sends their text as the
// JSON-RPC error message.
var (
	// ErrNoPrincipal: the request context has no mcpauth principal (the
	// server is not behind Require, or HTTPContextFunc is not wired).
	ErrNoPrincipal = errors.New("mcpauth/mcpgo: this request carries no mcpauth principal: serve the MCP server through mcpauth's Require")
	// ErrUnreadable: the request could not be decoded to check it against
	// the policy.
	ErrUnreadable = errors.New("mcpauth/mcpgo: the request could not be read to check it against the policy")
)

// DeniedError is a policy refusal. Its Error() is the policy's reason,
// which mcp-go sends to the client as the JSON-RPC error message.
type DeniedError struct {
	// Verdict is the policy's answer.
	Verdict scope.Verdict
}

func (e *DeniedError) Error() string { return e.Verdict.Reason }

// Is makes a DeniedError match mcpauth.ErrInsufficientScope, and
// mcpauth.ErrBlocked when the target is blocked.
func (e *DeniedError) Is(target error) bool {
	return target == mcpauth.ErrInsufficientScope || (e.Verdict.Blocked && target == mcpauth.ErrBlocked)
}

// HTTPContextFunc is a server.HTTPContextFunc that carries the principal
// mcpauth's Require put in the HTTP request context, and its parsed
// scopes, into the MCP request context. mcp-go derives each POST's context
// from the HTTP request's, so PrincipalFrom works without it too; wiring it
// makes that explicit, saves parsing the scopes per message, and keeps
// working for transports that do not.
//
// HTTPContextFunc does not bind sessions to users: a server wired with it
// alone lets another user's key use, stream and delete a session. NewHandler
// wires it together with Sessions; if you wire mcp-go yourself, add Sessions.
func HTTPContextFunc(ctx context.Context, r *http.Request) context.Context {
	if r == nil {
		return ctx
	}
	if _, ok := mcpauth.PrincipalFrom(r.Context()); !ok {
		return ctx
	}
	if _, has := mcpauth.PrincipalFrom(ctx); has {
		return ctx
	}
	// The principal and its scopes, parsed once per key by the Guard.
	return mcpauth.CopyPrincipal(ctx, r.Context())
}

var _ server.HTTPContextFunc = HTTPContextFunc

// PrincipalFrom returns the mcpauth principal of an MCP request context,
// and false if there is none. It never panics.
func PrincipalFrom(ctx context.Context) (mcpauth.Principal, bool) {
	return mcpauth.PrincipalFrom(ctx)
}

// scopesFrom returns the principal's parsed scopes (parsed once per key by
// the Guard). False when there is no principal; unparsable scopes grant
// nothing.
func scopesFrom(ctx context.Context) (scope.Set, bool) {
	return mcpauth.ScopesFrom(ctx)
}

// ServerOptions returns the options that apply policy to an mcp-go server
// (see the package documentation). It adds its hooks to hooks, which may
// be nil (a new Hooks is then used); the returned options include
// server.WithHooks(hooks), so do not pass WithHooks yourself. A nil policy
// still refuses requests without a principal.
//
//	mcpServer := server.NewMCPServer("docs", "1.0.0", mcpgo.ServerOptions(policy, nil)...)
func ServerOptions(policy *scope.Policy, hooks *server.Hooks) []server.ServerOption {
	if hooks == nil {
		hooks = &server.Hooks{}
	}
	AddHooks(hooks, policy)
	return []server.ServerOption{
		server.WithHooks(hooks),
		server.WithToolFilter(ToolFilter(policy)),
		server.WithPromptFilter(PromptFilter(policy)),
	}
}

// AddHooks adds to hooks the request check and the resource list filters
// of ServerOptions, for servers that set their options themselves.
func AddHooks(hooks *server.Hooks, policy *scope.Policy) {
	hooks.AddOnRequestInitialization(RequestHook(policy))
	hooks.AddAfterListResources(func(ctx context.Context, _ any, _ *mcp.ListResourcesRequest, res *mcp.ListResourcesResult) {
		if res == nil {
			return
		}
		granted, ok := scopesFrom(ctx)
		res.Resources = keep(res.Resources, func(r mcp.Resource) bool {
			return ok && (policy == nil || policy.Visible(scope.KindResource, r.URI, granted))
		})
	})
	hooks.AddAfterListResourceTemplates(func(ctx context.Context, _ any, _ *mcp.ListResourceTemplatesRequest, res *mcp.ListResourceTemplatesResult) {
		if res == nil {
			return
		}
		granted, ok := scopesFrom(ctx)
		res.ResourceTemplates = keep(res.ResourceTemplates, func(t mcp.ResourceTemplate) bool {
			if !ok {
				return false
			}
			if policy == nil {
				return true
			}
			if t.URITemplate == nil || t.URITemplate.Template == nil {
				return false
			}
			return policy.Visible(scope.KindResource, t.URITemplate.Raw(), granted)
		})
	})
}

// ToolFilter returns a server.ToolFilterFunc keeping the tools the
// principal may call. mcp-go applies it to tools/list and again to each
// tools/call. Without a principal no tool is visible.
func ToolFilter(policy *scope.Policy) server.ToolFilterFunc {
	return func(ctx context.Context, tools []mcp.Tool) []mcp.Tool {
		granted, ok := scopesFrom(ctx)
		return keep(tools, func(t mcp.Tool) bool {
			return ok && (policy == nil || policy.Visible(scope.KindTool, t.Name, granted))
		})
	}
}

// PromptFilter returns a server.PromptFilterFunc keeping the prompts the
// principal may get. Without a principal no prompt is visible.
func PromptFilter(policy *scope.Policy) server.PromptFilterFunc {
	return func(ctx context.Context, prompts []mcp.Prompt) []mcp.Prompt {
		granted, ok := scopesFrom(ctx)
		return keep(prompts, func(p mcp.Prompt) bool {
			return ok && (policy == nil || policy.Visible(scope.KindPrompt, p.Name, granted))
		})
	}
}

// request is what the policy needs from a JSON-RPC request. mcp-go decodes
// requests with encoding/json too, so both read the same fields (letter
// case and duplicate keys included).
type request struct {
	Method string `json:"method"`
	Params struct {
		Name string `json:"name"`
		URI  string `json:"uri"`
		Ref  struct {
			Type string `json:"type"`
			Name string `json:"name"`
			URI  string `json:"uri"`
		} `json:"ref"`
		Notifications struct {
			ResourceSubscriptions []string `json:"resourceSubscriptions"`
		} `json:"notifications"`
	} `json:"params"`
}

// RequestHook returns the server.OnRequestInitializationFunc that checks
// each request against policy before mcp-go dispatches it. It refuses
// requests without a principal, with ErrNoPrincipal; requests the policy
// refuses, with a *DeniedError; and guarded requests it cannot decode,
// with ErrUnreadable.
func RequestHook(policy *scope.Policy) server.OnRequestInitializationFunc {
	return func(ctx context.Context, _ any, message any) error {
		granted, ok := scopesFrom(ctx)
		if !ok {
			return ErrNoPrincipal
		}
		if policy == nil {
			return nil
		}
		var raw []byte
		switch m := message.(type) {
		case json.RawMessage:
			raw = m
		case []byte:
			raw = m
		default:
			return ErrUnreadable
		}
		var req request
		if err := json.Unmarshal(raw, &req); err != nil {
			return ErrUnreadable
		}
		m := scope.Message{
			Method: req.Method, Name: req.Params.Name, URI: req.Params.URI,
			RefType: req.Params.Ref.Type, RefName: req.Params.Ref.Name, RefURI: req.Params.Ref.URI,
			Subscriptions: req.Params.Notifications.ResourceSubscriptions,
		}
		if v, _ := policy.DecideMessage(m, granted); !v.Allowed {
			return &DeniedError{Verdict: v}
		}
		return nil
	}
}

// keep returns the elements of in for which ok is true, in a new slice
// (never nil, so that JSON says [] rather than null).
func keep[T any](in []T, ok func(T) bool) []T {
	out := make([]T, 0, len(in))
	for _, x := range in {
		if ok(x) {
			out = append(out, x)
		}
	}
	return out
}
