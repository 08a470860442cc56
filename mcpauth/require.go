package mcpauth

// This file holds Require and the state of one request. The steps follow in
// the order a request meets them, one file each: credential.go (which key),
// verify.go (is it valid, for whom), inspect.go (which JSON-RPC messages),
// limit.go (rate limit), policy.go (scopes), then the handler (a GET's as
// an open event stream the Guard can end: streams.go), then record.go
// (audit). Every refusal is answered by respond.go.

import (
	"errors"
	"net/http"
	"net/netip"
	"time"

	"github.com/mcpauth/mcpauth/mcpauth/accesstoken"
	"github.com/mcpauth/mcpauth/mcpauth/internal/rpcpeek"
	"github.com/mcpauth/mcpauth/scope"
)

// Require is the middleware: it authenticates every request (POST, GET and
// DELETE alike), applies the rate limit and the MCP policy when configured,
// and calls next only for requests that pass, with the Principal in the
// request context (see PrincipalFrom). Failures go to Options.ErrorHandler.
// Streaming (http.Flusher, http.ResponseController, SSE) works through it
// as without it. When Options.Audit is set, the request's events are
// recorded after the response (see Options.Audit).
//
// A GET (an event stream) is served with a context the Guard cancels when
// it forgets the key or its user (see Forget and ForgetUser) and when the
// credential expires, so that an open stream does not outlive its key;
// the handler must return when its request context ends.
//
// Require has the func(http.Handler) http.Handler shape, so it composes
// with chi's r.Use and with plain http.Handle.
func (g *Guard) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			g.serveStream(w, r, next)
			return
		}
		g.serve(w, r, next)
	})
}

// exchange is one request's state through the middleware. It lives on
// serve's stack: what must outlive the request is in out, and the body and
// its messages, when inspected, in the pooled body buffer.
type exchange struct {
	facts
	out       *outliving     // what outlives the request
	more      *outlivingMore // with rate limiting or audit, else nil
	requestID string
	idMade    bool // requestID was made here, not the client's
	entry     *cacheEntry
	msgs      []rpcpeek.Message // may alias body.msgs
	batch     bool
	body      *bodyBuffer // nil until the body is read
}

// facts are what several steps need to know of a request, found once.
type facts struct {
	ip      netip.Addr // the client address (TrustedProxies applied)
	ipKnown bool
	kind    accesstoken.Kind // the credential's kind, by its shape; "" if none
	now     time.Time        // when the request arrived: the clock is read once
}

// arrival returns the time the request arrived, reading clock on first use.
func (f *facts) arrival(clock func() time.Time) time.Time {
	if f.now.IsZero() {
		f.now = clock()
	}
	return f.now
}

// clientIP returns the request's client address, computed on first use.
func (f *facts) clientIP(r *http.Request, t proxyTrust) netip.Addr {
	if !f.ipKnown {
		f.ip, f.ipKnown = clientIP(r, t), true
	}
	return f.ip
}

func (g *Guard) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	var x exchange
	defer x.release()
	auditing := g.opts.Audit != nil
	x.arrival(g.opts.Now)
	x.out, x.more = newOutliving(g.opts.RateLimiter != nil || g.opts.Audit != nil)
	x.requestID, x.idMade = x.out.setRequestID(w, r, g.opts.RequestIDHeader)

	e, err := g.authenticate(r, &x.facts)
	x.entry = e
	if err != nil {
		g.refuse(w, r, &x, err)
		return
	}
	if r.Method == http.MethodPost && g.inspects() {
		if err := g.inspect(r, &x, g.opts.MaxBodyBytes); err != nil {
			g.refuse(w, r, &x, err)
			return
		}
		if err := g.checkMessages(r, &x); err != nil {
			g.refuse(w, r, &x, err)
			return
		}
	}
	if g.opts.RateLimiter != nil {
		if err := g.limit(w, r, &x); err != nil {
			g.refuse(w, r, &x, err)
			return
		}
	}
	if g.opts.Policy != nil {
		if err := g.authorize(&x); err != nil {
			g.refuse(w, r, &x, err)
			return
		}
	}
	if g.strict {
		if err := g.record(r, &x, http.StatusOK, nil, true); err != nil {
			g.refuse(w, r, &x, err)
			return
		}
	}

	g.observeRequest(&x, nil)
	r = r.WithContext(x.out.withEntry(r.Context(), x.entry))
	if !auditing || g.strict {
		next.ServeHTTP(w, r)
		return
	}
	sw := newStatusWriter(w)
	defer g.recordPanic(r, &x, sw)
	next.ServeHTTP(sw, r)
	status := sw.code()
	sw.release()
	_ = g.record(r, &x, status, nil, false)
}

// recordPanic records the events of a request whose handler panicked (as
// httputil.ReverseProxy does with http.ErrAbortHandler when the client
// goes away mid-response), so that what ran is in the audit trail, then
// lets the panic go on to net/http. The status is the one the handler
// wrote, else 500.
func (g *Guard) recordPanic(r *http.Request, x *exchange, sw *statusWriter) {
	p := recover()
	if p == nil {
		return
	}
	status := sw.status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	_ = g.record(r, x, status, nil, false)
	panic(p)
}

// release returns the body buffer to its pool.
func (x *exchange) release() {
	if x.body != nil {
		x.body.release()
	}
}

// refuse answers an error, with the request's JSON-RPC ids when the body is
// (or, refused before inspection, briefly can be) read, and audits it.
func (g *Guard) refuse(w http.ResponseWriter, r *http.Request, x *exchange, err error) {
	if r.Method == http.MethodPost && x.body == nil && !errors.Is(err, ErrBodyTooLarge) {
		// Only to answer with the ids; what the peek finds changes nothing.
		_ = g.inspect(r, x, min(g.opts.MaxBodyBytes, unauthenticatedPeekBytes))
	}
	err = withMessages(err, x)
	if g.opts.Audit != nil {
		_ = g.record(r, x, g.statusFor(err), err, false)
	}
	g.fail(w, r, err)
	g.observeRequest(x, err)
}

// withMessages attaches the ids of the request's messages to a refusal, so
// that the response answers each of them. Syntax errors and bodies that are
// not JSON-RPC are answered with a null id instead: their messages are not
// known.
func withMessages(err error, x *exchange) error {
	if len(x.msgs) == 0 || errors.Is(err, ErrParse) || (errors.Is(err, ErrInvalidRequest) && !errors.Is(err, ErrBatchTooLarge) && !errors.Is(err, ErrHeaderMismatch)) {
		return err
	}
	me := &messagesError{err: err, batch: x.batch}
	for i := range x.msgs {
		if m := &x.msgs[i]; m.Kind == rpcpeek.Request {
			me.ids = append(me.ids, cloneID(m.ID))
		}
	}
	me.tool = len(x.msgs) == 1 && x.msgs[0].Kind == rpcpeek.Request && x.msgs[0].Method == scope.MethodToolsCall
	return me
}

// statusFor is the HTTP status the default error handler answers err with.
func (g *Guard) statusFor(err error) int { return g.responseFor(err).Status }
