package mcpauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/mcpauth/accesstoken"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
)

// kindError is a sentinel that is also another sentinel: ErrKeyExpired is an
// ErrInvalidKey, so one errors.Is check picks the response while audit and
// logs keep the precise reason.
type kindError struct {
	msg    string
	parent error
	also   error // a second parent, or nil
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() []error {
	if e.also == nil {
		return []error{e.parent}
	}
	return []error{e.parent, e.also}
}

// errMalformedKey is every credential that is not a key (apikey.ParseKey
// failed, or longer than any key): an ErrInvalidKey and an
// apikey.ErrMalformedKey. One value, so that refusing attacker input
// allocates nothing.
var errMalformedKey = &kindError{msg: "mcpauth: malformed key", parent: ErrInvalidKey, also: apikey.ErrMalformedKey}

// Errors returned by Authenticate and handed to Options.ErrorHandler. Test
// them with errors.Is; the precise ones (ErrKeyExpired, ...) are also
// ErrInvalidKey, so one check covers every "bad key" case.
var (
	// ErrNoCredential: the request carries no API key.
	ErrNoCredential = errors.New("mcpauth: no credential")
	// ErrKeyInQuery: the request carries no key in a header but has one in
	// the URL query (access_token, api_key, ...), which is never accepted.
	// It is also an ErrNoCredential; the response says why it was ignored.
	ErrKeyInQuery = &kindError{msg: "mcpauth: no credential (a key in the URL query is ignored)", parent: ErrNoCredential}
	// ErrNotBearer: the request carries an Authorization header of another
	// scheme (Basic, ...) and no key. It is also an ErrNoCredential.
	ErrNotBearer = &kindError{msg: "mcpauth: no credential (only Bearer is accepted)", parent: ErrNoCredential}
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
	// ErrSessionUserMismatch: the request names an MCP session that was
	// issued to another user. SDK adapters that bind sessions to users
	// answer it (through WriteError).
	ErrSessionUserMismatch = errors.New("mcpauth: session user mismatch")
	// ErrRateLimited: the key (or its user) is over its rate limit. The
	// error is a *RateLimitError.
	ErrRateLimited = errors.New("mcpauth: rate limited")
	// ErrBodyTooLarge: the POST body is larger than Options.MaxBodyBytes.
	ErrBodyTooLarge = errors.New("mcpauth: request body too large")
	// ErrParse: the POST body is not JSON (JSON-RPC -32700).
	ErrParse = errors.New("mcpauth: request body is not valid JSON")
	// ErrInvalidRequest: the POST body is JSON but not a JSON-RPC message
	// or batch, or a message whose meaning JSON decoders could disagree on
	// (JSON-RPC -32600).
	ErrInvalidRequest = errors.New("mcpauth: request body is not a JSON-RPC message")
	// ErrBatchTooLarge: the POST body is a batch of more messages than
	// Options.MaxBatchLength. It is also an ErrInvalidRequest.
	ErrBatchTooLarge = &kindError{msg: "mcpauth: batch too large", parent: ErrInvalidRequest}
	// ErrHeaderMismatch: the Mcp-Method or Mcp-Name header (MCP 2026-07-28,
	// SEP-2243) disagrees with the body, or is repeated, or comes with a
	// batch. It is also an ErrInvalidRequest.
	ErrHeaderMismatch = &kindError{msg: "mcpauth: Mcp-Method or Mcp-Name header disagrees with the body", parent: ErrInvalidRequest}
)

// JSON-RPC error codes in mcpauth's responses (Response.RPCCode): the
// standard -32700 (parse error) and -32600 (invalid request) for bad
// bodies, and custom codes in -32010..-32013 for refusals: -32010
// unauthorized (HTTP 401, or 400 for two keys), -32011 forbidden (403),
// -32012 rate limited (429), -32013 unavailable (503). No official SDK uses
// the custom codes for itself (the go-sdk takes -32001..-32004 and -32042,
// -32003/-32004 meaning "connection closing"; the TypeScript SDK -32000 and
// -32001; mcp-go and the 2026-07-28 specification -32020..-32022), so a
// client reports them as the server's error instead of a dead connection.
// The two that SDK adapters answer with are exported.
const (
	rpcCodeParseError     = -32700
	rpcCodeInvalidRequest = -32600
	// RPCCodeUnauthorized: no key, an invalid key, or two keys (HTTP 401/400).
	RPCCodeUnauthorized = -32010
	// RPCCodeForbidden: insufficient scope, blocked target, inactive account,
	// address not allowed, session of another user (HTTP 403).
	RPCCodeForbidden   = -32011
	rpcCodeRateLimited = -32012
	rpcCodeUnavailable = -32013
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
	// Cost and Burst are set when the request costs more than the limit
	// allows at once (Cost > Burst): it can never pass as it is and must be
	// split into smaller requests.
	Cost, Burst int
}

func (e *RateLimitError) Error() string {
	if e.Cost > e.Burst {
		return fmt.Sprintf("mcpauth: request costs %d, more than policy %q allows at once (%d)", e.Cost, e.Policy, e.Burst)
	}
	return fmt.Sprintf("mcpauth: rate limited by policy %q; retry after %s", e.Policy, e.RetryAfter)
}

// Is makes a RateLimitError match ErrRateLimited.
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }

