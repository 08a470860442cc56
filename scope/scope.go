package scope

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// MaxLen is the longest scope Parse accepts, in bytes.
const MaxLen = 128

// ErrInvalidScope is wrapped by every error Parse and ParseSet return.
var ErrInvalidScope = errors.New("mcpauth/scope: invalid scope")

// ParseError describes a string that is not a scope. It matches
// ErrInvalidScope with errors.Is.
type ParseError struct {
	Input  string // the rejected string (truncated to 2*MaxLen bytes)
	Reason string // why, e.g. `empty action after ":"`
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("mcpauth/scope: invalid scope %q: %s", e.Input, e.Reason)
}

// Is reports whether target is ErrInvalidScope.
func (e *ParseError) Is(target error) bool { return target == ErrInvalidScope }

// Scope is one parsed scope: a plain action ("read"), a resource-qualified
// action ("documents:read"), a resource wildcard ("documents:*") or the
// global wildcard ("*"). The zero Scope is invalid and allows nothing.
//
// Scopes are comparable values; compare them with ==.
type Scope struct {
	s     string
	colon int // index of ':' in s, or -1 (0 only in the zero Scope)
}

// Well-known scopes. Admin and All grant every scope; Read, Write and
// Delete are the seed's plain scopes and apply to every resource.
var (
	All    = Scope{s: "*", colon: -1}
	Admin  = Scope{s: "admin", colon: -1}
	Read   = Scope{s: "read", colon: -1}
	Write  = Scope{s: "write", colon: -1}
	Delete = Scope{s: "delete", colon: -1}
)

// Parse parses s as a scope. The grammar is
//
//	scope    = "*" | action | resource ":" action | resource ":*"
//	resource = segment
//	action   = segment
//	segment  = 1*( ALPHA / DIGIT / "." / "_" / "-" / "/" )
//
// at most MaxLen bytes, case-sensitive, no surrounding space. "*" may only
// stand for a whole scope or a whole action; "*:read" is rejected because
// the plain action "read" already applies to every resource.
func Parse(s string) (Scope, error) {
	if s == "" {
		return Scope{}, &ParseError{Input: s, Reason: "empty"}
	}
	if len(s) > MaxLen {
		return Scope{}, &ParseError{Input: s[:min(len(s), 2*MaxLen)], Reason: fmt.Sprintf("longer than %d bytes", MaxLen)}
	}
	if s == "*" {
		return All, nil
	}
	colon := -1
	for i := range len(s) {
		c := s[i]
		switch {
		case segmentChar(c):
		case c == ':':
			if colon >= 0 {
				return Scope{}, &ParseError{Input: s, Reason: `more than one ":"`}
			}
			colon = i
		case c == '*':
			// Only valid as the whole action of a qualified scope.
			if colon < 0 || i != colon+1 || i != len(s)-1 {
				if colon < 0 && i == 0 && len(s) > 1 && s[1] == ':' {
					return Scope{}, &ParseError{Input: s, Reason: `wildcard resource not allowed; a plain action such as "read" already applies to every resource`}
				}
				return Scope{}, &ParseError{Input: s, Reason: `"*" must be the whole scope or the whole action ("documents:*")`}
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			return Scope{}, &ParseError{Input: s, Reason: fmt.Sprintf("whitespace at byte %d (one scope per entry)", i)}
		default:
			r, _ := utf8.DecodeRuneInString(s[i:])
			return Scope{}, &ParseError{Input: s, Reason: fmt.Sprintf("invalid character %q at byte %d (allowed: ASCII letters, digits, . _ - / and one :)", r, i)}
		}
	}
	switch {
	case colon == 0:
		return Scope{}, &ParseError{Input: s, Reason: `empty resource before ":"`}
	case colon == len(s)-1:
		return Scope{}, &ParseError{Input: s, Reason: `empty action after ":"`}
	}
	return Scope{s: s, colon: colon}, nil
}

// MustParse is Parse that panics on error, for scopes written in code.
func MustParse(s string) Scope {
	sc, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return sc
}

func segmentChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '.' || c == '_' || c == '-' || c == '/'
}

// String returns the canonical form, which Parse accepts and maps back to
// the same Scope. The zero Scope returns "".
func (s Scope) String() string { return s.s }

// IsZero reports whether s is the zero (invalid) Scope.
func (s Scope) IsZero() bool { return s.s == "" }

// Resource returns the resource of a qualified scope ("documents" for
// "documents:read"), or "" for plain scopes and "*".
func (s Scope) Resource() string {
	if s.colon <= 0 {
		return ""
	}
	return s.s[:s.colon]
}

// Action returns the action ("read" for both "read" and "documents:read",
// "*" for "documents:*" and "*"). Admin's action is "admin".
func (s Scope) Action() string {
	if s.colon <= 0 {
		return s.s
	}
	return s.s[s.colon+1:]
}

// Allows reports whether holding s grants required:
//
//   - "admin" and "*" grant every scope;
//   - "documents:*" grants "documents:*" and every "documents:<action>";
//   - a plain action ("read") grants itself and that action on every
//     resource ("documents:read"), nothing else;
//   - a qualified scope ("documents:read") grants only itself.
//
// No action implies another: "write" does not grant "read" or "delete",
// "documents:read" does not grant the plain "read". The zero Scope neither
// grants nor is granted anything.
func (s Scope) Allows(required Scope) bool {
	if s.s == "" || required.s == "" {
		return false
	}
	if s.s == "*" || s.s == "admin" || s.s == required.s {
		return true
	}
	if s.colon < 0 {
		// Plain action: applies to every resource.
		return required.colon > 0 && required.s[required.colon+1:] == s.s
	}
	// Qualified: "res:*" covers "res:<anything>".
	return s.s[s.colon+1:] == "*" && required.colon == s.colon && required.s[:s.colon] == s.s[:s.colon]
}

// MarshalText implements encoding.TextMarshaler.
func (s Scope) MarshalText() ([]byte, error) {
	if s.s == "" {
		return nil, &ParseError{Input: "", Reason: "zero Scope"}
	}
	return []byte(s.s), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with Parse.
func (s *Scope) UnmarshalText(b []byte) error {
	sc, err := Parse(string(b))
	if err != nil {
		return err
	}
	*s = sc
	return nil
}
