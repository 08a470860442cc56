// Package rpcpeek reads the few fields of JSON-RPC messages that mcpauth's
// policy and audit need (method, id, params.name, params.uri, params.ref,
// params.protocolVersion, params.arguments) straight from the request body,
// validating the JSON as it goes but decoding nothing else: tool arguments
// are skipped byte by byte and returned raw, never turned into Go values,
// so the cost does not depend on their shape and allocations stay constant
// as they grow.
//
// # Strictness
//
// The body must be valid JSON (RFC 8259, as encoding/json accepts it),
// nested at most MaxDepth levels; otherwise Peek returns ErrSyntax. A key
// the policy or the audit depends on (method, id, params; name, uri, ref,
// protocolVersion, arguments in params; type, name, uri in params.ref) that
// appears twice in the same object, or in any other spelling a decoder
// could match to it, is rejected with ErrInvalidRequest rather than
// resolved: encoding/json (used by mcp-go) matches keys case-insensitively
// with Unicode simple folding (U+017F LATIN SMALL LETTER LONG S is an "s",
// U+212A KELVIN SIGN a "k", so "paramſ" is "params") and keeps the last
// duplicate, the go-sdk (segmentio/encoding/json) is case-sensitive, other
// parsers keep the first duplicate, and any difference would let a client
// show the policy one tool name, or the audit one set of arguments, and the
// server another. Escaped keys ("na\u006de", "param\u017f") are unescaped
// before matching.
// Returned strings are decoded as encoding/json decodes them (escapes
// resolved, invalid UTF-8 and lone surrogates replaced by U+FFFD).
//
// # Memory
//
// Strings returned alias the body when they need no decoding (no copy); the
// body must not be modified while the Messages are in use. Peek allocates
// only to decode strings with escapes and to grow dst.
package rpcpeek