// messagesError attaches the JSON-RPC messages of a refused POST to the
// refusal, so that the response can answer each of them with its id.
// Require wraps every refusal of a request whose body it read; errors.Is
// and errors.As see through it.
type messagesError struct {
	err   error
	batch bool
	ids   []json.RawMessage // the ids of the request messages, in order
	tool  bool              // the only message is a tools/call request
}

func (e *messagesError) Error() string { return e.err.Error() }
func (e *messagesError) Unwrap() error { return e.err }

// Response is what the default error handler writes for an error: the HTTP
// status, the WWW-Authenticate challenge (empty for none) and the body's
// "error" code and Message.
//
// When JSONRPC is set the body is a JSON-RPC error response instead, whose
// message is Message and whose data carries the "error" code (and "scope"
// and "retry_after" when set), so that MCP clients and models can read why:
// one response object with RPCID (null if empty), or, when Batch is set, an
// array with one error object per id in RPCIDs (the one equal to RPCID
// carries Message, the others say they were not executed). With ToolResult
// (and not Batch) the body is instead a successful JSON-RPC response whose
// result is a tools/call result with isError set and Message as its text,
// the form that reaches the model in every client.
type Response struct {
	Status    int
	Challenge string
	Code      string
	Message   string
	JSONRPC   bool
	RPCID     json.RawMessage
	RPCCode   int
	// Batch and RPCIDs answer a batch, one element per request in it.
	Batch  bool
	RPCIDs []json.RawMessage
	// Scope lists the scopes that would allow the operation ("" if none would).
	Scope string
	// RetryAfter is set for rate-limit refusals.
	RetryAfter time.Duration
	// ToolResult answers a refused tools/call as an isError tool result.
	ToolResult bool
}

// ResponseFor maps an error from the middleware to the response the default
// error handler sends (in the default RefusalHTTP mode). It is the one place
// where errors become statuses; custom error handlers can call it and change
// only what they need. Unknown errors map to 500 with a generic message:
// internal error text is never part of a Response.
func ResponseFor(err error, realm string) Response {
	if realm == "" {
		realm = defaultRealm
	}
	return responseWithMessages(err, `Bearer realm="`+realm+`"`)
}

// responseWithMessages is ResponseFor with the challenge's start (realm,
// and resource_metadata with OAuth) given.
func responseWithMessages(err error, bearer string) Response {
	resp := responseFor(err, bearer)
	var me *messagesError
	if errors.As(err, &me) && (resp.JSONRPC || len(me.ids) > 0) {
		resp.JSONRPC = true
		if resp.RPCCode == 0 {
			resp.RPCCode = rpcCodeFor(resp.Status)
		}
		if me.batch {
			resp.Batch, resp.RPCIDs = true, me.ids
		}
		if resp.RPCID == nil && len(me.ids) > 0 {
			resp.RPCID = me.ids[0]
		}
	}
	return resp
}

