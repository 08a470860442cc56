package audit

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
)

// Redacted is the value RedactArguments puts in place of a redacted field.
const Redacted = "[REDACTED]"

// DefaultRedactFields are field names that commonly hold secrets. Hosts that
// opt in to recording tool arguments should redact at least these.
var DefaultRedactFields = []string{
	"password", "passwd", "secret", "token", "access_token", "refresh_token",
	"api_key", "apikey", "authorization", "cookie", "private_key", "client_secret",
}

// RedactArguments returns raw with the value of every object member whose
// name is in fields (compared case-insensitively), at any depth and inside
// arrays, replaced by the string "[REDACTED]". Member order, numbers and
// everything else are kept as they were (whitespace is removed). It never
// modifies raw. Empty input gives empty output. Input that is not valid JSON
// gives the JSON string "[REDACTED]" as a whole: arguments that cannot be
// inspected are never recorded.
func RedactArguments(raw json.RawMessage, fields []string) json.RawMessage {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	redactedWhole := json.RawMessage(`"` + Redacted + `"`)
	if !json.Valid(raw) {
		return redactedWhole
	}
	set := make(map[string]struct{}, len(fields))
	for _, f := range fields {
		set[strings.ToLower(f)] = struct{}{}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var out bytes.Buffer
	if err := redactValue(dec, &out, set); err != nil {
		return redactedWhole
	}
	return json.RawMessage(out.Bytes())
}

func redactValue(dec *json.Decoder, out *bytes.Buffer, set map[string]struct{}) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	return redactToken(tok, dec, out, set)
}

func redactToken(tok json.Token, dec *json.Decoder, out *bytes.Buffer, set map[string]struct{}) error {
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			out.WriteByte('{')
			for first := true; dec.More(); first = false {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				k, _ := kt.(string)
				if !first {
					out.WriteByte(',')
				}
				writeJSON(out, k)
				out.WriteByte(':')
				if _, ok := set[strings.ToLower(k)]; ok {
					if err := skipValue(dec); err != nil {
						return err
					}
					writeJSON(out, Redacted)
					continue
				}
				if err := redactValue(dec, out, set); err != nil {
					return err
				}
			}
			if _, err := dec.Token(); err != nil { // '}'
				return err
			}
			out.WriteByte('}')
		case '[':
			out.WriteByte('[')
			for first := true; dec.More(); first = false {
				if !first {
					out.WriteByte(',')
				}
				if err := redactValue(dec, out, set); err != nil {
					return err
				}
			}
			if _, err := dec.Token(); err != nil { // ']'
				return err
			}
			out.WriteByte(']')
		}
		return nil
	case json.Number:
		out.WriteString(t.String())
		return nil
	default: // string, bool, nil
		writeJSON(out, t)
		return nil
	}
}

// skipValue consumes one value, however deeply nested.
func skipValue(dec *json.Decoder) error {
	var v json.RawMessage
	err := dec.Decode(&v)
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func writeJSON(out *bytes.Buffer, v any) {
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)           // strings, bools and nil always encode
	out.Truncate(out.Len() - 1) // Encode's newline
}
