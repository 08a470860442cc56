// Package rpcpeek reads the few fields of JSON-RPC messages that mcpauth's
// policy needs (method, id, params.name, params.uri, params.ref,
// params.protocolVersion) straight from the request body, validating the
// JSON as it goes but decoding nothing else: tool arguments are skipped
// byte by byte, never turned into Go values, so the cost does not depend on
// their shape and allocations stay constant as they grow.
//
// Strings returned alias the body when they contain no escapes (no copy);
// the body must not be modified while the Messages are in use.
package rpcpeek

import (
	"errors"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// Kind is what a message is.
type Kind uint8

// Message kinds. A request has a method and an id; a notification a method
// and no id; a response an id and a result or error, and no method.
const (
	Request Kind = iota + 1
	Notification
	Response
)

// Message is what the middleware learns of one JSON-RPC message.
type Message struct {
	Kind Kind
	// ID is the raw JSON of the id (`7`, `"abc"`), nil if absent.
	ID []byte
	// Method is the JSON-RPC method.
	Method string
	// Name is params.name (tools/call, prompts/get).
	Name string
	// URI is params.uri (resources/read, subscribe, unsubscribe).
	URI string
	// RefType, RefName and RefURI are params.ref of completion/complete.
	RefType, RefName, RefURI string
	// ProtocolVersion is params.protocolVersion (initialize).
	ProtocolVersion string
}

// Errors. ErrSyntax means the body is not JSON (JSON-RPC -32700);
// ErrInvalidRequest means JSON that is not a JSON-RPC message or batch
// (-32600).
var (
	ErrSyntax         = errors.New("rpcpeek: invalid JSON")
	ErrInvalidRequest = errors.New("rpcpeek: not a JSON-RPC message")
)

// maxDepth bounds nesting, so hostile bodies cannot exhaust the stack.
const maxDepth = 128

// Peek parses body as one JSON-RPC message or a batch (array) of them and
// appends each to dst[:0]. Pass a dst with capacity (a stack array) and
// Peek allocates nothing for messages without escaped strings. isBatch
// reports whether the body was an array.
func Peek(body []byte, dst []Message) (msgs []Message, isBatch bool, err error) {
	s := scanner{b: body}
	s.ws()
	if s.i >= len(s.b) {
		return dst[:0], false, ErrSyntax
	}
	msgs = dst[:0]
	switch s.b[s.i] {
	case '{':
		var m Message
		err := s.message(&m)
		if err != nil && err != ErrInvalidRequest {
			return msgs, false, err
		}
		if endErr := s.end(); endErr != nil {
			return msgs, false, endErr
		}
		if err != nil {
			return msgs, false, err
		}
		return append(msgs, m), false, nil
	case '[':
		isBatch = true
		s.i++
		s.ws()
		if s.peek() == ']' {
			s.i++
			if err := s.end(); err != nil {
				return msgs, true, err
			}
			return msgs, true, ErrInvalidRequest // empty batch
		}
		invalid := false
		for {
			s.ws()
			if s.peek() == '{' {
				var m Message
				if err := s.message(&m); err != nil {
					if err == ErrInvalidRequest {
						invalid = true
					} else {
						return msgs, true, err
					}
				}
				msgs = append(msgs, m)
			} else {
				if err := s.value(1); err != nil {
					return msgs, true, err
				}
				invalid = true
			}
			s.ws()
			switch s.peek() {
			case ',':
				s.i++
				continue
			case ']':
				s.i++
			default:
				return msgs, true, ErrSyntax
			}
			break
		}
		if err := s.end(); err != nil {
			return msgs, true, err
		}
		if invalid {
			return msgs, true, ErrInvalidRequest
		}
		return msgs, true, nil
	default:
		if err := s.value(0); err != nil {
			return msgs, false, err
		}
		if err := s.end(); err != nil {
			return msgs, false, err
		}
		return msgs, false, ErrInvalidRequest
	}
}

type scanner struct {
	b []byte
	i int
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// end checks that only whitespace follows.
func (s *scanner) end() error {
	s.ws()
	if s.i != len(s.b) {
		return ErrSyntax
	}
	return nil
}

// message reads one top-level object. A syntactically valid object that is
// not a JSON-RPC message returns ErrInvalidRequest after being consumed.
func (s *scanner) message(m *Message) error {
	var hasResult, hasMethod bool
	methodOK := true
	err := s.object(1, func(key []byte, esc bool) error {
		switch keyIs(key, esc) {
		case "method":
			hasMethod = true
			str, ok, err := s.optString()
			if err != nil {
				return err
			}
			methodOK = ok
			m.Method = str
		case "id":
			start := s.i
			if err := s.value(1); err != nil {
				return err
			}
			m.ID = s.b[start:s.i]
		case "params":
			return s.params(m)
		case "result", "error":
			hasResult = true
			return s.value(1)
		default:
			return s.value(1)
		}
		return nil
	})
	if err != nil {
		return err
	}
	switch {
	case hasMethod && methodOK && m.ID == nil:
		m.Kind = Notification
	case hasMethod && methodOK:
		m.Kind = Request
	case !hasMethod && hasResult && m.ID != nil:
		m.Kind = Response
	default:
		return ErrInvalidRequest
	}
	return nil
}

func (s *scanner) params(m *Message) error {
	s.ws()
	if s.peek() != '{' {
		return s.value(1) // positional params: nothing we need
	}
	return s.object(2, func(key []byte, esc bool) error {
		var err error
		switch keyIs(key, esc) {
		case "name":
			m.Name, _, err = s.optString()
		case "uri":
			m.URI, _, err = s.optString()
		case "protocolversion":
			m.ProtocolVersion, _, err = s.optString()
		case "ref":
			s.ws()
			if s.peek() != '{' {
				return s.value(2)
			}
			return s.object(3, func(key []byte, esc bool) error {
				var err error
				switch keyIs(key, esc) {
				case "type":
					m.RefType, _, err = s.optString()
				case "name":
					m.RefName, _, err = s.optString()
				case "uri":
					m.RefURI, _, err = s.optString()
				default:
					err = s.value(3)
				}
				return err
			})
		default:
			err = s.value(2) // arguments, _meta, ...: skipped, not decoded
		}
		return err
	})
}

// keyIs returns the key in the form to match field names against. Like
// encoding/json (which the MCP SDKs decode with), matching is
// case-insensitive with Unicode simple folding ("NAME", "nAme" and
// "paramſ" are name and params), so that the policy sees the same fields as
// the handler. Keys already in lower-case ASCII cost no allocation.
func keyIs(key []byte, esc bool) string {
	var k string
	if esc || !utf8.Valid(key) {
		k = unescape(key)
	} else {
		k = unsafe.String(unsafe.SliceData(key), len(key))
	}
	for i := range len(k) {
		if c := k[i]; c >= 'A' && c <= 'Z' || c >= utf8.RuneSelf {
			return fold(k)
		}
	}
	return k
}

// fold lower-cases ASCII letters and maps the two non-ASCII runes that
// fold to ASCII letters (U+017F ſ to s, U+212A Kelvin sign to k).
func fold(k string) string {
	out := make([]byte, 0, len(k))
	for _, r := range k {
		switch {
		case r >= 'A' && r <= 'Z':
			r += 'a' - 'A'
		case r == 'ſ':
			r = 's'
		case r == 'K':
			r = 'k'
		}
		out = utf8.AppendRune(out, r)
	}
	return string(out)
}

// object reads {...} calling fn for each key with the scanner positioned at
// the value; fn must consume the value.
func (s *scanner) object(depth int, fn func(key []byte, esc bool) error) error {
	if depth > maxDepth {
		return ErrSyntax
	}
	s.i++ // '{'
	s.ws()
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		s.ws()
		key, esc, err := s.str()
		if err != nil {
			return err
		}
		s.ws()
		if s.peek() != ':' {
			return ErrSyntax
		}
		s.i++
		s.ws()
		if err := fn(key, esc); err != nil {
			return err
		}
		s.ws()
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return ErrSyntax
		}
	}
}

