package mcpauth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/mcpauth/mcpauth/mcpauth/internal/rpcpeek"
	"github.com/mcpauth/mcpauth/ratelimit"
	"github.com/mcpauth/mcpauth/scope"
)

// Require is the middleware: it authenticates every request (POST, GET and
// DELETE alike), applies the rate limit and the MCP policy when configured,
// and calls next only for requests that pass, with the Principal in the
// request context (see PrincipalFrom). Failures go to Options.ErrorHandler.
// Streaming (http.Flusher, http.ResponseController, SSE) works through it
// as without it. When Options.Audit is set, one event per MCP message is
// recorded after the response.
//
// Require has the func(http.Handler) http.Handler shape, so it composes
// with chi's r.Use and with plain http.Handle.
func (g *Guard) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.serve(w, r, next)
	})
}

// exchange is one request's state through the middleware.
type exchange struct {
	start     time.Time
	requestID string
	entry     *cacheEntry
	msgs      []rpcpeek.Message
	batch     bool
	buf       [4]rpcpeek.Message
	body      *bodyBuffer
}

var exchanges = sync.Pool{New: func() any { return new(exchange) }}

func (g *Guard) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	x := exchanges.Get().(*exchange)
	defer g.release(x)
	auditing := g.opts.Audit != nil
	if auditing {
		x.start = g.opts.Now()
	}
	x.requestID = requestID(r, g.opts.RequestIDHeader)
	w.Header().Set(g.opts.RequestIDHeader, x.requestID)

	e, err := g.authenticate(r)
	x.entry = e
	if err != nil {
		g.refuse(w, r, x, err)
		return
	}
	if r.Method == http.MethodPost && g.inspects() {
		if err := g.inspect(r, x, g.opts.MaxBodyBytes); err != nil {
			g.refuse(w, r, x, err)
			return
		}
		if err := g.checkMessages(r, x); err != nil {
			g.refuse(w, r, x, err)
			return
		}
	}
	if g.opts.RateLimiter != nil {
		if err := g.limit(w, r, x); err != nil {
			g.refuse(w, r, x, err)
			return
		}
	}
	if g.opts.Policy != nil {
		if err := g.authorize(x); err != nil {
			g.refuse(w, r, x, err)
			return
		}
	}
	if g.strict {
		if err := g.record(r, x, http.StatusOK, nil, true); err != nil {
			g.refuse(w, r, x, err)
			return
		}
	}

	r = r.WithContext(withEntry(r.Context(), x.entry))
	if !auditing || g.strict {
		next.ServeHTTP(w, r)
		return
	}
	sw := newStatusWriter(w)
	next.ServeHTTP(sw, r)
	status := sw.code()
	sw.release()
	_ = g.record(r, x, status, nil, false)
}

func (g *Guard) release(x *exchange) {
	if x.body != nil {
		x.body.release()
	}
	*x = exchange{}
	exchanges.Put(x)
}

// inspects reports whether POST bodies are read before the handler: when
// a step needs their messages (policy, per-message rate-limit costs,
// audit). With none of them Require only authenticates, and the body goes
// to the handler unread.
func (g *Guard) inspects() bool {
	return g.opts.Policy != nil || g.opts.RateLimiter != nil || g.opts.Audit != nil
}

// unauthenticatedPeekBytes bounds the body read from a request refused
// before its body was inspected (no key, bad key), only to answer with its
// JSON-RPC ids: an unauthenticated client cannot make the Guard parse more.
const unauthenticatedPeekBytes = 64 << 10

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

// inspect reads the POST body (at most limit bytes), finds the JSON-RPC
// messages in it and puts the body back, byte for byte, for the handler.
func (g *Guard) inspect(r *http.Request, x *exchange, limit int64) error {
	b := newBodyBuffer()
	x.body = b
	if r.ContentLength > limit {
		// Too large to read: only the start, to answer with its id.
		_, _ = b.buf.ReadFrom(io.LimitReader(r.Body, min(limit, unauthenticatedPeekBytes)))
		_ = r.Body.Close()
		return tooLarge(x, b.buf.Bytes())
	}
	n, err := b.buf.ReadFrom(io.LimitReader(r.Body, limit+1))
	_ = r.Body.Close()
	if err != nil {
		return ErrParse
	}
	if n > limit {
		return tooLarge(x, b.buf.Bytes()[:min(n, unauthenticatedPeekBytes)])
	}
	body := b.buf.Bytes()
	r.Body = b.reader(body)
	msgs, batch, err := rpcpeek.Peek(body, x.buf[:0])
	x.msgs, x.batch = msgs, batch
	switch {
	case errors.Is(err, rpcpeek.ErrSyntax):
		return ErrParse
	case errors.Is(err, rpcpeek.ErrInvalidRequest):
		return ErrInvalidRequest
	}
	return nil
}

