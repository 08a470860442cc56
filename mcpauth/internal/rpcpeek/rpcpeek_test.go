package rpcpeek

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	sjson "github.com/segmentio/encoding/json"
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
			[]Message{{Kind: Request, ID: []byte("7"), Method: "tools/call", Name: "search", Arguments: []byte(`{"q":"x","name":"decoy","deep":[{"uri":"decoy"}]}`)}}, false, nil},
		{"arguments before name", `{"params":{"arguments":{"name":"decoy"},"name":"real"},"method":"tools/call","id":"a-1","jsonrpc":"2.0"}`,
			[]Message{{Kind: Request, ID: []byte(`"a-1"`), Method: "tools/call", Name: "real", Arguments: []byte(`{"name":"decoy"}`)}}, false, nil},
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
		{"duplicate name rejected", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_doc","name":"delete_doc"}}`,
			nil, false, ErrInvalidRequest},
		{"case variant rejected (go-sdk would run name, encoding/json NAME)", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_doc","NAME":"read_doc"}}`,
			nil, false, ErrInvalidRequest},
		{"Unicode fold variant rejected", `{"jsonrpc":"2.0","id":1,"method":"tools/call","paramſ":{"name":"read_doc"}}`,
			nil, false, ErrInvalidRequest},
		{"escaped duplicate rejected", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_doc","n\u0061me":"delete_doc"}}`,
			nil, false, ErrInvalidRequest},
		{"duplicate method rejected", `{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call","params":{"name":"x"}}`,
			nil, false, ErrInvalidRequest},
		{"duplicate params rejected", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"},"params":{"name":"b"}}`,
			nil, false, ErrInvalidRequest},
		{"duplicate id rejected", `{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}`, nil, false, ErrInvalidRequest},
		{"duplicate ref name rejected", `{"id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"a","Name":"b"}}}`,
			nil, false, ErrInvalidRequest},
		{"ambiguity after a syntax error is a syntax error", `{"id":1,"method":"a","params":{"name":"x","NAME":"y"}`, nil, false, ErrSyntax},
		{"duplicates inside arguments are the tool's business", `{"id":1,"method":"tools/call","params":{"name":"a","arguments":{"name":"b","name":"c","NAME":"d"}}}`,
			[]Message{{Kind: Request, ID: []byte("1"), Method: "tools/call", Name: "a", Arguments: []byte(`{"name":"b","name":"c","NAME":"d"}`)}}, false, nil},
		{"other keys in other cases are fine", `{"JSONRPC":"2.0","id":1,"method":"tools/call","params":{"name":"a","_META":{}}}`,
			[]Message{{Kind: Request, ID: []byte("1"), Method: "tools/call", Name: "a"}}, false, nil},
		{"arguments are returned raw", `{"id":1,"method":"tools/call","params":{"arguments" : {"q": "a\u0062c" , "n":[1, 2]} ,"name":"a"}}`,
			[]Message{{Kind: Request, ID: []byte("1"), Method: "tools/call", Name: "a", Arguments: []byte(`{"q": "a\u0062c" , "n":[1, 2]}`)}}, false, nil},
		{"prompt arguments", `{"id":1,"method":"prompts/get","params":{"name":"p","arguments":{"topic":"x"}}}`,
			[]Message{{Kind: Request, ID: []byte("1"), Method: "prompts/get", Name: "p", Arguments: []byte(`{"topic":"x"}`)}}, false, nil},
		{"null arguments", `{"id":1,"method":"tools/call","params":{"name":"a","arguments":null}}`,
			[]Message{{Kind: Request, ID: []byte("1"), Method: "tools/call", Name: "a", Arguments: []byte(`null`)}}, false, nil},
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
		{"deep but allowed", `{"id":1,"method":"tools/call","params":{"name":"a","arguments":` + strings.Repeat("[", 900) + strings.Repeat("]", 900) + `}}`,
			[]Message{{Kind: Request, ID: []byte("1"), Method: "tools/call", Name: "a", Arguments: []byte(strings.Repeat("[", 900) + strings.Repeat("]", 900))}}, false, nil},
		{"exactly MaxDepth levels", strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth), nil, true, ErrInvalidRequest},
		{"too deep", strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1), nil, true, ErrSyntax},
		{"too deep in arguments", `{"id":1,"method":"tools/call","params":{"name":"a","arguments":` + strings.Repeat(`{"a":`, MaxDepth) + "1" + strings.Repeat("}", MaxDepth) + `}}`, nil, false, ErrSyntax},
		{"huge name", `{"id":1,"method":"tools/call","params":{"name":"` + strings.Repeat("n", 1<<20) + `"}}`,
			[]Message{{Kind: Request, ID: []byte("1"), Method: "tools/call", Name: strings.Repeat("n", 1<<20)}}, false, nil},
		{"unterminated huge string", `{"id":1,"method":"tools/call","params":{"name":"` + strings.Repeat("n", 1<<20), nil, false, ErrSyntax},
		{"batch with response and invalid element", `[{"jsonrpc":"2.0","id":1,"result":{}},{"id":2}]`, nil, true, ErrInvalidRequest},
		{"batch of request, notification, response", `[{"id":"x","method":"resources/read","params":{"uri":"file:///a"}},{"method":"notifications/cancelled","params":{"requestId":"x"}},{"id":9,"error":{"code":-1,"message":"m"}}]`,
			[]Message{{Kind: Request, ID: []byte(`"x"`), Method: "resources/read", URI: "file:///a"}, {Kind: Notification, Method: "notifications/cancelled"}, {Kind: Response, ID: []byte("9")}}, true, nil},
		{"resource completion ref", `{"id":1,"method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":"file:///{p}"}}}`,
			[]Message{{Kind: Request, ID: []byte("1"), Method: "completion/complete", RefType: "ref/resource", RefURI: "file:///{p}"}}, false, nil},
		{"params not an object", `{"id":1,"method":"tools/call","params":["name","x"]}`,
			[]Message{{Kind: Request, ID: []byte("1"), Method: "tools/call"}}, false, nil},
		{"name not a string", `{"id":1,"method":"tools/call","params":{"name":{"x":1}}}`,
			[]Message{{Kind: Request, ID: []byte("1"), Method: "tools/call"}}, false, nil},
		{"null id", `{"id":null,"method":"ping"}`, []Message{{Kind: Request, ID: []byte("null"), Method: "ping"}}, false, nil},
		{"object that is not a message, then garbage", `{"a":1}}`, nil, false, ErrSyntax},
		{"BOM", "\xef\xbb\xbf" + `{"id":1,"method":"ping"}`, nil, false, ErrSyntax},
		{"whitespace only", " \n\t ", nil, false, ErrSyntax},
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
			for i := range got {
				if got[i].Params != nil {
					// Params is the raw params value, exactly as sent.
					assert.Contains(t, tt.body, string(got[i].Params))
					assert.True(t, json.Valid(got[i].Params))
				}
				got[i].Params = nil
				if got[i].Arguments != nil {
					// Arguments are the raw value, exactly as sent.
					assert.Contains(t, tt.body, string(got[i].Arguments))
					assert.True(t, json.Valid(got[i].Arguments))
				}
			}
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
// accepts (validity agreement; ambiguous keys are valid JSON refused as
// ErrInvalidRequest), and that whenever Peek accepts a body, every decoder
// a real MCP server uses on it (see decoders) reads the same method, id,
// params.name, params.uri, params.protocolVersion, params.ref and
// params.arguments as Peek, message by message: a body Peek accepts means
// the same thing to the policy, the audit and the server.
//
// The seed corpus holds, for every watched key, every spelling a
// case-insensitive decoder matches to it (other case, each non-ASCII rune
// whose SimpleFold orbit holds one of its letters), raw and escaped.
func FuzzPeek(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"x":[1,2.5e3,-0,true,null]}}}`,
		`[{"id":1,"method":"a"},{"id":2,"result":{}}]`, `{"method":"\u00e9\ud83d\ude00"}`, `"x"`, `[]`, `{}`, `{"a":1e}`, `{"a":"\ud800"}`,
		`{"id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"p\u00e9"}}}`,
		`{"id":1,"method":"x","params":{"name":"a","NAME":"b"}}`,
		`{"id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18"}}`,
		`[{"id":1,"method":"tools/call","params":{"name":"a","arguments":null}},{"method":"n","params":{"arguments":[1]}}]`,
	} {
		f.Add([]byte(s))
	}
	for _, lv := range watchedByLevel {
		for k, hidden := range lv.keys {
			for _, v := range foldVariants(k) {
				f.Add([]byte(lv.body(`,"` + v + `":` + hidden)))
			}
		}
	}
	for _, r := range nonASCIIFolds() {
		// Each folding rune on its own, raw and escaped, in each watched
		// key holding its ASCII partner and as a whole key.
		for _, lv := range watchedByLevel {
			for k, hidden := range lv.keys {
				for i, c := range k {
					if slices.Contains(foldOrbit(c), r) {
						f.Add([]byte(lv.body(`,"` + k[:i] + string(r) + k[i+1:] + `":` + hidden)))
						f.Add([]byte(lv.body(`,"` + k[:i] + escapeRune(r) + k[i+1:] + `":` + hidden)))
					}
				}
			}
		}
		f.Add([]byte(`{"id":1,"method":"tools/call","params":{"name":"x","` + string(r) + `":1,"` + escapeRune(r) + `":2}}`))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var buf [2]Message
		msgs, isBatch, err := Peek(body, buf[:])
		if errors.Is(err, errTooDeep) {
			return // encoding/json allows 10000 levels, the go-sdk 1000
		}
		valid := json.Valid(body)
		if valid != !errors.Is(err, ErrSyntax) {
			t.Fatalf("json.Valid=%v, Peek err=%v for %q", valid, err, body)
		}
		if err != nil {
			return
		}
		elems := [][]byte{body}
		if isBatch {
			var raw []json.RawMessage
			if json.Unmarshal(body, &raw) != nil || len(raw) != len(msgs) {
				t.Fatalf("Peek read %d messages, encoding/json cannot split %q", len(msgs), body)
			}
			elems = elems[:0]
			for _, r := range raw {
				elems = append(elems, r)
			}
		}
		for i, elem := range elems {
			got := fieldsOf(&msgs[i])
			for _, d := range decoders {
				var w wire
				if d.unmarshal(elem, &w) != nil {
					continue // the server refuses the message: nothing runs
				}
				if want := w.fields(); got != want {
					t.Fatalf("message %d: peek %+v, %s %+v, body %q", i, got, d.name, want, body)
				}
			}
		}
	})
}

