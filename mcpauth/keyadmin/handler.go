package keyadmin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mcpauth/mcpauth/mcpauth/internal/reqid"
)

// ErrNotSignedIn is what a Handler user function returns (or wraps) for
// a request without a signed-in user; the handler answers 401.
var ErrNotSignedIn = errors.New("mcpauth: not signed in")

// maxBody bounds management request bodies.
const maxBody = 64 << 10

// HandlerOptions configures Handler. A nil *HandlerOptions
// means the defaults: users set name, scopes (within the Manager's ceiling),
// expiry (within its MaxLifetime) and allowed_cidrs, and nothing that decides
// their limits or tier.
type HandlerOptions struct {
	// UserMetadataKeys lists the metadata keys a user may set on their own
	// keys, such as "label". Default none: a request carrying any metadata
	// key not listed is refused (400, field "metadata.<key>"). Never list a
	// key that your code reads to decide limits, tiers or permissions
	// (ratelimit's per-tier policies read metadata): a user could then
	// promote themselves.
	UserMetadataKeys []string
	// UnsafeUserRateLimit lets users set rate_limit on their own keys.
	// Default false: a request carrying rate_limit is refused (400), whatever
	// its value. It is unsafe because a per-key rate limit overrides the
	// rate policy: a user on a 5/min plan could ask for 1,000,000/min, and
	// the override escapes a per-user shared budget (ratelimit.ByUser).
	UnsafeUserRateLimit bool
	// TrustedOrigins are origins ("https://admin.example.com") allowed to
	// make cross-origin state-changing requests, for a front end served from
	// another origin. Default none: POST, DELETE, PATCH and PUT from another
	// origin are refused (403, see http.CrossOriginProtection). A malformed
	// origin is an error from Handler.
	TrustedOrigins []string
	// Path is where the handler is mounted: the collection's path, such as
	// "/api/agent-keys". Default "/keys". Mount it with
	// mux.Handle(path, h) and mux.Handle(path+"/", h); behind
	// http.StripPrefix, give the path that remains.
	Path string
	// ClientIP returns the client address of a request, for the audit
	// events of key changes. Give it the Guard's ClientIP so that its
	// TrustedProxies apply here too. Default: the TCP peer.
	ClientIP func(*http.Request) netip.Addr
	// RequestIDHeader is the header carrying the request ID, read from the
	// request when it is a sane token (else generated) and set on the
	// response; the audit events of key changes carry it. Default
	// "X-Request-Id", as the Guard's.
	RequestIDHeader string
}

