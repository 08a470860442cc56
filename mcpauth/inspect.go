package mcpauth

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/mcpauth/mcpauth/mcpauth/internal/rpcpeek"
	"github.com/mcpauth/mcpauth/scope"
)

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

// inspect reads the POST body (at most limit bytes), finds the JSON-RPC
// messages in it and puts the body back, byte for byte, for the handler.
func (g *Guard) inspect(r *http.Request, x *exchange, limit int64) error {
	b := newBodyBuffer()
	x.body = b
	if r.ContentLength > limit {
		// Too large to read: only the start, to answer with its id.
		_, _ = b.readFrom(r.Body, min(limit, unauthenticatedPeekBytes))
		_ = r.Body.Close()
		return tooLarge(x, b.buf.Bytes())
	}
	n, err := b.readFrom(r.Body, limit+1)
	_ = r.Body.Close()
	if err != nil {
		return ErrParse
	}
	if n > limit {
		return tooLarge(x, b.buf.Bytes()[:min(n, unauthenticatedPeekBytes)])
	}
	body := b.buf.Bytes()
	r.Body = b.reader(body)
	b.msgsUsed = true
	msgs, batch, err := rpcpeek.Peek(body, b.msgs[:0])
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
		b := x.body
		b.msgsUsed = true
		b.msgs[0] = rpcpeek.Message{Kind: rpcpeek.Request, ID: id}
		x.msgs, x.batch = b.msgs[:1], false
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

// firstID returns a copy of the first JSON-RPC id of the request, nil if none.
func firstID(x *exchange) []byte {
	for i := range x.msgs {
		if x.msgs[i].ID != nil {
			return cloneID(x.msgs[i].ID)
		}
	}
	return nil
}

// cloneID copies a JSON-RPC id out of the pooled body buffer.
func cloneID(id []byte) []byte {
	if id == nil {
		return nil
	}
	return append([]byte(nil), id...)
}

// bodyBuffer is a pooled buffer for inspected bodies, with a reader that
// gives the handler the same bytes, and room for the messages found in
// them.
type bodyBuffer struct {
	buf  bytes.Buffer
	rd   bytes.Reader
	held *bodyReader      // handed to the handler; ended by release
	lr   io.LimitedReader // reads the body into buf
	// msgs backs the request's messages when the body holds at most 4.
	// release clears it only when msgsUsed says something was written to
	// it: zeroing 800 bytes of pointers on every request (write barriers
	// while the GC runs) was a tenth of the warm path.
	msgs     [4]rpcpeek.Message
	msgsUsed bool
}

// bodyReader reads the pooled buffer for the handler until release, then
// fails as net/http's own body does once its handler has returned. A
// reader may outlive the handler: a reverse proxy's transport writes the
// request body from a goroutine of its own and may still be doing so when
// the handler returns. Without this it would go on reading the buffer once
// the next request had it, and send that request's body upstream. It is
// allocated per inspected request for that reason: the pooled one would be
// the next request's.
type bodyReader struct {
	mu sync.Mutex
	rd *bytes.Reader // nil once released
}

// errBodyAfterHandler is net/http's error for the same misuse.
var errBodyAfterHandler = errors.New("http: invalid Read on closed Body")

func (b *bodyReader) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rd == nil {
		return 0, errBodyAfterHandler
	}
	return b.rd.Read(p)
}

func (*bodyReader) Close() error { return nil }

// end makes later Reads fail; a Read in progress finishes first.
func (b *bodyReader) end() {
	b.mu.Lock()
	b.rd = nil
	b.mu.Unlock()
}

var bodyBuffers = sync.Pool{New: func() any { return new(bodyBuffer) }}

// maxPooledBody keeps huge one-off bodies from pinning memory in the pool.
const maxPooledBody = 256 << 10

func newBodyBuffer() *bodyBuffer {
	b := bodyBuffers.Get().(*bodyBuffer)
	b.buf.Reset()
	return b
}

// readFrom appends at most n bytes of body to buf.
func (b *bodyBuffer) readFrom(body io.Reader, n int64) (int64, error) {
	b.lr = io.LimitedReader{R: body, N: n}
	read, err := b.buf.ReadFrom(&b.lr)
	b.lr = io.LimitedReader{}
	return read, err
}

func (b *bodyBuffer) reader(body []byte) io.ReadCloser {
	b.rd.Reset(body)
	b.held = &bodyReader{rd: &b.rd}
	return b.held
}

// release returns b to the pool once no reader the handler was given can
// read it any more.
func (b *bodyBuffer) release() {
	if b.held != nil {
		b.held.end()
		b.held = nil
	}
	if b.buf.Cap() > maxPooledBody {
		return
	}
	b.rd.Reset(nil)
	if b.msgsUsed {
		b.msgs, b.msgsUsed = [4]rpcpeek.Message{}, false
	}
	bodyBuffers.Put(b)
}
