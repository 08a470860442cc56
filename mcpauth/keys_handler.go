package mcpauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"
)

// ErrNotSignedIn is what a KeysHandler user function returns (or wraps) for
// a request without a signed-in user; the handler answers 401.
var ErrNotSignedIn = errors.New("mcpauth: not signed in")

// DefaultKeysMaxBody bounds management request bodies.
const DefaultKeysMaxBody = 64 << 10

// KeysHandler returns the management HTTP API for users' own keys:
//
//	POST   /keys              create   {"name","scopes","expires_in_seconds","rate_limit","metadata","allowed_cidrs"}
//	GET    /keys              list     {"keys":[...]}
//	GET    /keys/{id}         show
//	POST   /keys/{id}/rotate  rotate   {"grace_seconds": N} (optional body)
//	DELETE /keys/{id}         revoke
//
// Mount it behind the host's own session authentication; userID returns the
// signed-in user (an error answers 401). A user only ever sees and changes
// their own keys: another user's key ID answers 404, as an unknown one does.
// The raw key appears once, in the create and rotate responses.
//
// It is CSRF-safe by design: requests with a body must be
// "Content-Type: application/json" (which browsers cannot send cross-site
// without a CORS preflight) and the handler reads no cookies itself. Bodies
// are capped at 64 KiB (413 past it); unknown JSON fields are rejected;
// validation errors name the field:
//
//	{"error":"invalid_request","field":"scopes[1]","message":"mcpauth: invalid scopes[1]: unknown scope \"billing:read\""}
func (m *Manager) KeysHandler(userID func(*http.Request) (string, error)) http.Handler {
	h := &keysHandler{m: m, userID: userID}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /keys", h.create)
	mux.HandleFunc("GET /keys", h.list)
	mux.HandleFunc("GET /keys/{id}", h.show)
	mux.HandleFunc("POST /keys/{id}/rotate", h.rotate)
	mux.HandleFunc("DELETE /keys/{id}", h.revoke)
	return mux
}

type keysHandler struct {
	m      *Manager
	userID func(*http.Request) (string, error)
}

type createRequest struct {
	Name             string            `json:"name"`
	Scopes           []string          `json:"scopes"`
	ExpiresInSeconds int64             `json:"expires_in_seconds"`
	RateLimit        int               `json:"rate_limit"`
	Metadata         map[string]string `json:"metadata"`
	AllowedCIDRs     []string          `json:"allowed_cidrs"`
}

type createdResponse struct {
	// Key is the raw key: shown once.
	Key  string  `json:"key"`
	Info KeyInfo `json:"info"`
}

type rotateRequest struct {
	GraceSeconds int64 `json:"grace_seconds"`
}

// maxDurationSeconds keeps second counts within time.Duration.
const maxDurationSeconds = int64(100 * 365 * 24 * 3600)

func (h *keysHandler) user(w http.ResponseWriter, r *http.Request) (string, bool) {
	id, err := h.userID(r)
	if err != nil || id == "" {
		if err != nil && !errors.Is(err, ErrNotSignedIn) {
			h.m.log.LogAttrs(r.Context(), slog.LevelWarn, "mcpauth: keys API: user lookup failed", slog.String("error", err.Error()))
		}
		writeAPIError(w, http.StatusUnauthorized, "unauthorized", "", "Sign in first.")
		return "", false
	}
	return id, true
}

func (h *keysHandler) create(w http.ResponseWriter, r *http.Request) {
	user, ok := h.user(w, r)
	if !ok {
		return
	}
	var req createRequest
	if !decodeJSON(w, r, &req, true) {
		return
	}
	if req.ExpiresInSeconds < 0 || req.ExpiresInSeconds > maxDurationSeconds {
		writeAPIError(w, http.StatusBadRequest, "invalid_request", "expires_in_seconds", "mcpauth: invalid expires_in_seconds: out of range")
		return
	}
	k, err := h.m.Create(r.Context(), user, CreateOptions{
		Name: req.Name, Scopes: req.Scopes, ExpiresIn: time.Duration(req.ExpiresInSeconds) * time.Second,
		RateLimit: req.RateLimit, Metadata: req.Metadata, AllowedCIDRs: req.AllowedCIDRs,
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, createdResponse{Key: k.Raw, Info: infoOf(k.Key, h.m.now())})
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
	if r.ContentLength != 0 && !decodeJSON(w, r, &req, false) {
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
	writeJSON(w, http.StatusCreated, createdResponse{Key: k.Raw, Info: infoOf(k.Key, h.m.now())})
}

func (h *keysHandler) revoke(w http.ResponseWriter, r *http.Request) {
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
		writeAPIError(w, http.StatusForbidden, "scope_not_allowed", "scopes", err.Error())
	default:
		h.m.log.LogAttrs(r.Context(), slog.LevelError, "mcpauth: keys API failed", slog.String("error", err.Error()))
		writeAPIError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "", "The key service is temporarily unavailable.")
	}
}

// decodeJSON reads a JSON body into v. It answers 415 for another content
// type, 413 past DefaultKeysMaxBody and 400 for bad JSON or unknown fields.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any, required bool) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		writeAPIError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "", "Send the body as Content-Type: application/json.")
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, DefaultKeysMaxBody))
	dec.DisallowUnknownFields()
	err = dec.Decode(v)
	if errors.Is(err, io.EOF) && !required {
		return true
	}
	if err == nil && dec.More() {
		err = errors.New("trailing data after the JSON object")
	}
	if err == nil {
		return true
	}
	var tooBig *http.MaxBytesError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooBig):
		writeAPIError(w, http.StatusRequestEntityTooLarge, "too_large", "", fmt.Sprintf("The body is larger than %d bytes.", DefaultKeysMaxBody))
	case errors.As(err, &typeErr):
		writeAPIError(w, http.StatusBadRequest, "invalid_request", typeErr.Field, "wrong type for "+typeErr.Field)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		writeAPIError(w, http.StatusBadRequest, "invalid_request", field, "unknown field "+field)
	default:
		writeAPIError(w, http.StatusBadRequest, "invalid_request", "", "The body is not valid JSON.")
	}
	return false
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
