package gosdk_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/gosdk"
)

func extraFor(scopes ...string) *mcp.RequestExtra {
	p := mcpauth.Principal{KeyID: "k", UserID: "alice", Scopes: scopes}
	return &mcp.RequestExtra{TokenInfo: gosdk.TokenInfo(p, time.Now())}
}

func TestMiddlewareDecisions(t *testing.T) {
	t.Parallel()
	mw := gosdk.Middleware(testPolicy(t))
	reached := errors.New("reached handler")
	next := mw(func(context.Context, string, mcp.Request) (mcp.Result, error) { return nil, reached })
	read := extraFor("documents:read")
	admin := extraFor("admin")
	tests := []struct {
		name   string
		method string
		req    mcp.Request
		want   string // "" = reaches the handler; else a substring of the refusal
	}{
		{"allowed call", "tools/call", &mcp.CallToolRequest{Params: &mcp.CallToolParamsRaw{Name: "search_documents"}, Extra: read}, ""},
		{"write tool", "tools/call", &mcp.CallToolRequest{Params: &mcp.CallToolParamsRaw{Name: "create_document"}, Extra: read}, "requires scope documents:write"},
		{"call without params", "tools/call", &mcp.CallToolRequest{Extra: read}, `tool ""`},
		{"no principal", "tools/call", &mcp.CallToolRequest{Params: &mcp.CallToolParamsRaw{Name: "search_documents"}}, "no mcpauth principal"},
		{"no principal on ping", "ping", &mcp.ServerRequest[*mcp.PingParams]{}, "no mcpauth principal"},
		{"ping", "ping", &mcp.ServerRequest[*mcp.PingParams]{Extra: read}, ""},
		{"unparsable scopes grant nothing", "tools/call", &mcp.CallToolRequest{Params: &mcp.CallToolParamsRaw{Name: "search_documents"}, Extra: extraFor("a b")}, "requires scope documents:read"},
		{"subscribe", "resources/subscribe", &mcp.SubscribeRequest{Params: &mcp.SubscribeParams{URI: "docs://documents/1"}, Extra: read}, ""},
		{"subscribe blocked", "resources/subscribe", &mcp.SubscribeRequest{Params: &mcp.SubscribeParams{URI: "docs://users/bob/api_keys"}, Extra: admin}, "blocked"},
		{"unsubscribe unlisted", "resources/unsubscribe", &mcp.UnsubscribeRequest{Params: &mcp.UnsubscribeParams{URI: "file:///x"}, Extra: admin}, "not allowed"},
		{"subscriptions/listen blocked uri", "subscriptions/listen", &mcp.SubscriptionsListenRequest{Params: &mcp.SubscriptionsListenParams{Notifications: &mcp.NotificationSubscriptions{ResourceSubscriptions: []string{"docs://documents/1", "docs://users/a/api_keys"}}}, Extra: admin}, "blocked"},
		{"subscriptions/listen allowed", "subscriptions/listen", &mcp.SubscriptionsListenRequest{Params: &mcp.SubscriptionsListenParams{Notifications: &mcp.NotificationSubscriptions{ResourceSubscriptions: []string{"docs://documents/1"}}}, Extra: read}, ""},
		{"complete prompt ref", "completion/complete", &mcp.CompleteRequest{Params: &mcp.CompleteParams{Ref: &mcp.CompleteReference{Type: "ref/prompt", Name: "summarize"}}, Extra: read}, ""},
		{"complete prompt ref denied", "completion/complete", &mcp.CompleteRequest{Params: &mcp.CompleteParams{Ref: &mcp.CompleteReference{Type: "ref/prompt", Name: "admin_report"}}, Extra: admin}, "not allowed"},
		{"complete blocked resource ref", "completion/complete", &mcp.CompleteRequest{Params: &mcp.CompleteParams{Ref: &mcp.CompleteReference{Type: "ref/resource", URI: "docs://users/x/api_keys"}}, Extra: admin}, "blocked"},
		{"complete without ref", "completion/complete", &mcp.CompleteRequest{Params: &mcp.CompleteParams{}, Extra: admin}, "not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := next(context.Background(), tt.method, tt.req)
			if tt.want == "" {
				assert.ErrorIs(t, err, reached)
				return
			}
			var rpc *jsonrpc.Error
			require.ErrorAs(t, err, &rpc)
			want := int64(mcpauth.RPCCodeForbidden)
			if strings.Contains(tt.want, "no mcpauth principal") {
				want = mcpauth.RPCCodeUnauthorized
			}
			assert.Equal(t, want, rpc.Code)
			assert.Contains(t, rpc.Message, tt.want)
		})
	}
}

func TestMiddlewareListFilterDoesNotModifyResult(t *testing.T) {
	t.Parallel()
	orig := &mcp.ListToolsResult{Tools: []*mcp.Tool{{Name: "delete_document"}, {Name: "search_documents"}, nil}}
	mw := gosdk.Middleware(testPolicy(t))
	h := mw(func(context.Context, string, mcp.Request) (mcp.Result, error) { return orig, nil })
	res, err := h(context.Background(), "tools/list", &mcp.ListToolsRequest{Extra: extraFor("documents:read")})
	require.NoError(t, err)
	got := res.(*mcp.ListToolsResult)
	require.Len(t, got.Tools, 1)
	assert.Equal(t, "search_documents", got.Tools[0].Name)
	assert.Len(t, orig.Tools, 3, "the SDK's result is not modified")
	assert.Equal(t, "delete_document", orig.Tools[0].Name)

	_, err = mw(func(context.Context, string, mcp.Request) (mcp.Result, error) { return &mcp.CallToolResult{}, nil })(
		context.Background(), "tools/list", &mcp.ListToolsRequest{Extra: extraFor("admin")})
	require.Error(t, err, "a list result of an unknown type is not passed on unfiltered")
}

func TestMiddlewareNilPolicyRequiresPrincipalOnly(t *testing.T) {
	t.Parallel()
	h := gosdk.Middleware(nil)(func(context.Context, string, mcp.Request) (mcp.Result, error) { return &mcp.CallToolResult{}, nil })
	_, err := h(context.Background(), "tools/call", &mcp.CallToolRequest{Params: &mcp.CallToolParamsRaw{Name: "anything"}, Extra: extraFor()})
	require.NoError(t, err)
	_, err = h(context.Background(), "tools/call", &mcp.CallToolRequest{Params: &mcp.CallToolParamsRaw{Name: "anything"}})
	require.Error(t, err)
}
