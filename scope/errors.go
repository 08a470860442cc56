package scope

import (
	"errors"
	"strings"
)

// ErrInvalidPolicy is matched (errors.Is) by every error NewPolicy and
// LoadPolicy return for a bad configuration.
var ErrInvalidPolicy = errors.New("mcpauth/scope: invalid policy")

// FieldError names the field of a scope list or policy that is wrong, as a
// path such as "tools[2].scopes[0]", and wraps the underlying error (a
// *ParseError for bad scopes).
type FieldError struct {
	Field  string
	Err    error
	policy bool
}

func (e *FieldError) Error() string {
	prefix := "mcpauth/scope: "
	if e.policy {
		prefix = "mcpauth/scope: invalid policy: "
	}
	return prefix + e.Field + ": " + strings.TrimPrefix(e.Err.Error(), "mcpauth/scope: ")
}

// Unwrap returns the underlying error.
func (e *FieldError) Unwrap() error { return e.Err }

// Is makes policy errors match ErrInvalidPolicy.
func (e *FieldError) Is(target error) bool { return e.policy && target == ErrInvalidPolicy }
