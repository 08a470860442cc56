package gosdk_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
)

// uriAttacks are resource URIs with which a documents:read key tries to
// reach the blocked docs://users/alice/api_keys (which the server has) or
// escape docs://documents/ (which its template serves).
var uriAttacks = []string{
	"DOCS://users/alice/api_keys",
	"docs://USERS/alice/api_keys",
	"docs://users/alice/API_KEYS",
	"docs://x@users/alice/api_keys",
	"docs://users:80/alice/api_keys",
	"docs://users/alice/api%5Fkeys",
	"docs://users/alice/api%255Fkeys",
	"docs://users//alice/./api_keys",
	"docs://documents/..%2F..%2Fusers%2Falice%2Fapi_keys",
	"docs://documents/%2e%2e/%2e%2e/users/alice/api_keys",
	"docs://documents/1%00",
}

// TestURIAttacksOnRealServer proves that no equivalent spelling of a
// blocked URI reaches the server's resource handlers.
func TestURIAttacksOnRealServer(t *testing.T) {
	f := start(t, true, true)
	key := f.key(t, "alice", "documents:read")
	code, body := f.post(t, key, "", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"docs://documents/1"}}`)
	assert.Equal(t, http.StatusOK, code, body)
	assert.EqualValues(t, 1, f.docs.reads.Load(), "control: an allowed read reaches the handler")
	for _, uri := range uriAttacks {
		t.Run(uri, func(t *testing.T) {
			b, _ := json.Marshal(uri)
			code, body := f.post(t, key, "", `{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":`+string(b)+`}}`)
			assert.Equal(t, http.StatusForbidden, code, body)
			assert.EqualValues(t, 1, f.docs.reads.Load(), "the resource handler did not run")
		})
	}
}