// optString reads a value; if it is a string it is returned (ok=true),
// otherwise it is skipped and ok is false.
func (s *scanner) optString() (string, bool, error) {
	if s.peek() != '"' {
		return "", false, s.value(2)
	}
	raw, esc, err := s.str()
	if err != nil {
		return "", false, err
	}
	if esc || !utf8.Valid(raw) { // invalid UTF-8 becomes U+FFFD, as in encoding/json
		return unescape(raw), true, nil
	}
	return unsafe.String(unsafe.SliceData(raw), len(raw)), true, nil
}

// str reads a string and returns its raw contents (between the quotes) and
// whether it has escapes. It validates escapes and control characters.
func (s *scanner) str() ([]byte, bool, error) {
	if s.peek() != '"' {
		return nil, false, ErrSyntax
	}
	s.i++
	start := s.i
	esc := false
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			raw := s.b[start:s.i]
			s.i++
			return raw, esc, nil
		case c == '\\':
			esc = true
			s.i++
			if s.i >= len(s.b) {
				return nil, false, ErrSyntax
			}
			switch s.b[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				if s.i+4 >= len(s.b) {
					return nil, false, ErrSyntax
				}
				for _, h := range s.b[s.i+1 : s.i+5] {
					if !isHex(h) {
						return nil, false, ErrSyntax
					}
				}
				s.i += 5
			default:
				return nil, false, ErrSyntax
			}
		case c < 0x20:
			return nil, false, ErrSyntax
		default:
			s.i++
		}
	}
	return nil, false, ErrSyntax
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// value skips any JSON value, validating it.
func (s *scanner) value(depth int) error {
	if depth > maxDepth {
		return ErrSyntax
	}
	s.ws()
	switch c := s.peek(); {
	case c == '{':
		return s.object(depth+1, func([]byte, bool) error { return s.value(depth + 1) })
	case c == '[':
		s.i++
		s.ws()
		if s.peek() == ']' {
			s.i++
			return nil
		}
		for {
			if err := s.value(depth + 1); err != nil {
				return err
			}
			s.ws()
			switch s.peek() {
			case ',':
				s.i++
			case ']':
				s.i++
				return nil
			default:
				return ErrSyntax
			}
		}
	case c == '"':
		_, _, err := s.str()
		return err
	case c == 't':
		return s.lit("true")
	case c == 'f':
		return s.lit("false")
	case c == 'n':
		return s.lit("null")
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	default:
		return ErrSyntax
	}
}

