package mcpgo_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
)

// policyAttacks are bodies with which a documents:read key tries to run
// delete_document (or hide the arguments search_documents runs with) on a
// server behind Require: keys that a decoder folds or takes twice.
var policyAttacks = []struct{ name, body string }{
	{"params with an escaped long s (U+017F)", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_documents","arguments":{}},"param\u017f":{"name":"delete_document","arguments":{}}}`},
	{"params with a raw long s", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_documents","arguments":{}},"paramſ":{"name":"delete_document","arguments":{}}}`},
	{"name escaped, twice", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_documents","nam\u0065":"delete_document","arguments":{}}}`},
	{"Name beside name", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_documents","Name":"delete_document","arguments":{}}}`},
	{"Params beside params", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_documents","arguments":{}},"Params":{"name":"delete_document","arguments":{}}}`},
	{"params twice", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_documents","arguments":{}},"params":{"name":"delete_document","arguments":{}}}`},
	{"METHOD beside method", `{"jsonrpc":"2.0","id":1,"method":"ping","METHOD":"tools/call","params":{"name":"delete_document","arguments":{}}}`},
	{"arguments and Arguments", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_documents","arguments":{"q":"harmless"},"Arguments":{"q":"DROP TABLE","password":"hunter2"}}}`},
	{"arguments twice", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_documents","arguments":{"q":"harmless"},"arguments":{"q":"DROP TABLE"}}}`},
	{"argument\u017f", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_documents","arguments":{"q":"harmless"},"argument\u017f":{"q":"DROP TABLE"}}}`},
}

// TestPolicyAttacksOnRealServer proves on a real mcp-go server that none of
// policyAttacks runs a tool: not the forbidden one, and not the allowed one
// with arguments the audit would not record.
func TestPolicyAttacksOnRealServer(t *testing.T) {
	f := start(t, false, true, false)
	key := f.key(t, "alice", "documents:read")
	code, body := f.post(t, key, "", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_documents","arguments":{}}}`)
	assert.Equal(t, http.StatusOK, code, body)
	assert.EqualValues(t, 1, f.docs.calls["search_documents"].Load(), "control: the allowed call runs")
	for _, a := range policyAttacks {
		t.Run(a.name, func(t *testing.T) {
			code, body := f.post(t, key, "", a.body)
			assert.Equal(t, http.StatusBadRequest, code, body)
			assert.Contains(t, body, `"invalid_request"`)
			assert.Zero(t, f.docs.calls["delete_document"].Load(), "the forbidden tool did not run")
			assert.EqualValues(t, 1, f.docs.calls["search_documents"].Load(), "no tool ran with arguments other than the audited ones")
		})
	}
}

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
	f := start(t, false, true, false)
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