// decoders are the decoders MCP servers run on a request body, with the
// settings they run them with:
//   - mcp-go v1.2.1 decodes every message with encoding/json (v1:
//     case-insensitive keys, Unicode simple folding, last duplicate wins;
//     server/request_handler.go, mcp.CallToolParams.UnmarshalJSON);
//   - the go-sdk v1.8.0 decodes messages and params with
//     segmentio/encoding/json and DontMatchCaseInsensitiveStructFields
//     (internal/json/json.go; exact keys after unescaping, last duplicate
//     wins).
var decoders = []struct {
	name      string
	unmarshal func([]byte, any) error
}{
	{"encoding/json (mcp-go)", json.Unmarshal},
	{"segmentio, case-sensitive (go-sdk)", func(b []byte, v any) error {
		d := sjson.NewDecoder(bytes.NewReader(b))
		d.DontMatchCaseInsensitiveStructFields()
		return d.Decode(v)
	}},
}

// wire is what a decoder makes of a message, in the shape the SDKs decode
// it (jsonrpc2.wireDecode and CallToolParamsRaw in the go-sdk,
// mcp.CallToolRequest in mcp-go).
type wire struct {
	Method *string         `json:"method"`
	ID     json.RawMessage `json:"id"`
	Params *struct {
		Name            *string         `json:"name"`
		URI             *string         `json:"uri"`
		ProtocolVersion *string         `json:"protocolVersion"`
		Arguments       json.RawMessage `json:"arguments"`
		Ref             *struct {
			Type *string `json:"type"`
			Name *string `json:"name"`
			URI  *string `json:"uri"`
		} `json:"ref"`
	} `json:"params"`
}

