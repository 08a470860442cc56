package gosdk

import (
	"context"
	"encoding/json"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/scope"
)

// MCP methods Middleware handles besides the policy's own (scope.Method...).
const (
	methodListTools             = "tools/list"
	methodListPrompts           = "prompts/list"
	methodListResources         = "resources/list"
	methodListResourceTemplates = "resources/templates/list"
)

// cacheScopePrivate marks a list result as per-user (SEP-2549): a filtered
// list must not be served from a shared cache to another key.
const cacheScopePrivate = "private"

// Error data, the same "error" codes as mcpauth's HTTP JSON-RPC errors.
var (
	dataInsufficientScope = json.RawMessage(`{"error":"insufficient_scope"}`)
	dataBlocked           = json.RawMessage(`{"error":"blocked"}`)
	dataUnauthorized      = json.RawMessage(`{"error":"unauthorized"}`)
)

// errNoPrincipal is returned for every request without a principal.
var errNoPrincipal = &jsonrpc.Error{
	Code:    mcpauth.RPCCodeUnauthorized,
	Message: "this request carries no mcpauth principal: the MCP server must be served through mcpauth's Require and gosdk.Bridge",
	Data:    dataUnauthorized,
}

// errUnfilterable is returned when a list result is of a type Middleware
// does not know (a newer SDK): better no list than an unfiltered one.
var errUnfilterable = &jsonrpc.Error{
	Code:    jsonrpc.CodeInternalError,
	Message: "mcpauth/gosdk: cannot filter this list result",
}

// Middleware returns a receiving middleware that applies policy at the MCP
// layer (see the package documentation): it filters list results and
// refuses the operations policy refuses, with a JSON-RPC error carrying the
// policy's reason. A request without a principal (no Bridge in front) is
// refused whatever its method. A nil policy only requires the principal.
//
//	server := mcp.NewServer(impl, nil)
//	server.AddReceivingMiddleware(gosdk.Middleware(policy))
func Middleware(policy *scope.Policy) mcp.Middleware {
	return func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			extra := req.GetExtra()
			if _, ok := Principal(extra); !ok {
				return nil, errNoPrincipal
			}
			if policy == nil {
				return next(ctx, method, req)
			}
			granted, ok := Scopes(extra)
			if !ok {
				// The key's scopes do not parse: it gets nothing the
				// policy guards. Lists come back empty, calls are refused.
				granted = scope.Set{}
			}
			switch method {
			case methodListTools, methodListPrompts, methodListResources, methodListResourceTemplates:
				res, err := next(ctx, method, req)
				if err != nil || res == nil {
					return res, err
				}
				return filterList(policy, granted, res)
			}
			if m, ok := message(method, req.GetParams()); ok {
				if v, _ := policy.DecideMessage(m, granted); !v.Allowed {
					return nil, denial(v)
				}
			}
			return next(ctx, method, req)
		}
	}
}

// message fills scope's operation model from a request's typed params;
// false for methods the policy does not guard. A guarded method whose
// params are missing or of an unexpected type yields a message with an
// empty target, which the policy decides like any unlisted name (deny by
// default), so nothing unexpected slips through.
func message(method string, params mcp.Params) (scope.Message, bool) {
	m := scope.Message{Method: method}
	switch method {
	case scope.MethodToolsCall:
		switch p := params.(type) {
		case *mcp.CallToolParamsRaw:
			if p != nil {
				m.Name = p.Name
			}
		case *mcp.CallToolParams:
			if p != nil {
				m.Name = p.Name
			}
		}
	case scope.MethodPromptsGet:
		if p, ok := params.(*mcp.GetPromptParams); ok && p != nil {
			m.Name = p.Name
		}
	case scope.MethodResourcesRead:
		if p, ok := params.(*mcp.ReadResourceParams); ok && p != nil {
			m.URI = p.URI
		}
	case scope.MethodResourcesSubscribe:
		if p, ok := params.(*mcp.SubscribeParams); ok && p != nil {
			m.URI = p.URI
		}
	case scope.MethodResourcesUnsubscribe:
		if p, ok := params.(*mcp.UnsubscribeParams); ok && p != nil {
			m.URI = p.URI
		}
	case scope.MethodCompletionComplete:
		if p, ok := params.(*mcp.CompleteParams); ok && p != nil && p.Ref != nil {
			m.RefType, m.RefName, m.RefURI = p.Ref.Type, p.Ref.Name, p.Ref.URI
		}
	case scope.MethodSubscriptionsListen:
		if p, ok := params.(*mcp.SubscriptionsListenParams); ok && p != nil && p.Notifications != nil {
			m.Subscriptions = p.Notifications.ResourceSubscriptions
		}
	default:
		return m, false
	}
	return m, true
}

// denial is the JSON-RPC error for a refused operation.
func denial(v scope.Verdict) error {
	data := dataInsufficientScope
	if v.Blocked {
		data = dataBlocked
	}
	return &jsonrpc.Error{Code: mcpauth.RPCCodeForbidden, Message: v.Reason, Data: data}
}

// filterList returns a copy of a list result holding only what granted may
// use, marked private for caching. The SDK's result and its slice are not
// modified.
func filterList(policy *scope.Policy, granted scope.Set, res mcp.Result) (mcp.Result, error) {
	switch r := res.(type) {
	case *mcp.ListToolsResult:
		out := *r
		out.Tools = keep(r.Tools, func(t *mcp.Tool) bool { return t != nil && policy.Visible(scope.KindTool, t.Name, granted) })
		out.CacheScope = cacheScopePrivate
		return &out, nil
	case *mcp.ListPromptsResult:
		out := *r
		out.Prompts = keep(r.Prompts, func(p *mcp.Prompt) bool { return p != nil && policy.Visible(scope.KindPrompt, p.Name, granted) })
		out.CacheScope = cacheScopePrivate
		return &out, nil
	case *mcp.ListResourcesResult:
		out := *r
		out.Resources = keep(r.Resources, func(x *mcp.Resource) bool { return x != nil && policy.Visible(scope.KindResource, x.URI, granted) })
		out.CacheScope = cacheScopePrivate
		return &out, nil
	case *mcp.ListResourceTemplatesResult:
		out := *r
		out.ResourceTemplates = keep(r.ResourceTemplates, func(x *mcp.ResourceTemplate) bool {
			return x != nil && policy.Visible(scope.KindResource, x.URITemplate, granted)
		})
		out.CacheScope = cacheScopePrivate
		return &out, nil
	}
	// An unknown result type for a list method: refuse to pass on what
	// cannot be filtered.
	return nil, errUnfilterable
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
