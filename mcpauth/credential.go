package mcpauth

import (
	"net/http"
	"strings"
)

// maxCredentialLen bounds the header value considered a key. Anything longer
// is malformed without further work. With Options.OAuth, credentials up to
// maxTokenLen are read (access tokens are longer), but only tokens may be
// that long: keys are still refused past maxCredentialLen by their shape.
const maxCredentialLen = 256

// credential extracts the one API key (or access token) a request carries,
// from the enabled sources, at most maxLen bytes long. Keys are never read
// from the URL. Two different keys (in two headers, or one header
// repeated) are ErrConflictingCredentials.
func credential(r *http.Request, bearerOnly bool, maxLen int) (string, error) {
	var key string
	for _, v := range r.Header["Authorization"] {
		tok, ok := bearerToken(v)
		if !ok {
			continue
		}
		if key != "" && key != tok {
			return "", ErrConflictingCredentials
		}
		key = tok
	}
	if !bearerOnly {
		for _, v := range r.Header["X-Api-Key"] {
			v = strings.TrimSpace(v)
			if v == "" {
				continue
			}
			if key != "" && key != v {
				return "", ErrConflictingCredentials
			}
			key = v
		}
	}
	if key == "" {
		return "", noCredential(r)
	}
	if len(key) > maxLen {
		return "", errMalformedKey
	}
	return key, nil
}

// bearerToken returns the token of an "Authorization: Bearer <token>" value.
// The scheme is case-insensitive (RFC 9110 §11.1).
func bearerToken(v string) (string, bool) {
	const scheme = "bearer "
	if len(v) < len(scheme) || v[:len(scheme)] != "Bearer " && !strings.EqualFold(v[:len(scheme)], scheme) {
		return "", false
	}
	tok := strings.TrimSpace(v[len(scheme):])
	return tok, tok != ""
}

// queryKeyNames are the URL query parameters clients put keys in; a request
// whose only key is there is told that it was ignored.
var queryKeyNames = []string{"access_token", "api_key", "apikey", "key", "token"}

// noCredential tells why a request has no usable key.
func noCredential(r *http.Request) error {
	for _, v := range r.Header["Authorization"] {
		if strings.TrimSpace(v) != "" {
			return ErrNotBearer
		}
	}
	if r.URL != nil && r.URL.RawQuery != "" {
		q := r.URL.Query()
		for _, n := range queryKeyNames {
			if q.Has(n) {
				return ErrKeyInQuery
			}
		}
	}
	return ErrNoCredential
}