// Handler returns the management HTTP API for users' own keys:
//
//	POST   /keys              create      {"name","scopes","expires_in_seconds","allowed_cidrs","metadata","rate_limit"} → 201 NewKeyResponse
//	GET    /keys              list        → 200 {"keys":[KeyInfo...]}
//	DELETE /keys              revoke all  → 200 {"revoked": N}
//	GET    /keys/{id}         show        → 200 KeyInfo
//	POST   /keys/{id}/rotate  rotate      {"grace_seconds": N} (optional body) → 201 NewKeyResponse with old_key
//	DELETE /keys/{id}         revoke      → 204
//
// (under HandlerOptions.Path instead of /keys). Errors are
// {"error","field","message"}: 400 invalid_request, 401 unauthorized (the
// user function returned "" or ErrNotSignedIn), 403 cross_origin or
// scope_not_allowed, 404 not_found, 409 too_many_keys, 413, 415, and 503
// when the user function or the store fails.
//
// metadata and rate_limit are refused unless opts allows them (see
// HandlerOptions): they are the host's to set, with Manager.Create.
// Create and rotate apply the Manager's limits (scope ceiling, lifetime,
// active-key count, maximum grace) as they are at the time of the request.
//
// Mount it behind the host's own session authentication; userID returns the
// signed-in user (an error answers 401). A user only ever sees and changes
// their own keys: another user's key ID answers 404, as an unknown one does.
// The raw key appears once, in the create and rotate responses.
//
// # Cross-site requests
//
// Every state-changing request (any method but GET, HEAD and OPTIONS) must
// pass http.CrossOriginProtection (Sec-Fetch-Site, or Origin against Host;
// 403 otherwise) and carry "Content-Type: application/json" even without a
// body (415 otherwise): a cross-site form or fetch cannot send that without
// a CORS preflight. The handler reads no cookies itself. The host's session
// cookie should still be SameSite=Lax or Strict, Secure and HttpOnly, and
// the host must not answer CORS preflights for this API with
// Access-Control-Allow-Credentials for untrusted origins.
//
// # Request bodies
//
// Bodies are capped at 64 KiB (413 past it) and must be one JSON object.
// Unknown fields, fields the user may not set, and duplicate or case
// variants of a field ("Scopes" beside "scopes", "\u017fcopes") are
// refused with 400 before anything is written; validation errors name the
// field:
//
//	{"error":"invalid_request","field":"scopes[1]","message":"mcpauth: invalid scopes[1]: unknown scope \"billing:read\""}
func (m *Manager) Handler(userID func(*http.Request) (string, error), opts *HandlerOptions) (http.Handler, error) {
	var o HandlerOptions
	if opts != nil {
		o = *opts
	}
	cop := http.NewCrossOriginProtection()
	for i, origin := range o.TrustedOrigins {
		if err := cop.AddTrustedOrigin(origin); err != nil {
			return nil, fmt.Errorf("mcpauth: HandlerOptions.TrustedOrigins[%d]: %w", i, err)
		}
	}
	p := o.Path
	if p == "" {
		p = "/keys"
	}
	if !strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.ContainsAny(p, "{} ") {
		return nil, fmt.Errorf("mcpauth: HandlerOptions.Path %q: want an absolute path without a trailing slash, like /keys", p)
	}
	if o.ClientIP == nil {
		o.ClientIP = peerIP
	}
	if o.RequestIDHeader == "" {
		o.RequestIDHeader = "X-Request-Id"
	}
	h := &keysHandler{m: m, userID: userID, cop: cop, rateLimit: o.UnsafeUserRateLimit, metaKeys: slices.Clone(o.UserMetadataKeys),
		clientIP: o.ClientIP, requestIDHeader: o.RequestIDHeader}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+p, h.create)
	mux.HandleFunc("GET "+p, h.list)
	mux.HandleFunc("DELETE "+p, h.revokeAll)
	mux.HandleFunc("GET "+p+"/{id}", h.show)
	mux.HandleFunc("POST "+p+"/{id}/rotate", h.rotate)
	mux.HandleFunc("DELETE "+p+"/{id}", h.revoke)
	h.mux = mux
	return h, nil
}

type keysHandler struct {
	m         *Manager
	userID    func(*http.Request) (string, error)
	cop       *http.CrossOriginProtection
	mux       *http.ServeMux
	rateLimit bool
	metaKeys  []string

	clientIP        func(*http.Request) netip.Addr
	requestIDHeader string
}

// peerIP is the TCP peer's address, the default HandlerOptions.ClientIP.
func peerIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// ServeHTTP refuses cross-origin and non-JSON state-changing requests
// before routing them.
func (h *keysHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		if err := h.cop.Check(r); err != nil {
			writeAPIError(w, http.StatusForbidden, "cross_origin", "", "Cross-origin request refused.")
			return
		}
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			writeAPIError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "", "Send the request with Content-Type: application/json, with or without a body.")
			return
		}
	}
	h.mux.ServeHTTP(w, r.WithContext(h.withChangeRequest(w, r)))
}

// withChangeRequest puts the request's client address
// (HandlerOptions.ClientIP), user agent and request ID (RequestIDHeader,
// read if sane, else new, and sent back) in the context, for the audit
// events of the key changes it makes.
func (h *keysHandler) withChangeRequest(w http.ResponseWriter, r *http.Request) context.Context {
	id := reqid.From(r, h.requestIDHeader)
	w.Header().Set(h.requestIDHeader, id)
	c := &changeRequest{userAgent: r.Header.Get("User-Agent"), requestID: id}
	if ip := h.clientIP(r); ip.IsValid() {
		c.ip = ip.String()
	}
	return context.WithValue(r.Context(), changeRequestKey{}, c)
}

