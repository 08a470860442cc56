package mcpauth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/mcpauth/mcpauth/mcpauth/apikey"
)

// FuzzCredential checks credential extraction against its contract: it
// never panics, never takes a key from the URL, returns the one credential
// the enabled headers carry, and refuses two different ones.
func FuzzCredential(f *testing.F) {
	key := "mcp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789ABCDEF"
	f.Add("Bearer "+key, "", "", "", "", uint8(0))
	f.Add("", "", key, "", key, uint8(0))
	f.Add("Bearer "+key, "", key, "", "", uint8(0))
	f.Add("Bearer "+key, "Bearer other", "", "", "", uint8(0))
	f.Add("bearer "+key, "BEARER "+key, " "+key+" ", key, "", uint8(0))
	f.Add("Bearer "+key, "", "other", "", "", uint8(1))
	f.Add("Bearer "+key, "", "other", "", "", uint8(2))
	f.Add("Basic dXNlcjpwYXNz", "", "", "", key, uint8(0))
	f.Add("Bearer", "Bearer ", "", " ", key, uint8(0))
	f.Add("Bearer "+strings.Repeat("a", 300), "", "", "", "", uint8(0))
	f.Add("Bearer a, Bearer b", "", "", "", "", uint8(0))
	f.Add("Bearer\t"+key, "", "", "", "", uint8(0))
	f.Add("Bearer "+key+"\u00a0", "", key, "", "", uint8(0))
	f.Add("", "", "", "", "Bearer "+key, uint8(0))
	f.Fuzz(func(t *testing.T, auth1, auth2, api1, api2, query string, mode uint8) {
		bearerOnly := mode%2 == 1
		q := url.Values{"api_key": {query}, "key": {query}, "access_token": {query}, "token": {query}}
		r := httptest.NewRequest(http.MethodPost, "/mcp?"+q.Encode(), nil)
		add := func(name string, vals ...string) {
			for _, v := range vals {
				if v != "" {
					r.Header[name] = append(r.Header[name], v)
				}
			}
		}
		add("Authorization", auth1, auth2)
		add("X-Api-Key", api1, api2)

		// What the enabled headers carry, by the documented rules.
		distinct := map[string]bool{}
		for _, v := range r.Header["Authorization"] {
			if len(v) >= 7 && strings.EqualFold(v[:7], "bearer ") {
				if tok := strings.TrimSpace(v[7:]); tok != "" {
					distinct[tok] = true
				}
			}
		}
		if !bearerOnly {
			for _, v := range r.Header["X-Api-Key"] {
				if v = strings.TrimSpace(v); v != "" {
					distinct[v] = true
				}
			}
		}

		got, err := credential(r, bearerOnly, maxCredentialLen)
		switch {
		case len(distinct) == 0:
			if !errors.Is(err, ErrNoCredential) {
				t.Fatalf("no credential in the enabled headers (query %q): got %q, %v", query, got, err)
			}
		case len(distinct) > 1:
			if !errors.Is(err, ErrConflictingCredentials) {
				t.Fatalf("two different credentials %v: got %q, %v", distinct, got, err)
			}
		case err != nil:
			var only string
			for k := range distinct {
				only = k
			}
			if !(len(only) > maxCredentialLen && errors.Is(err, apikey.ErrMalformedKey)) {
				t.Fatalf("one credential %q: unexpected error %v", only, err)
			}
		default:
			if !distinct[got] {
				t.Fatalf("credential %q is not what the headers carry (%v)", got, distinct)
			}
			if len(got) > maxCredentialLen {
				t.Fatalf("accepted a %d-byte credential", len(got))
			}
		}
	})
}
