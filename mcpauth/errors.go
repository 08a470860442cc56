package mcpauth

import (
	"encoding/json"
	"errors"
	"net/http"
)

// kindError is a sentinel that is also another sentinel: ErrKeyExpired is an
// ErrInvalidKey, so one errors.Is check picks the response while audit and
// logs keep the precise reason.
type kindError struct {
	msg    string
	parent error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.parent }

// Errors returned by Authenticate and handed to Options.ErrorHandler. Test
// them with errors.Is; the precise ones (ErrKeyExpired, ...) are also
// ErrInvalidKey, so one check covers every "bad key" case.
var (
	// ErrNoCredential: the request carries no API key.
	ErrNoCredential = errors.New("mcpauth: no credential")
	// ErrConflictingCredentials: the request carries two different keys
	// (Authorization and X-API-Key, or the same header twice).
	ErrConflictingCredentials = errors.New("mcpauth: conflicting credentials")
	// ErrInvalidKey: the key is malformed, unknown, revoked or expired. The
	// client always gets the same answer, so it cannot probe which.
	ErrInvalidKey = errors.New("mcpauth: invalid key")
	// ErrUnknownKey: well-formed, but no such key, or the secret does not match.
	ErrUnknownKey = &kindError{msg: "mcpauth: unknown key", parent: ErrInvalidKey}
	// ErrKeyRevoked: the key was revoked.
	ErrKeyRevoked = &kindError{msg: "mcpauth: key revoked", parent: ErrInvalidKey}
	// ErrKeyExpired: the key is past its expiry.
	ErrKeyExpired = &kindError{msg: "mcpauth: key expired", parent: ErrInvalidKey}
	// ErrAddressNotAllowed: the key is fine but restricted to client
	// addresses this request does not come from.
	ErrAddressNotAllowed = errors.New("mcpauth: key not allowed from this address")
	// ErrUserInactive: the key is fine but the host says its user is not active.
	ErrUserInactive = errors.New("mcpauth: account inactive")
	// ErrUnavailable: the key store or user lookup failed; the request is
	// refused (fail closed). The wrapped cause is for logs, never for clients.
	ErrUnavailable = errors.New("mcpauth: authentication backend unavailable")
)

// Response is what the default error handler writes for an error: the HTTP
// status, the WWW-Authenticate challenge (empty for none) and the JSON body's
// "error" code and "message".
type Response struct {
	Status    int
	Challenge string
	Code      string
	Message   string
}

// ResponseFor maps an error from the middleware to the response the default
// error handler sends. It is the one place where errors become statuses;
// custom error handlers can call it and change only what they need. Unknown
// errors map to 500 with a generic message: internal error text is never
// part of a Response.
func ResponseFor(err error, realm string) Response {
	if realm == "" {
		realm = DefaultRealm
	}
	bearer := `Bearer realm="` + realm + `"`
	switch {
	case errors.Is(err, ErrNoCredential):
		return Response{http.StatusUnauthorized, bearer, "unauthorized",
			"An API key is required. Send it as 'Authorization: Bearer <key>'."}
	case errors.Is(err, ErrConflictingCredentials):
		return Response{http.StatusBadRequest, bearer + `, error="invalid_request"`, "invalid_request",
			"Send exactly one API key, in one header."}
	case errors.Is(err, ErrInvalidKey):
		return Response{http.StatusUnauthorized, bearer + `, error="invalid_token"`, "invalid_token",
			"The API key is invalid, expired or revoked."}
	case errors.Is(err, ErrAddressNotAllowed):
		return Response{http.StatusForbidden, "", "address_not_allowed",
			"This API key may not be used from this network address."}
	case errors.Is(err, ErrUserInactive):
		return Response{http.StatusForbidden, "", "account_inactive",
			"The account this API key belongs to is not active."}
	case errors.Is(err, ErrUnavailable):
		return Response{http.StatusServiceUnavailable, "", "temporarily_unavailable",
			"Authentication is temporarily unavailable. Try again shortly."}
	default:
		return Response{http.StatusInternalServerError, "", "internal_error",
			"The request could not be authenticated."}
	}
}

// DefaultErrorHandler writes ResponseFor(err, DefaultRealm) as JSON:
//
//	{"error":"invalid_token","message":"The API key is invalid, expired or revoked."}
//
// with the WWW-Authenticate challenge where one applies, and
// Cache-Control: no-store. It never writes the error's own text.
func DefaultErrorHandler(w http.ResponseWriter, r *http.Request, err error) {
	WriteResponse(w, ResponseFor(err, DefaultRealm))
}

// WriteResponse writes resp as the default error handler does. Custom error
// handlers use it to change one case and keep the rest.
func WriteResponse(w http.ResponseWriter, resp Response) {
	h := w.Header()
	if resp.Challenge != "" {
		h.Set("WWW-Authenticate", resp.Challenge)
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(resp.Status)
	body, _ := json.Marshal(struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}{resp.Code, resp.Message})
	_, _ = w.Write(append(body, '\n'))
}
