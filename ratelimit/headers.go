package ratelimit

import (
	"hash/maphash"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"
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
	new(HeaderValues).Set(h, d, legacy)
}

// Canonical spellings of the fields SetHeaders writes (what
// http.CanonicalHeaderKey makes of "RateLimit" and "RateLimit-Policy"):
// written under these keys, the map needs no canonicalisation per response.
// On the wire field names are case-insensitive.
const (
	HeaderRateLimit       = "Ratelimit"
	HeaderRateLimitPolicy = "Ratelimit-Policy"
)

// HeaderValues holds the values of one response's rate-limit fields, so
// that writing them costs at most the one allocation of the HeaderValues
// (none when it is part of a larger per-request value). Once Set, it belongs
// to the header it was written to: do not reuse it for another response.
// The zero value is ready to use.
type HeaderValues struct {
	vals [2]string // RateLimit-Policy, RateLimit
	buf  [96]byte  // the RateLimit value
}

// Set writes d to h as SetHeaders does. The RateLimit-Policy value is the
// same for every decision of one policy and is built once per policy (a
// small process-wide cache); the RateLimit value is formatted into hv. The
// legacy fields and Retry-After, rarer, allocate as usual.
func (hv *HeaderValues) Set(h http.Header, d Decision, legacy bool) {
	hv.vals[0] = policyValue(d)
	h[HeaderRateLimitPolicy] = hv.vals[0:1:1]

	reset := ceilSeconds(d.ResetAfter)
	r := appendSFString(hv.buf[:0], d.Policy)
	r = append(r, ";r="...)
	r = strconv.AppendInt(r, int64(max(d.Remaining, 0)), 10)
	r = append(r, ";t="...)
	r = strconv.AppendInt(r, reset, 10)
	if len(r) <= len(hv.buf) {
		// hv.buf is never written again: the string is immutable.
		hv.vals[1] = unsafe.String(&hv.buf[0], len(r))
	} else {
		hv.vals[1] = string(r) // a long policy name
	}
	h[HeaderRateLimit] = hv.vals[1:2:2]

	if legacy {
		h.Set("X-RateLimit-Limit", strconv.Itoa(max(d.Limit, 0)))
		h.Set("X-RateLimit-Remaining", strconv.Itoa(max(d.Remaining, 0)))
		h.Set("X-RateLimit-Reset", strconv.FormatInt(reset, 10))
	}
	if !d.Allowed {
		h.Set("Retry-After", strconv.FormatInt(max(ceilSeconds(d.RetryAfter), 1), 10))
	}
}

// policyKey is what a RateLimit-Policy value depends on.
type policyKey struct {
	name   string
	limit  int
	window time.Duration
}

type policyEntry struct {
	key   policyKey
	value string
}

// policyCache is a direct-mapped cache of RateLimit-Policy values: a
// deployment has a handful of policies, so nearly every response finds its
// value here instead of formatting it.
var (
	policyCache     [64]atomic.Pointer[policyEntry]
	policyCacheSeed = maphash.MakeSeed()
)

// policyValue returns the RateLimit-Policy value of d, from the cache when
// it is there.
func policyValue(d Decision) string {
	k := policyKey{name: d.Policy, limit: max(d.Limit, 0), window: d.Window}
	slot := &policyCache[(maphash.String(policyCacheSeed, k.name)^uint64(k.limit)*0x9e3779b97f4a7c15^uint64(k.window))&63]
	if e := slot.Load(); e != nil && e.key == k {
		return e.value
	}
	var buf [96]byte
	p := appendSFString(buf[:0], k.name)
	p = append(p, ";q="...)
	p = strconv.AppendInt(p, int64(k.limit), 10)
	if k.window > 0 && k.window%time.Second == 0 {
		p = append(p, ";w="...)
		p = strconv.AppendInt(p, int64(k.window/time.Second), 10)
	}
	e := &policyEntry{key: policyKey{name: strings.Clone(k.name), limit: k.limit, window: k.window}, value: string(p)}
	slot.Store(e)
	return e.value
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
