package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/mcpauth/mcpauth/mcpauth"
)

const sessionHeader = "Mcp-Session-Id"

// httpUpstream forwards authenticated requests to an MCP server over
// streamable HTTP. Responses are streamed as they come (an event stream is
// flushed event by event; httputil.ReverseProxy flushes text/event-stream
// and unknown-length bodies at once), session IDs are sealed to their user
// (sessionSeal), and the principal reaches the upstream only in the
// operator's PrincipalHeaders: inbound copies of those headers and the
// client's credential (Authorization, X-API-Key) are removed.
type httpUpstream struct {
	target  *url.URL
	headers PrincipalHeaders
	seal    *sessionSeal
	streams *streamSet
	proxy   *httputil.ReverseProxy
	log     *slog.Logger
}

// stripped are the request headers never forwarded: the gateway's
// credential. PrincipalHeaders are added to the list.
var credentialHeaders = []string{"Authorization", "X-Api-Key"}

func newHTTPUpstream(rawURL string, h PrincipalHeaders, streams *streamSet, log *slog.Logger) (*httpUpstream, error) {
	target, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	u := &httpUpstream{target: target, headers: h, seal: newSessionSeal(), streams: streams, log: log}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 1024
	tr.MaxIdleConnsPerHost = 512
	tr.IdleConnTimeout = 90 * time.Second
	u.proxy = &httputil.ReverseProxy{
		Rewrite:        u.rewrite,
		ModifyResponse: u.modifyResponse,
		ErrorHandler:   u.errorHandler,
		Transport:      tr,
		BufferPool:     bufferPool{},
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return u, nil
}

func (u *httpUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, ok := mcpauth.PrincipalFrom(r.Context())
	if !ok { // only reachable when wired without the Guard
		writeRPCError(w, http.StatusUnauthorized, "", codeInvalidRequest, "mcpauth gateway: not authenticated")
		return
	}
	if sealed := r.Header.Get(sessionHeader); sealed != "" {
		id, ok := u.seal.open(p.UserID, sealed)
		if !ok {
			writeRPCError(w, http.StatusNotFound, "", codeInvalidRequest, "mcpauth gateway: session not found")
			return
		}
		r.Header.Set(sessionHeader, id)
	}
	if r.Method == http.MethodGet {
		ctx, done := u.streams.add(r.Context())
		defer done()
		r = r.WithContext(ctx)
	}
	u.proxy.ServeHTTP(w, r)
}

func (u *httpUpstream) rewrite(pr *httputil.ProxyRequest) {
	out := pr.Out
	out.URL.Scheme, out.URL.Host = u.target.Scheme, u.target.Host
	out.URL.Path, out.URL.RawPath = u.target.Path, u.target.RawPath
	if u.target.RawQuery != "" {
		out.URL.RawQuery = u.target.RawQuery
	}
	out.Host = ""
	for _, h := range credentialHeaders {
		out.Header.Del(h)
	}
	for _, h := range []string{u.headers.UserID, u.headers.KeyID, u.headers.Scopes} {
		if h != "" {
			out.Header.Del(h)
		}
	}
	p, _ := mcpauth.PrincipalFrom(pr.In.Context())
	if u.headers.UserID != "" {
		out.Header.Set(u.headers.UserID, p.UserID)
	}
	if u.headers.KeyID != "" {
		out.Header.Set(u.headers.KeyID, p.KeyID)
	}
	if u.headers.Scopes != "" {
		out.Header.Set(u.headers.Scopes, strings.Join(p.Scopes, " "))
	}
}

func (u *httpUpstream) modifyResponse(res *http.Response) error {
	if id := res.Header.Get(sessionHeader); id != "" {
		p, _ := mcpauth.PrincipalFrom(res.Request.Context())
		res.Header.Set(sessionHeader, u.seal.seal(p.UserID, id))
	}
	return nil
}

func (u *httpUpstream) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the client went away, or shutdown ended the stream
	}
	p, _ := mcpauth.PrincipalFrom(r.Context())
	u.log.LogAttrs(r.Context(), slog.LevelWarn, "upstream request failed",
		slog.String("upstream", u.target.Redacted()), slog.String("key_id", p.KeyID), slog.String("error", err.Error()))
	writeRPCError(w, http.StatusBadGateway, "", codeInternalError, "mcpauth gateway: the upstream MCP server is unavailable")
}

// ready reports whether the upstream accepts TCP connections.
func (u *httpUpstream) ready(ctx context.Context) error {
	host := u.target.Host
	if u.target.Port() == "" {
		port := "80"
		if u.target.Scheme == "https" {
			port = "443"
		}
		host = net.JoinHostPort(u.target.Hostname(), port)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return err
	}
	return c.Close()
}

// Close releases idle upstream connections.
func (u *httpUpstream) Close(context.Context) error {
	u.proxy.Transport.(*http.Transport).CloseIdleConnections()
	return nil
}

// bufferPool lends ReverseProxy its copy buffers.
type bufferPool struct{}

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *(copyBuffers.Get().(*[]byte)) }
func (bufferPool) Put(b []byte) { copyBuffers.Put(&b) }