// tooLarge is ErrBodyTooLarge, remembering the id the body's start names
// (rpcpeek.LeadingID) so that the refusal answers the request: clients
// keep a session whose refused call has its answer.
func tooLarge(x *exchange, prefix []byte) error {
	if id, ok := rpcpeek.LeadingID(prefix); ok {
		x.buf[0] = rpcpeek.Message{Kind: rpcpeek.Request, ID: id}
		x.msgs, x.batch = x.buf[:1], false
	}
	return ErrBodyTooLarge
}

// checkMessages refuses batches longer than MaxBatchLength and requests
// whose Mcp-Method / Mcp-Name headers (MCP 2026-07-28, SEP-2243) disagree
// with the body: a server or router behind the Guard that trusts the
// headers must see the same operation the policy checked.
func (g *Guard) checkMessages(r *http.Request, x *exchange) error {
	if x.batch && len(x.msgs) > g.opts.MaxBatchLength {
		return ErrBatchTooLarge
	}
	methods, names := r.Header.Values("Mcp-Method"), r.Header.Values("Mcp-Name")
	if len(methods) == 0 && len(names) == 0 {
		return nil
	}
	if len(methods) > 1 || len(names) > 1 || x.batch || len(x.msgs) != 1 {
		return ErrHeaderMismatch
	}
	m := &x.msgs[0]
	if len(methods) == 1 && (m.Kind == rpcpeek.Response || methods[0] != m.Method) {
		return ErrHeaderMismatch
	}
	if len(names) == 1 {
		var want string
		switch m.Method {
		case scope.MethodToolsCall, scope.MethodPromptsGet:
			want = m.Name
		case scope.MethodResourcesRead:
			want = m.URI
		default:
			return ErrHeaderMismatch // no name to agree with
		}
		if names[0] != want && headerValue(names[0]) != want {
			return ErrHeaderMismatch
		}
	}
	return nil
}

// headerValue decodes a SEP-2243 header value "=?base64?...?=" (how clients
// send names that are not plain ASCII); other values are returned as they are.
func headerValue(v string) string {
	enc, ok := strings.CutPrefix(v, "=?base64?")
	if !ok {
		return v
	}
	enc, ok = strings.CutSuffix(enc, "?=")
	if !ok {
		return v
	}
	b, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return v
	}
	return string(b)
}

// costOf is what a request spends from its rate-limit budget: the sum of
// its messages' costs (RatePolicy.Cost; protocol messages are free by
// default), or the cost of its HTTP method for GET and DELETE.
func (g *Guard) costOf(r *http.Request, x *exchange) int {
	if r.Method != http.MethodPost {
		return g.opts.RatePolicy.Cost(r.Method, "")
	}
	cost := 0
	for i := range x.msgs {
		if m := &x.msgs[i]; m.Kind != rpcpeek.Response {
			cost += g.opts.RatePolicy.Cost(m.Method, targetOf(m))
		}
	}
	return cost
}

// limit spends the request's cost from its bucket and writes the rate-limit
// headers. Every message of a batch is counted; a request that costs more
// than remains is refused whole, and one that costs more than the bucket
// holds is refused without asking the limiter.
func (g *Guard) limit(w http.ResponseWriter, r *http.Request, x *exchange) error {
	cost := g.costOf(r, x)
	if cost == 0 {
		return nil
	}
	bucket, lim := x.entry.bucket, x.entry.limit
	if bucket == "" { // cache disabled or filled before a policy existed
		bucket, lim = g.opts.RatePolicy.Resolve(ratelimit.Subject{
			KeyID: x.entry.principal.KeyID, UserID: x.entry.principal.UserID, Scopes: x.entry.principal.Scopes,
			Metadata: x.entry.principal.Metadata, Override: x.entry.principal.RateLimit,
		})
	}
	if b := lim.EffectiveBurst(); cost > b {
		return &RateLimitError{ID: firstID(x), RetryAfter: lim.Per, Policy: lim.Name, Cost: cost, Burst: b}
	}
	d, err := g.opts.RateLimiter.Allow(r.Context(), bucket, lim, cost)
	if err != nil {
		g.opts.Logger.LogAttrs(r.Context(), slog.LevelError, "mcpauth: rate limiter failed; refusing",
			slog.String("key_id", x.entry.principal.KeyID), slog.String("error", err.Error()))
		return fmt.Errorf("%w: rate limiter", ErrUnavailable)
	}
	ratelimit.SetHeaders(w.Header(), d, g.opts.LegacyRateLimitHeaders)
	if d.Allowed {
		return nil
	}
	return &RateLimitError{ID: firstID(x), RetryAfter: d.RetryAfter, Policy: d.Policy}
}