// Top-level fields of the request bodies, matched exactly.
var (
	createFields = []string{"name", "scopes", "expires_in_seconds", "rate_limit", "metadata", "allowed_cidrs"}
	rotateFields = []string{"grace_seconds"}
)

type createRequest struct {
	Name             string            `json:"name"`
	Scopes           []string          `json:"scopes"`
	ExpiresInSeconds int64             `json:"expires_in_seconds"`
	RateLimit        int               `json:"rate_limit"`
	Metadata         map[string]string `json:"metadata"`
	AllowedCIDRs     []string          `json:"allowed_cidrs"`
}

type rotateRequest struct {
	GraceSeconds int64 `json:"grace_seconds"`
}

// maxDurationSeconds keeps second counts within time.Duration.
const maxDurationSeconds = int64(100 * 365 * 24 * 3600)

func (h *keysHandler) user(w http.ResponseWriter, r *http.Request) (string, bool) {
	id, err := h.userID(r)
	switch {
	case err != nil && !errors.Is(err, ErrNotSignedIn):
		// The host's session lookup failed: not the user's fault.
		h.m.opts.Logger.LogAttrs(r.Context(), slog.LevelError, "mcpauth: keys API: user lookup failed", slog.String("error", err.Error()))
		writeAPIError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "", "The key service is temporarily unavailable.")
		return "", false
	case err != nil || id == "":
		writeAPIError(w, http.StatusUnauthorized, "unauthorized", "", "Sign in first.")
		return "", false
	}
	if c, ok := r.Context().Value(changeRequestKey{}).(*changeRequest); ok {
		c.actor = "user:" + id // the key changes of this request are this user's
	}
	return id, true
}

func (h *keysHandler) create(w http.ResponseWriter, r *http.Request) {
	user, ok := h.user(w, r)
	if !ok {
		return
	}
	var req createRequest
	present, ok := decodeJSON(w, r, &req, createFields, true)
	if !ok {
		return
	}
	o, err := h.createOptions(req, present)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	k, err := h.m.Create(r.Context(), user, o)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, NewKeyResponse{RawKey: k.Raw, Key: infoOf(k.Key, h.m.opts.Now())})
}

// createOptions turns a decoded create request into CreateOptions, refusing
// the fields the host has not let users set.
func (h *keysHandler) createOptions(req createRequest, present map[string]bool) (CreateOptions, error) {
	if present["rate_limit"] && !h.rateLimit {
		return CreateOptions{}, invalid("rate_limit", "is set by the host and may not be set through this API")
	}
	keys := slices.Sorted(maps.Keys(req.Metadata))
	for _, k := range keys {
		if !slices.Contains(h.metaKeys, k) {
			return CreateOptions{}, invalid("metadata."+printable(k), "key %q is set by the host and may not be set through this API", printable(k))
		}
	}
	if req.ExpiresInSeconds < 0 || req.ExpiresInSeconds > maxDurationSeconds {
		return CreateOptions{}, invalid("expires_in_seconds", "out of range")
	}
	return CreateOptions{
		Name: req.Name, Scopes: req.Scopes, ExpiresIn: time.Duration(req.ExpiresInSeconds) * time.Second,
		RateLimit: req.RateLimit, Metadata: req.Metadata, AllowedCIDRs: req.AllowedCIDRs,
	}, nil
}

func (h *keysHandler) list(w http.ResponseWriter, r *http.Request) {
	user, ok := h.user(w, r)
	if !ok {
		return
	}
	keys, err := h.m.List(r.Context(), user)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Keys []KeyInfo `json:"keys"`
	}{keys})
}

// own returns the key if it belongs to the signed-in user; otherwise it
// answers 404, the same as for an unknown ID.
func (h *keysHandler) own(w http.ResponseWriter, r *http.Request) (KeyInfo, bool) {
	user, ok := h.user(w, r)
	if !ok {
		return KeyInfo{}, false
	}
	info, err := h.m.Get(r.Context(), r.PathValue("id"))
	if err == nil && info.UserID != user {
		err = ErrKeyNotFound
	}
	if err != nil {
		h.fail(w, r, err)
		return KeyInfo{}, false
	}
	return info, true
}

