package adaptertest

// Attack tables every adapter's tests send, as raw POST bodies on an
// initialized session, to a real server guarded only by guard.Require: the
// guard must refuse each one (400, -32600) and no tool may run with what
// the policy did not see.

const (
	attackSearch = `"params":{"name":"search_documents","arguments":{}}`
	attackDelete = `{"name":"delete_document","arguments":{}}`
)

// AmbiguousKeyAttacks are bodies with which a documents:read key tries to
// run delete_document, read a blocked resource, or hand a tool arguments the
// audit would not record: keys that a decoder folds (ſ, K, letter case) or
// takes twice, raw or escaped. The "DROP TABLE" arguments appear on either
// side of each pair, so that whichever one a server's decoder takes, it is
// caught.
var AmbiguousKeyAttacks = []struct{ Name, Body string }{
	{"issue body: param\\u017f", `{"jsonrpc":"2.0","id":1,"method":"tools/call",` + attackSearch + `,"param\u017f":` + attackDelete + `}`},
	{"param\\u017F (upper-case hex)", `{"jsonrpc":"2.0","id":1,"method":"tools/call",` + attackSearch + `,"param\u017F":` + attackDelete + `}`},
	{"raw UTF-8 paramſ", `{"jsonrpc":"2.0","id":1,"method":"tools/call",` + attackSearch + `,"paramſ":` + attackDelete + `}`},
	{"raw UTF-8 paramſ first", `{"jsonrpc":"2.0","id":1,"method":"tools/call","paramſ":` + attackDelete + `,` + attackSearch + `}`},
	{"only paramſ", `{"jsonrpc":"2.0","id":1,"method":"tools/call","paramſ":` + attackDelete + `}`},
	{"PARAMS", `{"jsonrpc":"2.0","id":1,"method":"tools/call",` + attackSearch + `,"PARAMS":` + attackDelete + `}`},
	{"duplicate params", `{"jsonrpc":"2.0","id":1,"method":"tools/call",` + attackSearch + `,"params":` + attackDelete + `}`},
	{"escaped duplicate params", `{"jsonrpc":"2.0","id":1,"method":"tools/call",` + attackSearch + `,"p\u0061rams":` + attackDelete + `}`},
	{"duplicate name", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_documents","name":"delete_document","arguments":{}}}`},
	{"Name", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_documents","Name":"delete_document","arguments":{}}}`},
	{"NAME first", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"NAME":"delete_document","name":"search_documents","arguments":{}}}`},
	{"escaped name", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_documents","n\u0061me":"delete_document","arguments":{}}}`},
	{"escaped NAME", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_documents","\u004eAME":"delete_document","arguments":{}}}`},
	{"Method", `{"jsonrpc":"2.0","id":1,"method":"ping","Method":"tools/call","params":` + attackDelete + `}`},
	{"duplicate method", `{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call","params":` + attackDelete + `}`},
	{"escaped METHOD", `{"jsonrpc":"2.0","id":1,"method":"ping","\u004dETHOD":"tools/call","params":` + attackDelete + `}`},
	{"URI of a blocked resource", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"docs://documents/1","URI":"docs://users/alice/api_keys"}}`},
	{"ID", `{"jsonrpc":"2.0","id":1,"ID":2,"method":"tools/call",` + attackSearch + `}`},
	{"arguments then Arguments", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_documents","arguments":{"q":"DROP TABLE documents","password":"hunter2"},"Arguments":{"q":"harmless"}}}`},
	{"Arguments then arguments", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_documents","Arguments":{"q":"harmless"},"arguments":{"q":"DROP TABLE documents"}}}`},
	{"duplicate arguments", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_documents","arguments":{"q":"harmless"},"arguments":{"q":"DROP TABLE documents"}}}`},
	{"argument\\u017f", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_documents","arguments":{"q":"DROP TABLE documents"},"argument\u017f":{"q":"harmless"}}}`},
	{"raw UTF-8 argumentſ", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_documents","arguments":{"q":"DROP TABLE documents"},"argumentſ":{"q":"harmless"}}}`},
	{"escaped ARGUMENTS", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_documents","arguments":{"q":"DROP TABLE documents"},"\u0041RGUMENTS":{"q":"harmless"}}}`},
	{"pArAmſ", `{"jsonrpc":"2.0","id":1,"method":"tools/call",` + attackSearch + `,"pArAm\u017f":` + attackDelete + `}`},
	{"arguments then Arguments (the other side)", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_documents","arguments":{"q":"harmless"},"Arguments":{"q":"DROP TABLE documents","password":"hunter2"}}}`},
	{"argument\\u017f (the other side)", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_documents","arguments":{"q":"harmless"},"argument\u017f":{"q":"DROP TABLE documents"}}}`},
	{"raw UTF-8 argumentſ (the other side)", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_documents","arguments":{"q":"harmless"},"argumentſ":{"q":"DROP TABLE documents"}}}`},
	{"escaped ARGUMENTS (the other side)", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_documents","arguments":{"q":"harmless"},"\u0041RGUMENTS":{"q":"DROP TABLE documents"}}}`},
}

// URIAttacks are resource URIs with which a documents:read key tries to
// reach the blocked docs://users/alice/api_keys (which the server has) or
// escape docs://documents/ (which its template serves).
var URIAttacks = []string{
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