import (
	"bytes"
	"errors"
	"fmt"
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

// String returns "request", "notification" or "response".
func (k Kind) String() string {
	switch k {
	case Request:
		return "request"
	case Notification:
		return "notification"
	case Response:
		return "response"
	}
	return "invalid"
}

// Message is what the middleware learns of one JSON-RPC message.
type Message struct {
	Kind Kind
	// ID is the raw JSON of the id (`7`, `"abc"`, `null`), nil if absent.
	ID []byte
	// Method is the JSON-RPC method ("" for responses).
	Method string
	// Name is params.name (tools/call, prompts/get), "" if absent or not a
	// string.
	Name string
	// URI is params.uri (resources/read, subscribe, unsubscribe).
	URI string
	// RefType, RefName and RefURI are params.ref of completion/complete.
	RefType, RefName, RefURI string
	// ProtocolVersion is params.protocolVersion (initialize).
	ProtocolVersion string
	// Params is the raw JSON of params, validated but not decoded (it
	// aliases the body), for the rare checks that need more than the fields
	// above (subscriptions/listen, opt-in audit of arguments).
	Params []byte
	// Arguments is the raw JSON of params.arguments (tools/call,
	// prompts/get), validated but not decoded (it aliases the body), nil if
	// absent: exactly the bytes every decoder hands the tool, since a
	// second "arguments" in any spelling is refused.
	Arguments []byte
}

// Errors. ErrSyntax means the body is not JSON, or nests deeper than
// MaxDepth (JSON-RPC -32700); ErrInvalidRequest means JSON that is not a
// JSON-RPC message or batch, or a message whose meaning parsers could
// disagree on (-32600). Returned errors match them with errors.Is and may
// carry detail (an offset, the ambiguous key).
var (
	ErrSyntax         = errors.New("rpcpeek: invalid JSON")
	ErrInvalidRequest = errors.New("rpcpeek: not a JSON-RPC message")
)

// MaxDepth bounds nesting, so hostile bodies cannot exhaust the stack. It
// matches the go-sdk's own limit (1000 levels).
const MaxDepth = 1000

var errTooDeep = fmt.Errorf("%w: nested deeper than %d levels", ErrSyntax, MaxDepth)

// ambiguous reports a watched key given twice or spelt in another case.
func ambiguous(key string) error {
	return fmt.Errorf("%w: key %q given twice or in another letter case", ErrInvalidRequest, key)
}

// Peek parses body as one JSON-RPC message or a batch (array) of them and
// appends each to dst[:0]. Pass a dst with capacity (a stack array) and
// Peek allocates nothing for messages without escaped strings. isBatch
// reports whether the body was an array.
//
// An empty batch, a batch element that is not a message object, or a body
// that is valid JSON but not an object or array returns ErrInvalidRequest
// (after checking the whole body is valid JSON). Syntax errors and
// ambiguous keys stop the scan at once.
func Peek(body []byte, dst []Message) (msgs []Message, isBatch bool, err error) {
	s := scanner{b: body}
	msgs, isBatch, err = s.top(dst[:0])
	if err == ErrSyntax {
		err = fmt.Errorf("%w at offset %d", ErrSyntax, s.i)
	}
	return msgs, isBatch, err
}

func (s *scanner) top(msgs []Message) ([]Message, bool, error) {
	s.ws()
	switch s.peek() {
	case '{':
		var m Message
		err := s.message(&m)
		if err != nil && err != errNotMessage {
			return msgs, false, err
		}
		if endErr := s.end(); endErr != nil {
			return msgs, false, endErr
		}
		if err == nil {
			err = s.ambig
		}
		if err != nil {
			return msgs, false, err
		}
		return append(msgs, m), false, nil
	case '[':
		s.i++
		s.ws()
		if s.peek() == ']' {
			s.i++
			if err := s.end(); err != nil {
				return msgs, true, err
			}
			return msgs, true, fmt.Errorf("%w: empty batch", ErrInvalidRequest)
		}
		var invalid error
		for {
			s.ws()
			if s.peek() == '{' {
				var m Message
				if err := s.message(&m); err == errNotMessage {
					invalid = err
				} else if err != nil {
					return msgs, true, err
				}
				msgs = append(msgs, m)
			} else {
				if err := s.value(1); err != nil {
					return msgs, true, err
				}
				invalid = fmt.Errorf("%w: batch element %d is not an object", ErrInvalidRequest, len(msgs))
				msgs = append(msgs, Message{})
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
		if invalid == nil {
			invalid = s.ambig
		}
		return msgs, true, invalid
	case 0:
		return msgs, false, ErrSyntax
	default:
		if err := s.value(0); err != nil {
			return msgs, false, err
		}
		if err := s.end(); err != nil {
			return msgs, false, err
		}
		return msgs, false, fmt.Errorf("%w: body is neither an object nor an array", ErrInvalidRequest)
	}
}

var errNotMessage = fmt.Errorf("%w: object is not a request, notification or response", ErrInvalidRequest)

type scanner struct {
	b     []byte
	i     int
	ambig error // first ambiguous key; reported after the syntax check
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

// Watched keys, as bits for duplicate detection.
const (
	kMethod uint16 = 1 << iota
	kID
	kParams
	kName
	kURI
	kRef
	kType
	kProtocolVersion
	kArguments
)

var (
	messageKeys = []watched{{"method", kMethod}, {"id", kID}, {"params", kParams}}
	paramsKeys  = []watched{{"name", kName}, {"uri", kURI}, {"ref", kRef}, {"protocolVersion", kProtocolVersion}, {"arguments", kArguments}}
	refKeys     = []watched{{"type", kType}, {"name", kName}, {"uri", kURI}}
)

type watched struct {
	key string
	bit uint16
}

// classify returns the bit of a watched key (0 for others). A duplicate or
// a variant of a watched key is recorded in s.ambig (reported once the
// whole body is known to be valid JSON) and its value skipped. A variant is
// any other spelling that bytes.EqualFold matches: other letter case and
// Unicode simple folding (U+017F is an s, U+212A a k), which is how
// encoding/json and segmentio's case-insensitive mode match struct fields.
// Escaped keys are compared unescaped, as every decoder reads them.
func (s *scanner) classify(key []byte, flags uint8, keys []watched, seen *uint16) uint16 {
	ascii := flags&strNonASCII == 0
	if flags&strEscaped != 0 {
		key, ascii = unescapeKey(key)
	}
	for _, w := range keys {
		// An ASCII key folds only to a key of its own length; a non-ASCII
		// one may be longer (U+017F is two bytes, U+212A three) and is
		// compared with every watched key.
		if ascii && len(key) != len(w.key) {
			continue
		}
		if string(key) == w.key {
			if *seen&w.bit != 0 {
				s.ambiguous(w.key)
				return 0
			}
			*seen |= w.bit
			return w.bit
		}
		if bytes.EqualFold(key, []byte(w.key)) {
			s.ambiguous(string(key))
			return 0
		}
	}
	return 0
}

// unescapeKey decodes an escaped key and reports whether the result is
// ASCII: "param\u017f" is not, whatever its escaped form.
func unescapeKey(raw []byte) ([]byte, bool) {
	k := appendUnescaped(make([]byte, 0, len(raw)), raw)
	for _, c := range k {
		if c >= utf8.RuneSelf {
			return k, false
		}
	}
	return k, true
}

func (s *scanner) ambiguous(key string) {
	if s.ambig == nil {
		s.ambig = ambiguous(key)
	}
}

// message reads one object. A syntactically valid object that is not a
// JSON-RPC message returns errNotMessage after being consumed.
func (s *scanner) message(m *Message) error {
	var seen uint16
	var hasResult bool
	methodOK := true
	err := s.object(1, func(key []byte, flags uint8) error {
		switch s.classify(key, flags, messageKeys, &seen) {
		case kMethod:
			str, ok, err := s.optString(1)
			if err != nil {
				return err
			}
			methodOK = ok
			m.Method = str
			return nil
		case kID:
			start := s.i
			if err := s.value(1); err != nil {
				return err
			}
			m.ID = s.b[start:s.i]
			return nil
		case kParams:
			start := s.i
			err := s.params(m)
			m.Params = s.b[start:s.i]
			return err
		}
		k := key
		if flags&strEscaped != 0 {
			k, _ = unescapeKey(key)
		}
		if string(k) == "result" || string(k) == "error" {
			hasResult = true
		}
		return s.value(1)
	})
	if err != nil {
		return err
	}
	hasMethod := seen&kMethod != 0
	switch {
	case hasMethod && methodOK && m.ID == nil:
		m.Kind = Notification
	case hasMethod && methodOK:
		m.Kind = Request
	case !hasMethod && hasResult && m.ID != nil:
		m.Kind = Response
	default:
		*m = Message{}
		return errNotMessage
	}
	return nil
}

func (s *scanner) params(m *Message) error {
	if s.peek() != '{' {
		return s.value(1) // positional params: nothing we need
	}
	var seen uint16
	return s.object(2, func(key []byte, flags uint8) error {
		var err error
		switch s.classify(key, flags, paramsKeys, &seen) {
		case kName:
			m.Name, _, err = s.optString(2)
		case kURI:
			m.URI, _, err = s.optString(2)
		case kProtocolVersion:
			m.ProtocolVersion, _, err = s.optString(2)
		case kRef:
			if s.peek() != '{' {
				return s.value(2)
			}
			var refSeen uint16
			return s.object(3, func(key []byte, flags uint8) error {
				var err error
				switch s.classify(key, flags, refKeys, &refSeen) {
				case kType:
					m.RefType, _, err = s.optString(3)
				case kName:
					m.RefName, _, err = s.optString(3)
				case kURI:
					m.RefURI, _, err = s.optString(3)
				default:
					err = s.value(3)
				}
				return err
			})
		case kArguments:
			start := s.i
			err = s.value(2) // validated, not decoded
			m.Arguments = s.b[start:s.i]
		default:
			err = s.value(2) // _meta, task, ...: skipped, not decoded
		}
		return err
	})
}

// object reads {...} calling fn for each key with the scanner positioned at
// the value (whitespace skipped); fn must consume the value.
func (s *scanner) object(depth int, fn func(key []byte, flags uint8) error) error {
	if depth > MaxDepth {
		return errTooDeep
	}
	s.i++ // '{'
	s.ws()
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		s.ws()
		key, flags, err := s.str()
		if err != nil {
			return err
		}
		s.ws()
		if s.peek() != ':' {
			return ErrSyntax
		}
		s.i++
		s.ws()
		if err := fn(key, flags); err != nil {
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

// optString reads a value; if it is a string it is returned decoded
// (ok=true), otherwise it is skipped and ok is false.
func (s *scanner) optString(depth int) (string, bool, error) {
	if s.peek() != '"' {
		return "", false, s.value(depth)
	}
	raw, flags, err := s.str()
	if err != nil {
		return "", false, err
	}
	if flags&strEscaped != 0 || flags&strNonASCII != 0 && !utf8.Valid(raw) {
		return unescape(raw), true, nil
	}
	return unsafe.String(unsafe.SliceData(raw), len(raw)), true, nil
}

const (
	strEscaped uint8 = 1 << iota
	strNonASCII
)

// plain marks bytes that need no attention inside a string.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str reads a string and returns its raw contents (between the quotes)
// and whether it has escapes or non-ASCII bytes. It validates escapes and
// rejects control characters.
func (s *scanner) str() ([]byte, uint8, error) {
	if s.peek() != '"' {
		return nil, 0, ErrSyntax
	}
	s.i++
	start := s.i
	var flags uint8
	b := s.b
	for i := s.i; i < len(b); {
		if plain[b[i]] {
			i++
			continue
		}
		switch c := b[i]; {
		case c == '"':
			s.i = i + 1
			return b[start:i], flags, nil
		case c == '\\':
			flags |= strEscaped
			i++
			if i >= len(b) {
				s.i = i
				return nil, 0, ErrSyntax
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if i+4 >= len(b) {
					s.i = i
					return nil, 0, ErrSyntax
				}
				for _, h := range b[i+1 : i+5] {
					if !isHex(h) {
						s.i = i
						return nil, 0, ErrSyntax
					}
				}
				i += 5
			default:
				s.i = i
				return nil, 0, ErrSyntax
			}
		case c < 0x20:
			s.i = i
			return nil, 0, ErrSyntax
		default: // >= 0x80
			flags |= strNonASCII
			i++
		}
	}
	s.i = len(b)
	return nil, 0, ErrSyntax
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// value skips any JSON value, validating it. depth is the nesting level of
// the container holding the value; an object or array it opens is at
// depth+1, and no level may exceed MaxDepth.
func (s *scanner) value(depth int) error {
	if depth > MaxDepth {
		return errTooDeep
	}
	s.ws()
	switch c := s.peek(); {
	case c == '{':
		return s.object(depth+1, func([]byte, uint8) error { return s.value(depth + 1) })
	case c == '[':
		if depth+1 > MaxDepth {
			return errTooDeep
		}
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
		s.digits()
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
	return string(appendUnescaped(make([]byte, 0, len(raw)), raw))
}

// appendUnescaped appends the decoded string body raw to out.
func appendUnescaped(out, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			if c < utf8.RuneSelf {
				out = append(out, c)
				i++
				continue
			}
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
	return out
}

func hex4(b []byte) rune {
	v, _ := strconv.ParseUint(string(b), 16, 32)
	return rune(v)
}

// errFound stops LeadingID's scan once the id is read.
var errFound = errors.New("rpcpeek: found")

// LeadingID returns the raw id of the single JSON-RPC message that prefix
// begins, when the id appears (whole) in prefix before the scan reaches its
// end or anything that is not JSON; prefix may be cut anywhere. It is for
// answering a body too large to read with the id of its request, and
// decides nothing: it takes the first "id" member, spelt exactly.
func LeadingID(prefix []byte) ([]byte, bool) {
	s := scanner{b: prefix}
	s.ws()
	if s.peek() != '{' {
		return nil, false
	}
	var id []byte
	err := s.object(1, func(key []byte, flags uint8) error {
		if flags&strEscaped == 0 && string(key) == "id" {
			start := s.i
			if err := s.value(1); err != nil {
				return err
			}
			if s.i < len(s.b) { // the value ended inside the prefix
				id = s.b[start:s.i]
				return errFound
			}
			return ErrSyntax
		}
		return s.value(1)
	})
	if err == errFound && (id[0] == '"' || id[0] == '-' || id[0] >= '0' && id[0] <= '9') {
		return id, true
	}
	return nil, false
}