func (h *keysHandler) show(w http.ResponseWriter, r *http.Request) {
	if info, ok := h.own(w, r); ok {
		writeJSON(w, http.StatusOK, info)
	}
}

func (h *keysHandler) rotate(w http.ResponseWriter, r *http.Request) {
	var req rotateRequest
	if _, ok := decodeJSON(w, r, &req, rotateFields, false); !ok {
		return
	}
	if req.GraceSeconds < 0 || req.GraceSeconds > maxDurationSeconds {
		writeAPIError(w, http.StatusBadRequest, "invalid_request", "grace_seconds", "mcpauth: invalid grace_seconds: out of range")
		return
	}
	info, ok := h.own(w, r)
	if !ok {
		return
	}
	k, err := h.m.Rotate(r.Context(), info.ID, time.Duration(req.GraceSeconds)*time.Second)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	resp := NewKeyResponse{RawKey: k.Raw, Key: infoOf(k.Key, h.m.opts.Now())}
	if old, err := h.m.Get(r.Context(), info.ID); err == nil {
		resp.OldKey = &old // with its new expiry: the end of the grace period
	}
	writeJSON(w, http.StatusCreated, resp)
}

// revokeAll revokes every key of the signed-in user (DELETE on the
// collection): what a user does when a device or an agent host is lost.
func (h *keysHandler) revokeAll(w http.ResponseWriter, r *http.Request) {
	var req struct{}
	if _, ok := decodeJSON(w, r, &req, nil, false); !ok {
		return
	}
	user, ok := h.user(w, r)
	if !ok {
		return
	}
	n, err := h.m.RevokeAllForUser(r.Context(), user)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Revoked int `json:"revoked"`
	}{n})
}

func (h *keysHandler) revoke(w http.ResponseWriter, r *http.Request) {
	var req struct{}
	if _, ok := decodeJSON(w, r, &req, nil, false); !ok {
		return
	}
	info, ok := h.own(w, r)
	if !ok {
		return
	}
	if err := h.m.Revoke(r.Context(), info.ID); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// fail maps Manager errors to responses; internal errors are logged, not sent.
func (h *keysHandler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ve *ValidationError
	switch {
	case errors.As(err, &ve):
		writeAPIError(w, http.StatusBadRequest, "invalid_request", ve.Field, ve.Error())
	case errors.Is(err, ErrKeyNotFound):
		writeAPIError(w, http.StatusNotFound, "not_found", "", "No such key.")
	case errors.Is(err, ErrTooManyKeys):
		writeAPIError(w, http.StatusConflict, "too_many_keys", "", "You have reached the maximum number of active keys. Revoke one first.")
	case errors.Is(err, ErrScopeNotAllowed):
		writeAPIError(w, http.StatusForbidden, "scope_not_allowed", "scopes", err.Error()) // names the scope, never a secret
	default:
		h.m.opts.Logger.LogAttrs(r.Context(), slog.LevelError, "mcpauth: keys API failed", slog.String("error", err.Error()))
		writeAPIError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "", "The key service is temporarily unavailable.")
	}
}

// decodeJSON reads a JSON object body into v and returns the fields it
// held. The Content-Type was checked by ServeHTTP. It answers 413 past
// maxBody and 400 for bad JSON, a body that is not one object,
// a top-level field not in fields (names match exactly, case included),
// a duplicate field at any depth, and wrong types. An empty body is accepted
// (v unchanged) unless required.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any, fields []string, required bool) (map[string]bool, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeAPIError(w, http.StatusRequestEntityTooLarge, "too_large", "", fmt.Sprintf("The body is larger than %d bytes.", maxBody))
		return nil, false
	case err != nil:
		writeAPIError(w, http.StatusBadRequest, "invalid_request", "", "The body could not be read.")
		return nil, false
	}
	present, err := decodeStrict(body, fields, v, required)
	if err != nil {
		var be *bodyError
		if !errors.As(err, &be) {
			be = &bodyError{msg: "The body is not valid JSON."}
		}
		writeAPIError(w, http.StatusBadRequest, "invalid_request", be.field, be.msg)
		return nil, false
	}
	return present, true
}