// fields are the values compared, as one comparable value.
type fields struct {
	Method, ID, Name, URI, ProtocolVersion, Arguments, RefType, RefName, RefURI string
}

func fieldsOf(m *Message) fields {
	return fields{m.Method, string(m.ID), m.Name, m.URI, m.ProtocolVersion, string(m.Arguments), m.RefType, m.RefName, m.RefURI}
}

func (w *wire) fields() fields {
	f := fields{Method: str(w.Method), ID: string(w.ID)}
	if p := w.Params; p != nil {
		f.Name, f.URI, f.ProtocolVersion, f.Arguments = str(p.Name), str(p.URI), str(p.ProtocolVersion), string(p.Arguments)
		if r := p.Ref; r != nil {
			f.RefType, f.RefName, f.RefURI = str(r.Type), str(r.Name), str(r.URI)
		}
	}
	return f
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func TestLeadingID(t *testing.T) {
	t.Parallel()
	huge := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"a","arguments":{"x":"` + strings.Repeat("y", 1000)
	tests := []struct {
		name, prefix, want string
	}{
		{"id first, body cut in params", huge, "7"},
		{"string id", `{"id":"req-1","method":"x","params":{"a":"bbbbbb`, `"req-1"`},
		{"id after method", `{"jsonrpc":"2.0","method":"tools/call","id":12,"params":{`, "12"},
		{"id after the cut", `{"jsonrpc":"2.0","method":"tools/call","params":{"a":"` + strings.Repeat("z", 100), ""},
		{"id cut in the middle", `{"id":12`, ""},
		{"null id is not echoed", `{"id":null,"method":"x"`, ""},
		{"object id is not an id", `{"id":{"a":1},"method":"x"`, ""},
		{"batch", `[{"id":1,"method":"x"}`, ""},
		{"not JSON", `id=7`, ""},
		{"escaped key is not id", `{"\u0069d":3,"method":"x"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := LeadingID([]byte(tt.prefix))
			assert.Equal(t, tt.want != "", ok)
			assert.Equal(t, tt.want, string(got))
		})
	}
}

// FuzzLeadingID: never panics; an id it returns is a whole JSON string or
// number taken from the prefix, and for a complete single message it is the
// id Peek reads.
func FuzzLeadingID(f *testing.F) {
	for _, s := range []string{`{"id":1,"method":"x"}`, `{"jsonrpc":"2.0","id":"a","params":{"q":"`, `{"id":-0.5e3,`, `{"id":"\u0041"}`, `[{"id":1}]`, `{"id":`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, prefix []byte) {
		id, ok := LeadingID(prefix)
		if !ok {
			return
		}
		if !json.Valid(id) || !bytes.Contains(prefix, id) {
			t.Fatalf("id %q of %q", id, prefix)
		}
		var buf [1]Message
		if msgs, batch, err := Peek(prefix, buf[:]); err == nil && !batch && len(msgs) == 1 && msgs[0].ID != nil {
			var a, b any
			_ = json.Unmarshal(id, &a)
			_ = json.Unmarshal(msgs[0].ID, &b)
			if a != b && string(id) != string(msgs[0].ID) {
				t.Fatalf("LeadingID %q, Peek %q for %q", id, msgs[0].ID, prefix)
			}
		}
	})
}
