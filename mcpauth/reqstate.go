package mcpauth

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
	"time"
	"unsafe"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/mcpauth/internal/reqid"
	"github.com/mcpauth/mcpauth/ratelimit"
)

// outliving is what one request leaves behind that may outlive it: the
// handler's context, the response header values, the strings of its audit
// events. The exchange lives on serve's stack; these cannot, so they are
// one allocation per request instead of one each. Every buffer in it is
// written once and then only read, so the strings made over them are
// immutable.
type outliving struct {
	// handlerCtx is the context the handler gets: the request's context
	// with the key's entry (what PrincipalFrom reads).
	handlerCtx entryCtx

	requestID [1]string              // the X-Request-Id value
	idBuf     [audit.EventIDLen]byte // a request ID made here
}

// outlivingMore is what outlives a request of a Guard with rate limiting
// or audit, in the same allocation as its outliving (see newOutliving), so
// that the authentication-only path allocates a fraction as much (less
// garbage, fewer GC cycles). Its methods take a nil receiver, and then
// allocate what they return.
type outlivingMore struct {
	// detached is a context for audit Records: it never ends (a client
	// that hangs up does not cut short a Blocking Record), like
	// context.WithoutCancel.
	detached detachedCtx

	rate     ratelimit.HeaderValues // RateLimit, RateLimit-Policy
	ipBuf    [len("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255%")]byte
	toolBuf  [48]byte // a tools/call's name, for the audit event
	toolUsed bool
}

// newOutliving returns a request's outliving state, one allocation; with
// more, an outlivingMore in the same allocation, else nil.
func newOutliving(more bool) (*outliving, *outlivingMore) {
	if !more {
		return new(outliving), nil
	}
	both := new(struct {
		outliving
		more outlivingMore
	})
	return &both.outliving, &both.more
}

// rateValues returns the buffers of the RateLimit header values: m's, or
// new ones when m is nil.
func (m *outlivingMore) rateValues() *ratelimit.HeaderValues {
	if m == nil {
		return new(ratelimit.HeaderValues)
	}
	return &m.rate
}

// setRequestID reads or makes the request ID and writes its header. It
// reports whether the ID was made here (then it may serve as the ID of the
// request's first audit event: both come from audit's ID generator).
func (o *outliving) setRequestID(w http.ResponseWriter, r *http.Request, header string) (string, bool) {
	id, made := reqid.Read(r, header, &o.idBuf)
	o.requestID[0] = id
	w.Header()[header] = o.requestID[:1:1]
	return id, made
}

// formatIP returns ip as a string, formatted into m when it fits (an IPv6
// address with a long zone does not).
func (m *outlivingMore) formatIP(ip netip.Addr) string {
	if m == nil {
		return ip.String()
	}
	b := ip.AppendTo(m.ipBuf[:0])
	if len(b) > len(m.ipBuf) || len(b) == 0 {
		return string(b)
	}
	return unsafe.String(&m.ipBuf[0], len(b))
}

// cloneTool returns a copy of s: in m for the request's first tool name
// that fits, else a new string.
func (m *outlivingMore) cloneTool(s string) string {
	if m == nil || m.toolUsed || len(s) == 0 || len(s) > len(m.toolBuf) {
		return strings.Clone(s)
	}
	m.toolUsed = true
	n := copy(m.toolBuf[:], s)
	return unsafe.String(&m.toolBuf[0], n)
}

// withEntry returns ctx with e for the handler, in o.
func (o *outliving) withEntry(ctx context.Context, e *cacheEntry) context.Context {
	o.handlerCtx = entryCtx{Context: ctx, entry: e}
	return &o.handlerCtx
}

// detach returns ctx without its cancellation and deadline, in m. Only the
// first call's ctx is kept: a context once handed out never changes.
func (m *outlivingMore) detach(ctx context.Context) context.Context {
	if m == nil {
		return context.WithoutCancel(ctx)
	}
	if m.detached.parent == nil {
		m.detached.parent = ctx
	}
	return &m.detached
}

// entryCtx is context.WithValue(ctx, principalKey{}, entry), without an
// allocation of its own.
type entryCtx struct {
	context.Context
	entry *cacheEntry
}

func (c *entryCtx) Value(key any) any {
	if _, ok := key.(principalKey); ok {
		return c.entry
	}
	return c.Context.Value(key)
}

// detachedCtx is context.WithoutCancel(parent), without an allocation of
// its own.
type detachedCtx struct{ parent context.Context }

func (detachedCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (detachedCtx) Done() <-chan struct{}       { return nil }
func (detachedCtx) Err() error                  { return nil }
func (c *detachedCtx) Value(key any) any        { return c.parent.Value(key) }
func (c *detachedCtx) String() string           { return "mcpauth.detached" }
