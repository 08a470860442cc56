package mcpauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
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
	// ErrUnavailable: the key store, user lookup, rate limiter or (strict)
	// audit sink failed; the request is refused (fail closed). The wrapped
	// cause is for logs, never for clients.
	ErrUnavailable = errors.New("mcpauth: authentication backend unavailable")
	// ErrInsufficientScope: the key lacks a scope the MCP operation needs.
	// The error is a *ScopeError.
	ErrInsufficientScope = errors.New("mcpauth: insufficient scope")
	// ErrBlocked: the operation targets a blocked tool or resource, which no
	// key may reach. The error is a *ScopeError; it is also an
	// ErrInsufficientScope.
	ErrBlocked = &kindError{msg: "mcpauth: blocked", parent: ErrInsufficientScope}
	// ErrRateLimited: the key (or its user) is over its rate limit. The
	// error is a *RateLimitError.
	ErrRateLimited = errors.New("mcpauth: rate limited")
	// ErrBodyTooLarge: the POST body is larger than Options.MaxBodyBytes.
	ErrBodyTooLarge = errors.New("mcpauth: request body too large")
	// ErrParse: the POST body is not JSON (JSON-RPC -32700).
	ErrParse = errors.New("mcpauth: request body is not valid JSON")
	// ErrInvalidRequest: the POST body is JSON but not a JSON-RPC message
	// or batch (JSON-RPC -32600).
	ErrInvalidRequest = errors.New("mcpauth: request body is not a JSON-RPC message")
)

// JSON-RPC error codes in mcpauth's responses. Custom codes stay within
// -32000..-32019; the MCP specification reserves -32020..-32099.
const (
	RPCCodeParseError     = -32700
	RPCCodeInvalidRequest = -32600
	RPCCodeForbidden      = -32003
	RPCCodeRateLimited    = -32004
)

// ScopeError is the error for an MCP message the key may not send.
type ScopeError struct {
	// ID is the JSON-RPC id of the refused message (raw JSON; nil for a
	// notification).
	ID json.RawMessage
	// Method, and Target (tool or prompt name, resource URI, completion ref).
	Method, Target string
	// Required lists the scopes the operation needs (empty when blocked).
	Required []string
	// Blocked is set when the target is on the blocklist.
	Blocked bool
	// Reason is a sentence a model can read: `tool "delete_document"
	// requires scope documents:delete`.
	Reason string
}

func (e *ScopeError) Error() string {
	if e.Blocked {
		return "mcpauth: blocked: " + e.Reason
	}
	return "mcpauth: insufficient scope: " + e.Reason
}

// Is makes a ScopeError match ErrInsufficientScope, and ErrBlocked when blocked.
func (e *ScopeError) Is(target error) bool {
	return target == ErrInsufficientScope || (e.Blocked && target == ErrBlocked)
}

// RateLimitError is the error for a request over its rate limit.
type RateLimitError struct {
	// ID is the JSON-RPC id of the (first) message, nil if none.
	ID json.RawMessage
	// RetryAfter is when a request of the same cost can pass.
	RetryAfter time.Duration
	// Policy is the name of the limit that was hit.
	Policy string
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("mcpauth: rate limited by policy %q; retry after %s", e.Policy, e.RetryAfter)
}

// Is makes a RateLimitError match ErrRateLimited.
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }

