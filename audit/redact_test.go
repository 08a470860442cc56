package audit_test

import (
	"encoding/json"
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
		{"whitespace removed", "{ \"a\" : [ 1 , 2 ] ,\n \"token\" : \"x\" }", `{"a":[1,2],"token":"[REDACTED]"}`},
		{"escapes kept", `{"q":"a\"b\\c\u003c\n"}`, `{"q":"a\"b\\c<\n"}`},
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

func FuzzRedactArguments(f *testing.F) {
	f.Add(`{"password":"x","a":[{"token":1}]}`)
	f.Add(`[1,"2",null,true]`)
	f.Fuzz(func(t *testing.T, in string) {
		got := audit.RedactArguments(json.RawMessage(in), audit.DefaultRedactFields)
		if len(got) > 0 && !json.Valid(got) {
			t.Fatalf("invalid output %q for %q", got, in)
		}
	})
}
