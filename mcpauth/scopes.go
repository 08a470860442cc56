package mcpauth

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// validScope checks a scope string's characters.
func validScope(s string) error {
	if s == "" || len(s) > 128 {
		return errors.New("must be 1-128 characters")
	}
	for i := range len(s) {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(":*._-/", c) >= 0) {
			return fmt.Errorf("invalid character %q", c)
		}
	}
	return nil
}

// scopeCovers reports whether granted covers required: admin and * cover
// everything, res:* covers res:<anything>, otherwise the exact scope.
func scopeCovers(granted []string, required string) bool {
	if slices.Contains(granted, "admin") || slices.Contains(granted, "*") || slices.Contains(granted, required) {
		return true
	}
	if res, _, ok := strings.Cut(required, ":"); ok {
		return slices.Contains(granted, res+":*")
	}
	return false
}
