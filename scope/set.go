package scope

import (
	"slices"
	"strconv"
	"strings"
)

// Set is an immutable set of granted scopes. The zero Set grants nothing.
// A Set is safe for concurrent use; checking it does not allocate.
type Set struct {
	list []Scope // sorted by string, no duplicates
	all  bool    // contains "*" or "admin"
}

// NewSet returns the set of the given scopes; zero Scopes are dropped.
func NewSet(scopes ...Scope) Set {
	list := make([]Scope, 0, len(scopes))
	for _, s := range scopes {
		if !s.IsZero() {
			list = append(list, s)
		}
	}
	slices.SortFunc(list, func(a, b Scope) int { return strings.Compare(a.s, b.s) })
	list = slices.Compact(list)
	set := Set{list: list}
	for _, s := range list {
		if s.s == "*" || s.s == "admin" {
			set.all = true
		}
	}
	return set
}

// ParseSet parses every string with Parse. An error names the index of the
// first bad entry (`scopes[2]: invalid scope "docs::read": ...`) and wraps
// ErrInvalidScope. Duplicates are merged; an empty or nil slice gives the
// empty Set.
func ParseSet(scopes []string) (Set, error) {
	list := make([]Scope, 0, len(scopes))
	for i, s := range scopes {
		sc, err := Parse(s)
		if err != nil {
			return Set{}, &FieldError{Field: "scopes[" + strconv.Itoa(i) + "]", Err: err}
		}
		list = append(list, sc)
	}
	return NewSet(list...), nil
}

// MustParseSet is ParseSet that panics on error, for sets written in code.
func MustParseSet(scopes ...string) Set {
	s, err := ParseSet(scopes)
	if err != nil {
		panic(err)
	}
	return s
}

// Allows reports whether some scope in the set grants required (see
// Scope.Allows). It does not allocate.
func (s Set) Allows(required Scope) bool {
	if required.s == "" {
		return false
	}
	if s.all {
		return true
	}
	for _, g := range s.list {
		if g.Allows(required) {
			return true
		}
	}
	return false
}

// AllowsAll reports whether the set grants every scope in required. An
// empty required list is allowed.
func (s Set) AllowsAll(required []Scope) bool {
	for _, r := range required {
		if !s.Allows(r) {
			return false
		}
	}
	return true
}

// Missing returns the scopes of required the set does not grant, nil if
// none.
func (s Set) Missing(required []Scope) []Scope {
	var out []Scope
	for _, r := range required {
		if !s.Allows(r) {
			out = append(out, r)
		}
	}
	return out
}

// Len returns the number of distinct scopes in the set.
func (s Set) Len() int { return len(s.list) }

// Scopes returns the scopes in canonical order, as a new slice.
func (s Set) Scopes() []Scope { return slices.Clone(s.list) }

// Strings returns the canonical strings of the scopes, sorted.
func (s Set) Strings() []string {
	out := make([]string, len(s.list))
	for i, sc := range s.list {
		out[i] = sc.s
	}
	return out
}

// String returns the canonical form: the scopes sorted bytewise and
// joined with single spaces, as in OAuth's scope parameter
// ("documents:read read"). The empty Set returns "".
func (s Set) String() string { return Join(s.list) }

// Join returns the canonical strings of scopes joined by single spaces, in
// the given order.
func Join(scopes []Scope) string {
	switch len(scopes) {
	case 0:
		return ""
	case 1:
		return scopes[0].s
	}
	var b strings.Builder
	for i, sc := range scopes {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(sc.s)
	}
	return b.String()
}
