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
// events. The exchange is pooled and reused; these cannot be, so they are
// one allocation per request instead of one each. Every buffer in it is
// written once and then only read, so the strings made over them are
// immutable.
type outliving struct {
	// handlerCtx is the context the handler gets: the request's context
	// with the key's entry (what PrincipalFrom reads).
	handlerCtx entryCtx
	// detached is a context for audit Records: it never ends (a client
	// that hangs up does not cut short a Blocking Record), like
	// context.WithoutCancel.
	detached detachedCtx

	requestID [1]string              // the X-Request-Id value
	idBuf     [audit.EventIDLen]byte // a request ID made here

	// more holds the buffers only rate limiting and audit use, in the same
	// allocation (see newOutliving); nil for a Guard with neither, so that
	// the authentication-only path allocates a third as much (less garbage,
	// fewer GC cycles, fewer write barriers on the request copy).
	more *outlivingMore
}

// outlivingMore is the part of outliving for rate limiting and audit.
type outlivingMore struct {
	rate     ratelimit.HeaderValues // RateLimit, RateLimit-Policy
	ipBuf    [len("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255%")]byte
	toolBuf  [48]byte // a tools/call's name, for the audit event
	toolUsed bool
}

// newOutliving returns a request's outliving state, one allocation; with
// more, its outlivingMore is in the same allocation.
func newOutliving(more bool) *outliving {
	if !more {
		return new(outliving)
	}
	both := new(struct {
		outliving
		more outlivingMore
	})
	both.outliving.more = &both.more
	return &both.outliving
}

// rateValues returns the buffers of the RateLimit header values: o's, or
// new ones when o has none.
func (o *outliving) rateValues() *ratelimit.HeaderValues {
	if o.more == nil {
		return new(ratelimit.HeaderValues)
	}
	return &o.more.rate
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

// formatIP returns ip as a string, formatted into o when it fits (an IPv6
// address with a long zone does not).
func (o *outliving) formatIP(ip netip.Addr) string {
	if o.more == nil {
		return ip.String()
	}
	m := o.more
	b := ip.AppendTo(m.ipBuf[:0])
	if len(b) > len(m.ipBuf) || len(b) == 0 {
		return string(b)
	}
	return unsafe.String(&m.ipBuf[0], len(b))
}

// cloneTool returns a copy of s: in o for the request's first tool name
// that fits, else a new string.
func (o *outliving) cloneTool(s string) string {
	m := o.more
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

// detach returns ctx without its cancellation and deadline, in o. Only the
// first call's ctx is kept: a context once handed out never changes.
func (o *outliving) detach(ctx context.Context) context.Context {
	if o.detached.parent == nil {
		o.detached.parent = ctx
	}
	return &o.detached
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
