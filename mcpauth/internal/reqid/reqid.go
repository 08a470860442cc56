// Package reqid reads and makes request IDs, for the Guard and the keys
// HTTP handler.
package reqid

import (
	"net/http"
	"unsafe"

	"github.com/mcpauth/mcpauth/audit"
)

// maxLen bounds a client-supplied request ID.
const maxLen = 64

// From returns the request's header value if it is a sane token (letters,
// digits, - _ . : at most 64), else a new ID.
func From(r *http.Request, header string) string {
	id, _ := Read(r, header, nil)
	return id
}

// Read is From for callers that keep the ID in memory of their own: a new
// ID is written into buf (no allocation) when buf is not nil. It reports
// whether the ID is new (made here) rather than the client's.
func Read(r *http.Request, header string, buf *[audit.EventIDLen]byte) (id string, made bool) {
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
			return v, false
		}
	}
	if buf == nil {
		return audit.NewEventID(), true
	}
	audit.AppendEventID(buf[:0])
	// buf is written once, here: the string is immutable from now on.
	return unsafe.String(&buf[0], len(buf)), true
}
