package ratelimit

import (
	"net/http"
	"strconv"
	"time"
)

// SetHeaders writes d to h:
//
//	RateLimit-Policy: "default";q=100;w=60
//	RateLimit: "default";r=42;t=18
//
// as defined by draft-ietf-httpapi-ratelimit-headers (-10/-11): the policy
// name is a Structured Field String (RFC 8941 sf-string: `"` and `\` are
// escaped, bytes outside printable ASCII become '?'), q is Decision.Limit,
// w is Decision.Window in whole seconds (left out when the window is not a
// whole number of seconds, since the draft has no sub-second windows), r is
// Decision.Remaining and t is Decision.ResetAfter in seconds, rounded up.
//
// With legacy, it also writes X-RateLimit-Limit, X-RateLimit-Remaining and
// X-RateLimit-Reset (seconds until the bucket is full, rounded up; a delay,
// not a timestamp).
//
// Existing values of these fields are replaced; other fields are left
// alone. When d is a denial it writes Retry-After: d.RetryAfter in whole seconds,
// rounded up, at least 1, so a client that obeys it is never early.
func SetHeaders(h http.Header, d Decision, legacy bool) {
	var buf [96]byte
	name := appendSFString(buf[:0], d.Policy)

	p := append([]byte(nil), name...)
	p = append(p, ";q="...)
	p = strconv.AppendInt(p, int64(max(d.Limit, 0)), 10)
	if d.Window > 0 && d.Window%time.Second == 0 {
		p = append(p, ";w="...)
		p = strconv.AppendInt(p, int64(d.Window/time.Second), 10)
	}
	h.Set("RateLimit-Policy", string(p))

	reset := ceilSeconds(d.ResetAfter)
	r := append(name, ";r="...)
	r = strconv.AppendInt(r, int64(max(d.Remaining, 0)), 10)
	r = append(r, ";t="...)
	r = strconv.AppendInt(r, reset, 10)
	h.Set("RateLimit", string(r))

	if legacy {
		h.Set("X-RateLimit-Limit", strconv.Itoa(max(d.Limit, 0)))
		h.Set("X-RateLimit-Remaining", strconv.Itoa(max(d.Remaining, 0)))
		h.Set("X-RateLimit-Reset", strconv.FormatInt(reset, 10))
	}
	if !d.Allowed {
		h.Set("Retry-After", strconv.FormatInt(max(ceilSeconds(d.RetryAfter), 1), 10))
	}
}

// ceilSeconds returns d in whole seconds, rounded up; negative d is 0.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	s := int64(d / time.Second)
	if d%time.Second != 0 {
		s++
	}
	return s
}

// appendSFString appends s as an RFC 8941 sf-string. An empty name becomes
// "default".
func appendSFString(b []byte, s string) []byte {
	if s == "" {
		s = "default"
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c > 0x7e:
			b = append(b, '?')
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
