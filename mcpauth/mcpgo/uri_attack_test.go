package mcpgo_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/mcpauth/mcpauth/mcpauth/adaptertest"
	"github.com/stretchr/testify/assert"
)

// TestURIAttacksOnRealServer proves that no equivalent spelling of a
// blocked URI reaches the server's resource handlers.
func TestURIAttacksOnRealServer(t *testing.T) {
	f := start(t, false, true, false)
	key := f.key(t, "alice", "documents:read")
	code, body := f.post(t, key, "", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"docs://documents/1"}}`)
	assert.Equal(t, http.StatusOK, code, body)
	assert.EqualValues(t, 1, f.docs.reads.Load(), "control: an allowed read reaches the handler")
	for _, uri := range adaptertest.URIAttacks {
		t.Run(uri, func(t *testing.T) {
			b, _ := json.Marshal(uri)
			code, body := f.post(t, key, "", `{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":`+string(b)+`}}`)
			assert.Equal(t, http.StatusForbidden, code, body)
			assert.EqualValues(t, 1, f.docs.reads.Load(), "the resource handler did not run")
		})
	}
}