func (s *scanner) lit(want string) error {
	if len(s.b)-s.i < len(want) || string(s.b[s.i:s.i+len(want)]) != want {
		return ErrSyntax
	}
	s.i += len(want)
	return nil
}

// number validates the JSON number grammar.
func (s *scanner) number() error {
	if s.peek() == '-' {
		s.i++
	}
	switch c := s.peek(); {
	case c == '0':
		s.i++
	case c >= '1' && c <= '9':
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
		}
	default:
		return ErrSyntax
	}
	if s.peek() == '.' {
		s.i++
		if !s.digits() {
			return ErrSyntax
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.i++
		if c := s.peek(); c == '+' || c == '-' {
			s.i++
		}
		if !s.digits() {
			return ErrSyntax
		}
	}
	return nil
}

func (s *scanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}

// unescape decodes a string body already validated by str, the way
// encoding/json does (invalid surrogates and UTF-8 become U+FFFD).
func unescape(raw []byte) string {
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			r, size := utf8.DecodeRune(raw[i:])
			out = utf8.AppendRune(out, r)
			i += size
			continue
		}
		i++
		switch raw[i] {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := hex4(raw[i+1 : i+5])
			i += 4
			if utf16.IsSurrogate(r) {
				if i+7 <= len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
					if r2 := hex4(raw[i+3 : i+7]); utf16.DecodeRune(r, r2) != utf8.RuneError {
						out = utf8.AppendRune(out, utf16.DecodeRune(r, r2))
						i += 7
						continue
					}
				}
				r = utf8.RuneError
			}
			out = utf8.AppendRune(out, r)
		default: // '"', '\\', '/'
			out = append(out, raw[i])
		}
		i++
	}
	return string(out)
}

func hex4(b []byte) rune {
	v, _ := strconv.ParseUint(string(b), 16, 32)
	return rune(v)
}
