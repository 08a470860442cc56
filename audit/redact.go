package audit

import (
	"bytes"
	"encoding/json"
)

// Redacted is the value RedactArguments puts in place of a redacted field.
const Redacted = "[REDACTED]"

// DefaultRedactFields are field names that commonly hold secrets. Hosts that
// opt in to recording tool arguments should redact at least these.
var DefaultRedactFields = []string{
	"password", "passwd", "secret", "token", "access_token", "refresh_token",
	"api_key", "apikey", "authorization", "cookie", "private_key", "client_secret",
}

// RedactArguments returns a copy of raw with the value of every object
// member whose name is in fields (compared case-insensitively, after JSON
// unescaping), at any depth and inside arrays, replaced by the string
// "[REDACTED]". Everything else (member order, numbers, escapes, whitespace)
// is kept byte for byte. It never modifies raw. Empty input gives empty
// output. Input that is not valid JSON gives the JSON string "[REDACTED]" as
// a whole: arguments that cannot be inspected are never recorded.
func RedactArguments(raw json.RawMessage, fields []string) json.RawMessage {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	if !json.Valid(raw) {
		return json.RawMessage(`"` + Redacted + `"`)
	}
	r := redactor{in: raw, fields: fields}
	r.value(len(fields) > 0)
	if len(r.spans) == 0 {
		return append(json.RawMessage(nil), raw...)
	}
	out := make(json.RawMessage, 0, len(raw))
	last := 0
	for _, s := range r.spans {
		out = append(out, raw[last:s[0]]...)
		out = append(out, `"`+Redacted+`"`...)
		last = s[1]
	}
	return append(out, raw[last:]...)
}

// redactor walks valid JSON, collecting the spans of values to replace.
type redactor struct {
	in     []byte
	i      int
	fields []string
	spans  [][2]int
}

func (r *redactor) ws() {
	for r.i < len(r.in) {
		switch r.in[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// value walks one value at r.i (after whitespace); match says whether
// object members are compared with the fields (false inside a value that
// is being redacted anyway).
func (r *redactor) value(match bool) {
	r.ws()
	switch r.in[r.i] {
	case '{':
		r.i++
		for {
			r.ws()
			if r.in[r.i] == '}' {
				r.i++
				return
			}
			if r.in[r.i] == ',' {
				r.i++
				r.ws()
			}
			ks := r.i
			r.str()
			key := r.in[ks+1 : r.i-1]
			r.ws()
			r.i++ // ':'
			r.ws()
			if match && r.matches(key) {
				start := r.i
				r.value(false)
				r.spans = append(r.spans, [2]int{start, r.i})
			} else {
				r.value(match)
			}
		}
	case '[':
		r.i++
		for {
			r.ws()
			switch r.in[r.i] {
			case ']':
				r.i++
				return
			case ',':
				r.i++
			}
			r.ws()
			if r.in[r.i] == ']' { // cannot happen in valid JSON; defensive
				continue
			}
			r.value(match)
		}
	case '"':
		r.str()
	default: // number, true, false, null
		for r.i < len(r.in) {
			switch r.in[r.i] {
			case ',', ']', '}', ' ', '\t', '\n', '\r':
				return
			}
			r.i++
		}
	}
}

// str skips a string starting at its opening quote.
func (r *redactor) str() {
	r.i++
	for r.in[r.i] != '"' {
		if r.in[r.i] == '\\' {
			r.i++
		}
		r.i++
	}
	r.i++
}

func (r *redactor) matches(rawKey []byte) bool {
	key := rawKey
	if bytes.IndexByte(rawKey, '\\') >= 0 {
		var s string
		quoted := make([]byte, 0, len(rawKey)+2)
		quoted = append(append(append(quoted, '"'), rawKey...), '"')
		if json.Unmarshal(quoted, &s) != nil {
			return true // cannot happen for valid JSON; redact to be safe
		}
		key = []byte(s)
	}
	for _, f := range r.fields {
		if bytes.EqualFold(key, []byte(f)) {
			return true
		}
	}
	return false
}
