package scope

import "strings"

// glob is a compiled pattern where '*' matches any run of bytes (including
// '/' and the empty run) and every other byte matches itself.
type glob struct {
	parts []string // pattern split at '*'
	fold  bool     // ASCII case-insensitive
}

func compileGlob(p string, fold bool) glob { return glob{parts: strings.Split(p, "*"), fold: fold} }

func isGlob(p string) bool { return strings.IndexByte(p, '*') >= 0 }

// match reports whether s matches the whole pattern. It does not allocate.
func (g glob) match(s string) bool {
	parts := g.parts
	if len(parts) == 1 {
		return g.eq(s, parts[0])
	}
	first, last := parts[0], parts[len(parts)-1]
	if len(s) < len(first)+len(last) || !g.eq(s[:len(first)], first) || !g.eq(s[len(s)-len(last):], last) {
		return false
	}
	s = s[len(first) : len(s)-len(last)]
	for _, p := range parts[1 : len(parts)-1] {
		i := g.index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return true
}

func (g glob) eq(a, b string) bool {
	if !g.fold {
		return a == b
	}
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

func (g glob) index(s, sub string) int {
	if !g.fold {
		return strings.Index(s, sub)
	}
	for i := 0; i+len(sub) <= len(s); i++ {
		if g.eq(s[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
