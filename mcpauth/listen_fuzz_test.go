package mcpauth

import (
	"encoding/json"
	"slices"
	"testing"

	segjson "github.com/segmentio/encoding/json"
)

// listenParams is how servers decode subscriptions/listen params.
type listenParams struct {
	Notifications *struct {
		ResourceSubscriptions []string `json:"resourceSubscriptions"`
	} `json:"notifications"`
}

// FuzzSubscriptionURIs: every URI a server's decoder (encoding/json for
// mcp-go, segmentio as the go-sdk configures it) would subscribe to is
// among the URIs the policy checks.
func FuzzSubscriptionURIs(f *testing.F) {
	for _, s := range []string{
		`{"notifications":{"resourceSubscriptions":["docs://a","docs://b"]}}`,
		`{"notifications":{"resourceSubscriptions":["docs://a"],"ResourceSubscriptions":["docs://users/x/api_keys"]}}`,
		`{"notifications":{"resourceSubscriptions":["a"]},"Notifications":{"resourceSubscriptions":["b"]}}`,
		`{"notifications":{"resource\u0053ubscriptions":["docs://x"]}}`,
		`{"notifications":{"re\u017fourceSubscriptions":["docs://x"]}}`,
		`{"notifications":{"resourceSubscriptions":"docs://x"}}`,
		`[]`, `{}`, `{"notifications":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, params []byte) {
		got, err := subscriptionURIs(params)
		decoders := map[string]func([]byte, any) error{
			"encoding/json": json.Unmarshal,
			"segmentio": func(b []byte, v any) error {
				return segjson.Unmarshal(b, v)
			},
		}
		for name, unmarshal := range decoders {
			var p listenParams
			if unmarshal(params, &p) != nil || p.Notifications == nil {
				continue
			}
			if err != nil {
				t.Fatalf("%s decodes %q but subscriptionURIs fails: %v", name, params, err)
			}
			for _, uri := range p.Notifications.ResourceSubscriptions {
				if !slices.Contains(got, uri) {
					t.Fatalf("%s subscribes to %q, unchecked; checked %q in %q", name, uri, got, params)
				}
			}
		}
	})
}
