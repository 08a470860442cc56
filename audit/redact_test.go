package audit_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/mcpauth/mcpauth/audit"
)

func TestRedactArguments(t *testing.T) {
	t.Parallel()
	fields := []string{"password", "api_key", "token"}
	cases := []struct {
		name, in, want string
	}{
		{"empty", ``, ``},
		{"spaces only", `  `, ``},
		{"no match", `{"q":"hello","n":1}`, `{"q":"hello","n":1}`},
		{"top level", `{"user":"bob","password":"hunter2"}`, `{"user":"bob","password":"[REDACTED]"}`},
		{"case-insensitive", `{"API_KEY":"mcp_abc","Token":1}`, `{"API_KEY":"[REDACTED]","Token":"[REDACTED]"}`},
		{"nested object value", `{"password":{"a":[1,2,{"b":3}]},"x":true}`, `{"password":"[REDACTED]","x":true}`},
		{"deep", `{"a":{"b":{"c":{"token":"t"}}}}`, `{"a":{"b":{"c":{"token":"[REDACTED]"}}}}`},
		{"in arrays", `[{"token":"t1"},{"token":"t2","k":[{"password":null}]}]`, `[{"token":"[REDACTED]"},{"token":"[REDACTED]","k":[{"password":"[REDACTED]"}]}]`},
		{"values named like fields are kept", `{"note":"password","list":["token"]}`, `{"note":"password","list":["token"]}`},
		{"order and numbers kept", `{"z":1,"a":12345678901234567890,"m":1.50e10}`, `{"z":1,"a":12345678901234567890,"m":1.50e10}`},
		{"whitespace kept", "{ \"a\" : [ 1 , 2 ] ,\n \"token\" : { \"x\" : [ ] } , \"b\":[ ] }", "{ \"a\" : [ 1 , 2 ] ,\n \"token\" : \"[REDACTED]\" , \"b\":[ ] }"},
		{"escapes kept", `{"q":"a\"b\\c\u003c\n","e":"\"}"}`, `{"q":"a\"b\\c\u003c\n","e":"\"}"}`},
		{"escaped key", `{"pass\u0077ord":"x","to\"ken":"y"}`, `{"pass\u0077ord":"[REDACTED]","to\"ken":"y"}`},
		{"tricky strings", `{"a":"}{][,:\"","token":"}\\"}`, `{"a":"}{][,:\"","token":"[REDACTED]"}`},
		{"empty containers", `{"a":{},"b":[],"token":[],"c":[{}]}`, `{"a":{},"b":[],"token":"[REDACTED]","c":[{}]}`},
		{"unicode key fold", `{"PASSWORD":"x","Pässword":"y"}`, `{"PASSWORD":"[REDACTED]","Pässword":"y"}`},
		{"scalar", `"just a string"`, `"just a string"`},
		{"invalid json", `{"password":"hunter2"`, `"[REDACTED]"`},
		{"trailing garbage", `{"a":1} {"password":"x"}`, `"[REDACTED]"`},
		{"duplicate keys", `{"token":"a","token":"b"}`, `{"token":"[REDACTED]","token":"[REDACTED]"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := json.RawMessage(c.in)
			orig := string(in)
			got := audit.RedactArguments(in, fields)
			assert.Equal(t, c.want, string(got))
			assert.Equal(t, orig, string(in), "input not modified")
			if len(got) > 0 {
				assert.True(t, json.Valid(got), "output is valid JSON")
			}
		})
	}
	assert.Equal(t, `{"password":"x"}`, string(audit.RedactArguments(json.RawMessage(`{"password":"x"}`), nil)), "no fields, nothing redacted")
}

// FuzzRedactArguments checks RedactArguments against a reference built on
// encoding/json: decode, replace matching members, compare decoded results.
func FuzzRedactArguments(f *testing.F) {
	f.Add(`{"password":"x","a":[{"token":1}]}`)
	f.Add(`[1,"2",null,true]`)
	f.Add(`{"pass\u0077ord":{"a":"}"},"b":[{"Token":[]}]}`)
	f.Fuzz(func(t *testing.T, in string) {
		got := audit.RedactArguments(json.RawMessage(in), audit.DefaultRedactFields)
		if strings.TrimSpace(in) == "" {
			if len(got) != 0 {
				t.Fatalf("non-empty output %q for blank input", got)
			}
			return
		}
		if !json.Valid(got) {
			t.Fatalf("invalid output %q for %q", got, in)
		}
		var v any
		dec := json.NewDecoder(strings.NewReader(in))
		dec.UseNumber()
		if !json.Valid([]byte(in)) || dec.Decode(&v) != nil {
			if string(got) != `"[REDACTED]"` {
				t.Fatalf("invalid input %q gave %q", in, got)
			}
			return
		}
		want := referenceRedact(v)
		var gotV any
		dec = json.NewDecoder(bytes.NewReader(got))
		dec.UseNumber()
		if err := dec.Decode(&gotV); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(want, gotV) {
			t.Fatalf("input %q\n got %q\nwant %#v", in, got, want)
		}
	})
}

func referenceRedact(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			redact := false
			for _, f := range audit.DefaultRedactFields {
				if strings.EqualFold(k, f) {
					redact = true
				}
			}
			if redact {
				x[k] = audit.Redacted
			} else {
				x[k] = referenceRedact(val)
			}
		}
	case []any:
		for i := range x {
			x[i] = referenceRedact(x[i])
		}
	}
	return v
}