// bodyError is a refused request body; field is "" when no field is to blame.
type bodyError struct{ field, msg string }

func (e *bodyError) Error() string { return "mcpauth: request body: " + e.msg }

// maxBodyDepth bounds nesting; no request field nests deeper than 2.
const maxBodyDepth = 4

// decodeStrict decodes body, one JSON object, into v. encoding/json matches
// field names case-insensitively (with Unicode folding: "\u017fcopes" is
// "scopes") and lets the last duplicate win, so a body could mean one thing
// to a reviewer, a proxy or another decoder and another to v. decodeStrict
// first walks the tokens and refuses, before v is touched, any top-level
// name not exactly in fields and any name repeated within one object, at
// any depth; what is left decodes the same under every JSON decoder.
func decodeStrict(body []byte, fields []string, v any, required bool) (map[string]bool, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		if required {
			return nil, &bodyError{msg: "The body is empty; send a JSON object."}
		}
		return map[string]bool{}, nil
	}
	present, err := scanObject(body, fields)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return nil, &bodyError{field: typeErr.Field, msg: "wrong type for " + typeErr.Field}
		}
		return nil, &bodyError{msg: "The body is not valid JSON."}
	}
	return present, nil
}

// scanObject checks the shape of body (see decodeStrict) and returns its
// top-level field names.
func scanObject(body []byte, fields []string) (map[string]bool, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, &bodyError{msg: "The body is not valid JSON."}
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, &bodyError{msg: "The body must be a JSON object."}
	}
	present := map[string]bool{}
	stack := []scanFrame{{keys: present, wantKey: true}}
	for len(stack) > 0 {
		tok, err := dec.Token()
		if err != nil {
			return nil, &bodyError{msg: "The body is not valid JSON."}
		}
		top := &stack[len(stack)-1]
		if top.keys != nil && top.wantKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				valueDone(stack)
				continue
			}
			name, _ := tok.(string) // json.Decoder yields only strings here
			shown := printable(name)
			if top.keys[name] {
				return nil, &bodyError{field: shown, msg: "duplicate field " + strconv.Quote(shown)}
			}
			if len(stack) == 1 && !slices.Contains(fields, name) {
				return nil, &bodyError{field: shown, msg: "unknown field " + strconv.Quote(shown) + " (field names are case-sensitive)"}
			}
			top.keys[name] = true
			top.wantKey = false
			continue
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if len(stack) >= maxBodyDepth {
				return nil, &bodyError{msg: "The body is nested too deeply."}
			}
			f := scanFrame{}
			if tok == json.Delim('{') {
				f = scanFrame{keys: map[string]bool{}, wantKey: true}
			}
			stack = append(stack, f)
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone(stack)
		default:
			valueDone(stack)
		}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &bodyError{msg: "Trailing data after the JSON object."}
	}
	return present, nil
}

// scanFrame is an open object or array in scanObject.
type scanFrame struct {
	keys    map[string]bool // names seen so far; nil for an array
	wantKey bool            // an object's next token is a name or '}'
}

// valueDone records that a value inside the innermost open container is
// complete: an object's next token is a name again.
func valueDone(stack []scanFrame) {
	if len(stack) > 0 && stack[len(stack)-1].keys != nil {
		stack[len(stack)-1].wantKey = true
	}
}

// printable makes an attacker-chosen name safe and short to echo back.
func printable(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) > 64 {
		s = strings.ToValidUTF8(s[:64], "") + "..."
	}
	return s
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeAPIError(w http.ResponseWriter, status int, code, field, msg string) {
	writeJSON(w, status, struct {
		Error   string `json:"error"`
		Field   string `json:"field,omitempty"`
		Message string `json:"message"`
	}{code, field, msg})
}
