package rpcpeek

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPeek(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		body    string
		want    []Message
		batch   bool
		wantErr error
	}{
		{"tools/call", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"search","arguments":{"q":"x","name":"decoy","deep":[{"uri":"decoy"}]}}}`,
			[]Message{{Kind: Request, ID: []byte("7"), Method: "tools/call", Name: "search"}}, false, nil},
		{"arguments before name", `{"params":{"arguments":{"name":"decoy"},"name":"real"},"method":"tools/call","id":"a-1","jsonrpc":"2.0"}`,
			[]Message{{Kind: Request, ID: []byte(`"a-1"`), Method: "tools/call", Name: "real"}}, false, nil},
		{"resources/read", ` {"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///reports/q1.pdf"}} `,
			[]Message{{Kind: Request, ID: []byte("1"), Method: "resources/read", URI: "file:///reports/q1.pdf"}}, false, nil},
		{"completion ref", `{"jsonrpc":"2.0","id":2,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"summarize"},"argument":{"name":"x","value":"y"}}}`,
			[]Message{{Kind: Request, ID: []byte("2"), Method: "completion/complete", RefType: "ref/prompt", RefName: "summarize"}}, false, nil},
		{"initialize", `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{}}}`,
			[]Message{{Kind: Request, ID: []byte("0"), Method: "initialize", ProtocolVersion: "2025-06-18"}}, false, nil},
		{"notification", `{"jsonrpc":"2.0","method":"notifications/initialized"}`,
			[]Message{{Kind: Notification, Method: "notifications/initialized"}}, false, nil},
		{"response", `{"jsonrpc":"2.0","id":5,"result":{"roots":[]}}`,
			[]Message{{Kind: Response, ID: []byte("5")}}, false, nil},
		{"escaped name", `{"jsonrpc":"2.0","id":1,"method":"tools\/call","params":{"name":"na\u006de\ud83d\ude00"}}`,
			[]Message{{Kind: Request, ID: []byte("1"), Method: "tools/call", Name: "name😀"}}, false, nil},
		{"escaped key", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"n\u0061me":"evil"}}`,
			[]Message{{Kind: Request, ID: []byte("1"), Method: "tools/call", Name: "evil"}}, false, nil},
		{"duplicate keys: last wins", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_doc","name":"delete_doc"}}`,
			[]Message{{Kind: Request, ID: []byte("1"), Method: "tools/call", Name: "delete_doc"}}, false, nil},
		{"keys match case-insensitively, like encoding/json", `{"jsonrpc":"2.0","ID":1,"Method":"tools/call","PARAMſ":{"name":"read_doc","NAME":"delete_doc"}}`,
			[]Message{{Kind: Request, ID: []byte("1"), Method: "tools/call", Name: "delete_doc"}}, false, nil},
		{"invalid UTF-8 becomes U+FFFD", "{\"id\":1,\"method\":\"a\xdc\"}",
			[]Message{{Kind: Request, ID: []byte("1"), Method: "a\uFFFD"}}, false, nil},
		{"batch", `[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}},{"jsonrpc":"2.0","method":"notifications/x"}]`,
			[]Message{{Kind: Request, ID: []byte("1"), Method: "tools/call", Name: "a"}, {Kind: Notification, Method: "notifications/x"}}, true, nil},
		{"not json", `{"jsonrpc":`, nil, false, ErrSyntax},
		{"trailing garbage", `{"jsonrpc":"2.0","method":"ping","id":1} x`, nil, false, ErrSyntax},
		{"bad number", `{"id":01,"method":"ping"}`, nil, false, ErrSyntax},
		{"control char", "{\"method\":\"pi\nng\",\"id\":1}", nil, false, ErrSyntax},
		{"bad escape", `{"method":"p\qing","id":1}`, nil, false, ErrSyntax},
		{"empty", ``, nil, false, ErrSyntax},
		{"scalar", `42`, nil, false, ErrInvalidRequest},
		{"empty batch", `[]`, nil, true, ErrInvalidRequest},
		{"batch with scalar", `[1]`, nil, true, ErrInvalidRequest},
		{"no method, no result", `{"jsonrpc":"2.0","id":1}`, nil, false, ErrInvalidRequest},
		{"method not a string", `{"jsonrpc":"2.0","id":1,"method":7}`, nil, false, ErrInvalidRequest},
		{"too deep", strings.Repeat("[", 200) + strings.Repeat("]", 200), nil, true, ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf [4]Message
			got, batch, err := Peek([]byte(tt.body), buf[:])
			assert.Equal(t, tt.batch, batch)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestPeekAllocatesNothing(t *testing.T) {
	body := []byte(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"search","arguments":{"q":"` + strings.Repeat("x", 4096) + `"}}}`)
	var buf [1]Message
	allocs := testing.AllocsPerRun(100, func() {
		if _, _, err := Peek(body, buf[:]); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs)
}

// FuzzPeek checks that Peek accepts exactly the JSON that encoding/json
// accepts (validity agreement), and agrees on method and params.name.
func FuzzPeek(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"x":[1,2.5e3,-0,true,null]}}}`,
		`[{"id":1,"method":"a"},{"id":2,"result":{}}]`, `{"method":"\u00e9\ud83d\ude00"}`, `"x"`, `[]`, `{}`, `{"a":1e}`, `{"a":"\ud800"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var buf [2]Message
		msgs, _, err := Peek(body, buf[:])
		valid := json.Valid(body)
		if valid != (err != ErrSyntax) {
			t.Fatalf("json.Valid=%v, Peek err=%v for %q", valid, err, body)
		}
		if err != nil || len(msgs) != 1 || body[0] != '{' {
			return
		}
		var std struct {
			Method any `json:"method"`
			Params struct {
				Name any `json:"name"`
			} `json:"params"`
		}
		if json.Unmarshal(body, &std) != nil {
			return // e.g. params is not an object: nothing to compare
		}
		if s, ok := std.Method.(string); ok && s != msgs[0].Method {
			t.Fatalf("method: std %q, peek %q", s, msgs[0].Method)
		}
		if s, ok := std.Params.Name.(string); ok && s != msgs[0].Name {
			t.Fatalf("name: std %q, peek %q", s, msgs[0].Name)
		}
	})
}
