// Package reqid reads and makes request IDs, for the Guard and the keys
// HTTP handler.
package reqid

import (
	"net/http"

	"github.com/mcpauth/mcpauth/audit"
)

// maxLen bounds a client-supplied request ID.
const maxLen = 64

// From returns the request's header value if it is a sane token (letters,
// digits, - _ . : at most 64), else a new ID.
func From(r *http.Request, header string) string {
	if v := r.Header.Get(header); v != "" && len(v) <= maxLen {
		ok := true
		for i := range len(v) {
			c := v[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
				ok = false
				break
			}
		}
		if ok {
			return v
		}
	}
	return audit.NewEventID()
}
