package scope_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/scope"
)

func TestMessageOperation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		msg    scope.Message
		want   scope.Operation
		target string
	}{
		{"tool", scope.Message{Method: "tools/call", Name: "search"}, scope.Operation{Method: "tools/call", Name: "search"}, "search"},
		{"resource", scope.Message{Method: "resources/read", URI: "docs://a"}, scope.Operation{Method: "resources/read", URI: "docs://a"}, "docs://a"},
		{"prompt ref", scope.Message{Method: "completion/complete", RefType: scope.RefPrompt, RefName: "p", RefURI: "x://y"}, scope.Operation{Method: "completion/complete", RefType: scope.RefPrompt, Ref: "p"}, "p"},
		{"resource ref uses the URI", scope.Message{Method: "completion/complete", RefType: scope.RefResource, RefName: "n", RefURI: "docs://{id}"}, scope.Operation{Method: "completion/complete", RefType: scope.RefResource, Ref: "docs://{id}"}, "n"},
		{"untyped ref with only a URI", scope.Message{Method: "completion/complete", RefURI: "docs://{id}"}, scope.Operation{Method: "completion/complete", Ref: "docs://{id}"}, "docs://{id}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.msg.Operation())
			assert.Equal(t, tt.target, tt.msg.Target())
		})
	}
}

func TestDecideMessageChecksEverySubscription(t *testing.T) {
	t.Parallel()
	p, err := scope.NewPolicy(scope.PolicyConfig{
		Resources: []scope.Rule{{Match: "docs://documents/*", Scopes: []string{"documents:read"}}},
		Blocked:   scope.Blocklist{Resources: []string{"docs://users/*"}},
	})
	require.NoError(t, err)
	granted, err := scope.ParseSet([]string{"documents:read"})
	require.NoError(t, err)
	listen := scope.Message{Method: scope.MethodSubscriptionsListen, Subscriptions: []string{"docs://documents/1", "docs://users/a/api_keys"}}
	v, target := p.DecideMessage(listen, granted)
	assert.False(t, v.Allowed)
	assert.True(t, v.Blocked)
	assert.Equal(t, "docs://users/a/api_keys", target, "the refusal names the URI that was refused")
	listen.Subscriptions = listen.Subscriptions[:1]
	v, _ = p.DecideMessage(listen, granted)
	assert.True(t, v.Allowed)
}
