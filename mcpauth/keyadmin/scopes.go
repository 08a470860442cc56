package keyadmin

import "github.com/mcpauth/mcpauth/scope"

// validScope checks a scope against the scope package's grammar.
func validScope(s string) error {
	_, err := scope.Parse(s)
	return err
}

// scopeCovers reports whether the granted scopes cover required, by the
// scope package's hierarchy (admin and * cover all; documents:* covers
// documents:read; a plain action covers it on every resource). Unparsable
// scopes cover nothing.
func scopeCovers(granted []string, required string) bool {
	req, err := scope.Parse(required)
	if err != nil {
		return false
	}
	set, err := scope.ParseSet(granted)
	if err != nil {
		return false
	}
	return set.Allows(req)
}