// Response is what the default error handler writes for an error: the HTTP
// status, the WWW-Authenticate challenge (empty for none) and the JSON body's
// "error" code and "message". When JSONRPC is set the body is instead a
// JSON-RPC error response with RPCID (null if empty) and RPCCode, whose
// message is Message and whose data carries the "error" code, so that MCP
// clients and models can read why.
type Response struct {
	Status    int
	Challenge string
	Code      string
	Message   string
	JSONRPC   bool
	RPCID     json.RawMessage
	RPCCode   int
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
		return Response{Status: http.StatusUnauthorized, Challenge: bearer, Code: "unauthorized",
			Message: "An API key is required. Send it as 'Authorization: Bearer <key>'."}
	case errors.Is(err, ErrConflictingCredentials):
		return Response{Status: http.StatusBadRequest, Challenge: bearer + `, error="invalid_request"`, Code: "invalid_request",
			Message: "Send exactly one API key, in one header."}
	case errors.Is(err, ErrInvalidKey):
		return Response{Status: http.StatusUnauthorized, Challenge: bearer + `, error="invalid_token"`, Code: "invalid_token",
			Message: "The API key is invalid, expired or revoked."}
	case errors.Is(err, ErrAddressNotAllowed):
		return Response{Status: http.StatusForbidden, Code: "address_not_allowed",
			Message: "This API key may not be used from this network address."}
	case errors.Is(err, ErrUserInactive):
		return Response{Status: http.StatusForbidden, Code: "account_inactive",
			Message: "The account this API key belongs to is not active."}
	case errors.Is(err, ErrInsufficientScope):
		var se *ScopeError
		if !errors.As(err, &se) {
			se = &ScopeError{Reason: "this API key may not perform this operation"}
		}
		resp := Response{Status: http.StatusForbidden, Code: "insufficient_scope", Message: se.Reason,
			JSONRPC: true, RPCID: se.ID, RPCCode: RPCCodeForbidden}
		resp.Challenge = bearer + `, error="insufficient_scope"`
		if se.Blocked {
			resp.Code = "blocked"
		} else if len(se.Required) > 0 { // empty when the policy denies outright: no scope would help
			resp.Challenge += `, scope="` + strings.Join(se.Required, " ") + `"`
		}
		return resp
	case errors.Is(err, ErrRateLimited):
		resp := Response{Status: http.StatusTooManyRequests, Code: "rate_limited",
			Message: "Too many requests from this API key, please try again later."}
		var rl *RateLimitError
		if errors.As(err, &rl) && rl.ID != nil {
			resp.JSONRPC, resp.RPCID, resp.RPCCode = true, rl.ID, RPCCodeRateLimited
		}
		return resp
	case errors.Is(err, ErrBodyTooLarge):
		return Response{Status: http.StatusRequestEntityTooLarge, Code: "request_too_large",
			Message: "The request body is too large."}
	case errors.Is(err, ErrParse):
		return Response{Status: http.StatusBadRequest, Code: "parse_error",
			Message: "Parse error: the request body is not valid JSON.", JSONRPC: true, RPCCode: RPCCodeParseError}
	case errors.Is(err, ErrInvalidRequest):
		return Response{Status: http.StatusBadRequest, Code: "invalid_request",
			Message: "Invalid request: the body is not a JSON-RPC message.", JSONRPC: true, RPCCode: RPCCodeInvalidRequest}
	case errors.Is(err, ErrUnavailable):
		return Response{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable",
			Message: "Authentication is temporarily unavailable. Try again shortly."}
	default:
		return Response{Status: http.StatusInternalServerError, Code: "internal_error",
			Message: "The request could not be authenticated."}
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
	var body []byte
	if resp.JSONRPC {
		id := resp.RPCID
		if len(id) == 0 {
			id = json.RawMessage("null")
		}
		type rpcData struct {
			Error string `json:"error"`
		}
		type rpcError struct {
			Code    int     `json:"code"`
			Message string  `json:"message"`
			Data    rpcData `json:"data"`
		}
		body, _ = json.Marshal(struct {
			JSONRPC string          `json:"jsonrpc"`
			ID      json.RawMessage `json:"id"`
			Error   rpcError        `json:"error"`
		}{"2.0", id, rpcError{resp.RPCCode, resp.Message, rpcData{resp.Code}}})
	} else {
		body, _ = json.Marshal(struct {
			Error   string `json:"error"`
			Message string `json:"message"`
		}{resp.Code, resp.Message})
	}
	_, _ = w.Write(append(body, '\n'))
}