func rpcCodeFor(status int) int {
	switch status {
	case http.StatusUnauthorized:
		return RPCCodeUnauthorized
	case http.StatusForbidden:
		return RPCCodeForbidden
	case http.StatusTooManyRequests:
		return rpcCodeRateLimited
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		return rpcCodeInvalidRequest
	default:
		return rpcCodeUnavailable
	}
}

// challenge appends an RFC 6750 error and error_description to a Bearer
// challenge.
func challenge(bearer, code, description string) string {
	return bearer + `, error="` + code + `", error_description="` + descriptionValue(description) + `"`
}

// descriptionValue keeps the characters RFC 6750 allows in error_description
// (printable ASCII except the double quote and the backslash); a double
// quote becomes a single one, the rest is dropped.
func descriptionValue(s string) string {
	ok := true
	for i := range len(s) {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := range len(s) {
		switch c := s[i]; {
		case c == '"':
			b = append(b, '\'')
		case c < 0x20 || c > 0x7e || c == '\\':
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

// meaning is what one error means to every part of mcpauth that answers or
// records it: the HTTP status and "error" code of responses, the message a
// client (and a model) reads, and the audit event's Reason and Outcome.
type meaning struct {
	err     error
	status  int
	code    string
	message string
	reason  string
	outcome audit.Outcome
}

const (
	invalidKeyMessage   = "The API key is invalid, expired or revoked."
	invalidTokenMessage = "The access token is invalid or expired."
)

// meanings is the one table of what errors mean. The first entry whose err
// matches (errors.Is) applies, so precise errors come before those they
// also are (ErrKeyExpired before ErrInvalidKey). Unknown errors mean
// internalError.
var meanings = []meaning{
	{ErrKeyInQuery, 401, "unauthorized", "An API key in the URL is never accepted (URLs end up in logs); send it as 'Authorization: Bearer <key>'.", "key_in_query", audit.OutcomeUnauthenticated},
	{ErrNotBearer, 401, "unauthorized", "Only Bearer credentials are accepted; send the API key as 'Authorization: Bearer <key>'.", "not_bearer", audit.OutcomeUnauthenticated},
	{ErrNoCredential, 401, "unauthorized", "An API key is required. Send it as 'Authorization: Bearer <key>'.", "no_credential", audit.OutcomeUnauthenticated},
	{ErrConflictingCredentials, 400, "invalid_request", "Send exactly one API key, in one header.", "conflicting_credentials", audit.OutcomeUnauthenticated},
	{apikey.ErrMalformedKey, 401, "invalid_token", invalidKeyMessage, "malformed_key", audit.OutcomeUnauthenticated},
	{accesstoken.ErrExpired, 401, "invalid_token", invalidTokenMessage, "token_expired", audit.OutcomeUnauthenticated},
	{accesstoken.ErrNotYetValid, 401, "invalid_token", invalidTokenMessage, "token_not_yet_valid", audit.OutcomeUnauthenticated},
	{accesstoken.ErrAudience, 401, "invalid_token", invalidTokenMessage, "token_audience", audit.OutcomeUnauthenticated},
	{accesstoken.ErrIssuer, 401, "invalid_token", invalidTokenMessage, "token_issuer", audit.OutcomeUnauthenticated},
	{accesstoken.ErrSignature, 401, "invalid_token", invalidTokenMessage, "token_signature", audit.OutcomeUnauthenticated},
	{accesstoken.ErrType, 401, "invalid_token", invalidTokenMessage, "token_type", audit.OutcomeUnauthenticated},
	{accesstoken.ErrInactive, 401, "invalid_token", invalidTokenMessage, "token_inactive", audit.OutcomeUnauthenticated},
	{accesstoken.ErrInvalid, 401, "invalid_token", invalidTokenMessage, "invalid_token", audit.OutcomeUnauthenticated},
	{ErrKeyRevoked, 401, "invalid_token", invalidKeyMessage, "key_revoked", audit.OutcomeUnauthenticated},
	{ErrKeyExpired, 401, "invalid_token", invalidKeyMessage, "key_expired", audit.OutcomeUnauthenticated},
	{ErrUnknownKey, 401, "invalid_token", invalidKeyMessage, "unknown_key", audit.OutcomeUnauthenticated},
	{ErrInvalidKey, 401, "invalid_token", invalidKeyMessage, "invalid_key", audit.OutcomeUnauthenticated},
	{ErrAddressNotAllowed, 403, "address_not_allowed", "This API key may not be used from this network address.", "address_not_allowed", audit.OutcomeDenied},
	{ErrUserInactive, 403, "account_inactive", "The account this API key belongs to is not active.", "user_inactive", audit.OutcomeDenied},
	{ErrBlocked, 403, "blocked", "This target is blocked by the server's policy.", "blocked", audit.OutcomeDenied},
	{ErrInsufficientScope, 403, "insufficient_scope", "This API key may not perform this operation.", "insufficient_scope", audit.OutcomeDenied},
	{ErrSessionUserMismatch, 403, "session_user_mismatch", "session user mismatch: this MCP session belongs to another user; start a new session with this key.", "session_user_mismatch", audit.OutcomeDenied},
	{ErrRateLimited, 429, "rate_limited", "Too many requests from this API key, please try again later.", "rate_limited", audit.OutcomeRateLimited},
	{ErrBodyTooLarge, 413, "request_too_large", "The request body is too large.", "body_too_large", audit.OutcomeDenied},
	{ErrParse, 400, "parse_error", "Parse error: the request body is not valid JSON.", "parse_error", audit.OutcomeDenied},
	{ErrBatchTooLarge, 400, "batch_too_large", "Invalid request: the batch has more messages than this server accepts in one request.", "batch_too_large", audit.OutcomeDenied},
	{ErrHeaderMismatch, 400, "header_mismatch", "Invalid request: the Mcp-Method or Mcp-Name header does not match the body.", "header_mismatch", audit.OutcomeDenied},
	{ErrInvalidRequest, 400, "invalid_request", "Invalid request: the body is not a JSON-RPC message, or has a key given twice or in another letter case.", "invalid_request", audit.OutcomeDenied},
	{ErrUnavailable, 503, "temporarily_unavailable", "Authentication is temporarily unavailable. Try again shortly.", "unavailable", audit.OutcomeError},
}

var internalError = meaning{status: 500, code: "internal_error", message: "The request could not be authenticated.", reason: "error", outcome: audit.OutcomeError}

// meaningOf looks err up in meanings.
func meaningOf(err error) meaning {
	for _, m := range meanings {
		if errors.Is(err, m.err) {
			return m
		}
	}
	return internalError
}

// reasonOf names an error for audit events: short, stable, never the
// error text (which may carry internal detail).
func reasonOf(err error) string {
	if err == nil {
		return ""
	}
	return meaningOf(err).reason
}

func outcomeOf(err error) audit.Outcome {
	if err == nil {
		return audit.OutcomeAllowed
	}
	return meaningOf(err).outcome
}

func responseFor(err error, bearer string) Response {
	m := meaningOf(err)
	resp := Response{Status: m.status, Code: m.code, Message: m.message, RPCCode: rpcCodeFor(m.status)}
	switch m.status {
	case http.StatusUnauthorized:
		resp.Challenge = bearer
		if m.code == "invalid_token" {
			resp.Challenge = challenge(bearer, "invalid_token", m.message)
		}
	case http.StatusBadRequest:
		if m.err == ErrConflictingCredentials {
			resp.Challenge, resp.RPCCode = challenge(bearer, "invalid_request", m.message), RPCCodeUnauthorized
		} else {
			resp.JSONRPC = true // the body's fault: a JSON-RPC error, id null unless known
		}
	}
	if m.err == ErrParse {
		resp.RPCCode = rpcCodeParseError
	}
	var se *ScopeError
	if errors.As(err, &se) {
		resp.Message, resp.JSONRPC, resp.RPCID = se.Reason, true, se.ID
		// A challenge only when some scope would allow the operation: for a
		// blocked or unlisted target a client asking for more scopes would
		// loop.
		if !se.Blocked && len(se.Required) > 0 {
			resp.Scope = strings.Join(se.Required, " ")
			resp.Challenge = challenge(bearer, "insufficient_scope", se.Reason) + `, scope="` + resp.Scope + `"`
		}
	}
	var rl *RateLimitError
	if errors.As(err, &rl) {
		resp.RetryAfter = rl.RetryAfter
		if rl.ID != nil {
			resp.JSONRPC, resp.RPCID = true, rl.ID
		}
		if rl.Cost > rl.Burst {
			resp.Message = fmt.Sprintf("This request costs %d rate-limit units, more than this API key may spend at once (%d). Send fewer messages per request.", rl.Cost, rl.Burst)
		}
	}
	return resp
}

type rpcData struct {
	Error      string `json:"error"`
	Scope      string `json:"scope,omitempty"`
	RetryAfter int64  `json:"retry_after,omitempty"`
}

type rpcError struct {
	Code    int     `json:"code"`
	Message string  `json:"message"`
	Data    rpcData `json:"data"`
}

type rpcErrorResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Error   rpcError        `json:"error"`
}

type toolText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type toolResult struct {
	Content []toolText `json:"content"`
	IsError bool       `json:"isError"`
}

type rpcResultResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  toolResult      `json:"result"`
}

// Write writes resp as the default error handler does: as JSON,
//
//	{"error":"invalid_token","message":"The API key is invalid, expired or revoked."}
//
// (a JSON-RPC error response carrying the request id for MCP POSTs), with
// the WWW-Authenticate challenge where one applies and Cache-Control:
// no-store. Custom error handlers use it to change one case and keep the
// rest: ResponseFor(err, realm).Write(w).
func (resp Response) Write(w http.ResponseWriter) {
	h := w.Header()
	if resp.Challenge != "" {
		h.Set("WWW-Authenticate", resp.Challenge)
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(resp.Status)
	var body []byte
	switch {
	case resp.JSONRPC && resp.Batch && len(resp.RPCIDs) > 0:
		out := make([]rpcErrorResponse, len(resp.RPCIDs))
		for i, id := range resp.RPCIDs {
			out[i] = rpcErrorResponse{"2.0", id, resp.rpcError()}
			if !bytes.Equal(id, resp.RPCID) {
				out[i].Error.Message = "Not executed: another message in this batch was refused (" + resp.Message + ")"
			}
		}
		body, _ = json.Marshal(out)
	case resp.JSONRPC && resp.ToolResult && len(resp.RPCID) > 0:
		body, _ = json.Marshal(rpcResultResponse{"2.0", resp.RPCID, toolResult{[]toolText{{"text", resp.Message}}, true}})
	case resp.JSONRPC:
		id := resp.RPCID
		if len(id) == 0 {
			id = json.RawMessage("null")
		}
		body, _ = json.Marshal(rpcErrorResponse{"2.0", id, resp.rpcError()})
	default:
		body, _ = json.Marshal(struct {
			Error   string `json:"error"`
			Message string `json:"message"`
		}{resp.Code, resp.Message})
	}
	_, _ = w.Write(append(body, '\n'))
}

func (resp *Response) rpcError() rpcError {
	code := resp.RPCCode
	if code == 0 {
		code = rpcCodeFor(resp.Status)
	}
	d := rpcData{Error: resp.Code, Scope: resp.Scope}
	if resp.RetryAfter > 0 {
		d.RetryAfter = int64((resp.RetryAfter + time.Second - 1) / time.Second)
	}
	return rpcError{code, resp.Message, d}
}
