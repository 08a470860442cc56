package mcpauth

import (
	"fmt"
	"regexp"

	"github.com/mcpauth/mcpauth/mcpauth/apikey"
)

// Legacy key shape: a credential is tried as a legacy key (one store
// lookup) only if it is minLegacyKeyLen to maxLegacyKeyLen characters of
// the RFC 6750 token alphabet (A-Z, a-z, 0-9, "-", ".", "_", "~", "+", "/",
// and "=" only at the end), as hand-rolled keys are ("mcp_" and 64 hex
// digits in the seed, "sk_live_..." elsewhere). Anything else, and
// anything shaped like a key of the current format whose checksum failed
// (a typo or a forgery, never a legacy key), is refused without a lookup.
const (
	minLegacyKeyLen = 16
	maxLegacyKeyLen = 256
)

// legacyFilter decides which credentials are tried as legacy keys: the
// built-in shape, then the operator's Options.LegacyKeyPattern if any.
type legacyFilter struct {
	prefix  string
	pattern *regexp.Regexp // anchored; nil means shape only
}

// newLegacyFilter compiles Options.LegacyKeyPattern, anchored at both
// ends so that it must match the whole credential.
func newLegacyFilter(prefix, pattern string) (legacyFilter, error) {
	f := legacyFilter{prefix: prefix}
	if pattern == "" {
		return f, nil
	}
	re, err := regexp.Compile(`^(?:` + pattern + `)$`)
	if err != nil {
		return legacyFilter{}, fmt.Errorf("mcpauth: LegacyKeyPattern: %w", err)
	}
	f.pattern = re
	return f, nil
}

// accepts reports whether raw, which did not parse as a current key, may
// be a legacy key and is worth a store lookup.
func (f legacyFilter) accepts(raw string) bool {
	if len(raw) < minLegacyKeyLen || len(raw) > maxLegacyKeyLen || raw[0] == '=' {
		return false // padding alone is not a key
	}
	pad := false
	for i := range len(raw) {
		c := raw[i]
		switch {
		case c == '=':
			pad = true
		case pad: // only "=" after the first "="
			return false
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~', c == '+', c == '/':
		default:
			return false
		}
	}
	if apikey.HasKeyShape(raw, f.prefix) {
		return false
	}
	return f.pattern == nil || f.pattern.MatchString(raw)
}
