package scope

import "strings"

// glob is a compiled pattern where '*' matches any run of bytes (including
// '/' and the empty run) and every other byte matches itself.
type glob struct {
	parts []string // pattern split at '*', lower-cased (ASCII) when fold
	fold  bool     // ASCII case-insensitive
}

func compileGlob(p string, fold bool) glob {
	if fold {
		p = asciiLower(p)
	}
	return glob{parts: strings.Split(p, "*"), fold: fold}
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		b[i] = lower(c)
	}
	return string(b)
}

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

// eq reports whether a equals the pattern part b (already lower-cased
// when folding).
func (g glob) eq(a, b string) bool {
	if !g.fold {
		return a == b
	}
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		if lower(a[i]) != b[i] {
			return false
		}
	}
	return true
}

// index is strings.Index of the pattern part sub, folding case when g
// does. It jumps between candidates with strings.IndexByte.
func (g glob) index(s, sub string) int {
	if !g.fold || sub == "" {
		return strings.Index(s, sub)
	}
	c0, c1 := sub[0], sub[0]
	if c0 >= 'a' && c0 <= 'z' {
		c1 = c0 - 'a' + 'A'
	}
	for i := 0; i+len(sub) <= len(s); i++ {
		j := strings.IndexByte(s[i:len(s)-len(sub)+1], c0)
		if c1 != c0 {
			if k := strings.IndexByte(s[i:len(s)-len(sub)+1], c1); k >= 0 && (j < 0 || k < j) {
				j = k
			}
		}
		if j < 0 {
			return -1
		}
		i += j
		if g.eq(s[i+1:i+len(sub)], sub[1:]) {
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