// firstID returns a copy of the first JSON-RPC id of the request, nil if none.
func firstID(x *exchange) []byte {
	for i := range x.msgs {
		if x.msgs[i].ID != nil {
			return cloneID(x.msgs[i].ID)
		}
	}
	return nil
}

// authorize checks every message of the request against the policy; the
// first refusal refuses the whole request (a batch is all or nothing).
func (g *Guard) authorize(x *exchange) error {
	for i := range x.msgs {
		m := &x.msgs[i]
		if m.Kind == rpcpeek.Response {
			continue
		}
		sm := messageOf(m)
		if m.Method == scope.MethodSubscriptionsListen {
			uris, err := subscriptionURIs(m.Params)
			if err != nil {
				return ErrInvalidRequest
			}
			sm.Subscriptions = uris
		}
		v, target := g.opts.Policy.DecideMessage(sm, x.entry.scopes)
		if v.Allowed {
			continue
		}
		se := &ScopeError{ID: cloneID(m.ID), Method: strings.Clone(m.Method), Target: strings.Clone(target), Blocked: v.Blocked, Reason: v.Reason}
		for _, s := range v.Required {
			se.Required = append(se.Required, s.String())
		}
		return se
	}
	return nil
}

// subscriptionURIs returns every string under any key that spells
// "resourceSubscriptions" in any letter case, at any depth of params. Taking
// all of them (not the one a given decoder would pick) means no JSON
// decoder can subscribe to a URI that was not checked.
func subscriptionURIs(params []byte) ([]string, error) {
	if len(params) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(params))
	var uris []string
	var walk func(collect bool) error
	walk = func(collect bool) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				for dec.More() {
					kt, err := dec.Token()
					if err != nil {
						return err
					}
					key, _ := kt.(string)
					if err := walk(collect || strings.EqualFold(key, "resourceSubscriptions")); err != nil {
						return err
					}
				}
			case '[':
				for dec.More() {
					if err := walk(collect); err != nil {
						return err
					}
				}
			}
			_, err := dec.Token() // the closing delimiter
			return err
		case string:
			if collect {
				uris = append(uris, t)
			}
		}
		return nil
	}
	if err := walk(false); err != nil {
		return nil, err
	}
	return uris, nil
}

// messageOf is what the policy reads of a message (scope's one operation
// model; the SDK adapters fill the same struct from their typed params).
// Its strings alias the body.
func messageOf(m *rpcpeek.Message) scope.Message {
	return scope.Message{Method: m.Method, Name: m.Name, URI: m.URI, RefType: m.RefType, RefName: m.RefName, RefURI: m.RefURI}
}

func targetOf(m *rpcpeek.Message) string { return messageOf(m).Target() }

// cloneID copies a JSON-RPC id out of the pooled body buffer.
func cloneID(id []byte) []byte {
	if id == nil {
		return nil
	}
	return append([]byte(nil), id...)
}

// bodyBuffer is a pooled buffer for inspected bodies, with a reader that
// gives the handler the same bytes.
type bodyBuffer struct {
	buf bytes.Buffer
	rd  bodyReader
}

type bodyReader struct{ bytes.Reader }

func (*bodyReader) Close() error { return nil }

var bodyBuffers = sync.Pool{New: func() any { return new(bodyBuffer) }}

// maxPooledBody keeps huge one-off bodies from pinning memory in the pool.
const maxPooledBody = 256 << 10

func newBodyBuffer() *bodyBuffer {
	b := bodyBuffers.Get().(*bodyBuffer)
	b.buf.Reset()
	return b
}

func (b *bodyBuffer) reader(body []byte) io.ReadCloser {
	b.rd.Reset(body)
	return &b.rd
}

func (b *bodyBuffer) release() {
	if b.buf.Cap() > maxPooledBody {
		return
	}
	b.rd.Reset(nil)
	bodyBuffers.Put(b)
}
