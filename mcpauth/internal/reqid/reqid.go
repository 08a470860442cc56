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
	if v := r.Header.Get(header); sane(v) {
		return v
	}
	return audit.NewEventID()
}

// Read is From for callers that keep the ID in memory of their own: a new
// ID is written into buf (no allocation). header must be in canonical form
// (http.CanonicalHeaderKey): it indexes the header map directly, without
// canonicalising it per request. It reports whether the ID is new (made
// here) rather than the client's.
func Read(r *http.Request, header string, buf *[audit.EventIDLen]byte) (id string, made bool) {
	if vs := r.Header[header]; len(vs) > 0 && sane(vs[0]) {
		return vs[0], false
	}
	audit.AppendEventID(buf[:0])
	// buf is written once, here: the string is immutable from now on.
	return unsafe.String(&buf[0], len(buf)), true
}

// sane reports whether v is a request ID to keep: 1 to maxLen letters,
// digits, - _ . or :.
func sane(v string) bool {
	if v == "" || len(v) > maxLen {
		return false
	}
	for i := range len(v) {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}
