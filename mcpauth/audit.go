package mcpauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/mcpauth/internal/rpcpeek"
	"github.com/mcpauth/mcpauth/scope"
)

// maxRequestIDLen bounds a client-supplied request ID.
const maxRequestIDLen = 64

// requestID returns the request's ID header if it is a sane token (letters,
// digits, - _ . : at most 64), else a new ID.
func requestID(r *http.Request, header string) string {
	if v := r.Header.Get(header); v != "" && len(v) <= maxRequestIDLen {
		ok := true
		for i := range len(v) {
			c := v[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
				ok = false
				break
			}
		}
		if ok {
			return v
		}
	}
	return audit.NewEventID()
}

// reasonOf names an error for audit events: short, stable, never the
// error text (which may carry internal detail).
func reasonOf(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrNoCredential):
		return "no_credential"
	case errors.Is(err, ErrConflictingCredentials):
		return "conflicting_credentials"
	case errors.Is(err, ErrMalformedKey):
		return "malformed_key"
	case errors.Is(err, ErrKeyRevoked):
		return "key_revoked"
	case errors.Is(err, ErrKeyExpired):
		return "key_expired"
	case errors.Is(err, ErrUnknownKey):
		return "unknown_key"
	case errors.Is(err, ErrAddressNotAllowed):
		return "address_not_allowed"
	case errors.Is(err, ErrUserInactive):
		return "user_inactive"
	case errors.Is(err, ErrBlocked):
		return "blocked"
	case errors.Is(err, ErrInsufficientScope):
		return "insufficient_scope"
	case errors.Is(err, ErrRateLimited):
		return "rate_limited"
	case errors.Is(err, ErrBodyTooLarge):
		return "body_too_large"
	case errors.Is(err, ErrParse):
		return "parse_error"
	case errors.Is(err, ErrInvalidRequest):
		return "invalid_request"
	case errors.Is(err, ErrUnavailable):
		return "unavailable"
	default:
		return "error"
	}
}

func outcomeOf(err error) audit.Outcome {
	switch {
	case err == nil:
		return audit.OutcomeAllowed
	case errors.Is(err, ErrNoCredential), errors.Is(err, ErrConflictingCredentials), errors.Is(err, ErrInvalidKey):
		return audit.OutcomeUnauthenticated
	case errors.Is(err, ErrRateLimited):
		return audit.OutcomeRateLimited
	case errors.Is(err, ErrUnavailable):
		return audit.OutcomeError
	default:
		return audit.OutcomeDenied
	}
}

// record writes the request's audit events: one per JSON-RPC message, or
// one for the request when it has none (GET, DELETE, refused before the
// body was read). When the request was refused for one message, that
// message carries the refusal and the others of the batch are recorded as
// denied with reason "batch_refused". With wait set (strict audit) it
// returns ErrUnavailable if an event cannot be recorded.
func (g *Guard) record(r *http.Request, x *exchange, status int, cause error, wait bool) error {
	ev := audit.Event{
		Time:            x.start,
		RequestID:       x.requestID,
		Outcome:         outcomeOf(cause),
		Reason:          reasonOf(cause),
		SessionID:       r.Header.Get("Mcp-Session-Id"),
		ProtocolVersion: r.Header.Get("Mcp-Protocol-Version"),
		Status:          status,
		UserAgent:       r.Header.Get("User-Agent"),
	}
	if !wait {
		ev.Duration = g.opts.Now().Sub(x.start)
	}
	if ip := clientIP(r, g.trusted); ip.IsValid() {
		ev.ClientIP = ip.String()
	}
	if x.entry != nil {
		ev.KeyID, ev.UserID = x.entry.principal.KeyID, x.entry.principal.UserID
		if errors.Is(cause, ErrKeyExpired) {
			ev.Action = audit.ActionExpiredKeyUsed
		}
	}
	ctx := context.WithoutCancel(r.Context())
	if len(x.msgs) == 0 {
		ev.Method = r.Method
		return g.emit(ctx, ev, wait)
	}
	var refused *ScopeError
	errors.As(cause, &refused)
	for i := range x.msgs {
		m := &x.msgs[i]
		e := ev
		g.describe(&e, m)
		if g.opts.AuditArguments {
			if args := argumentsOf(m); len(args) > 0 {
				e.Arguments = audit.RedactArguments(args, g.opts.AuditRedact)
			}
		}
		if refused != nil && !sameID(m.ID, refused.ID) {
			e.Reason = "batch_refused"
		}
		if err := g.emit(ctx, e, wait); err != nil {
			return err
		}
	}
	return nil
}

// describe fills an event's MCP fields from a message. The message's
// strings alias the pooled request body, so every one is copied: events
// outlive the request.
func (g *Guard) describe(e *audit.Event, m *rpcpeek.Message) {
	e.Method = internMethod(m.Method)
	if m.Kind == rpcpeek.Response {
		e.Method = "response"
	}
	if len(m.ID) > 0 {
		e.RPCID = string(m.ID)
	}
	if m.ProtocolVersion != "" {
		e.ProtocolVersion = strings.Clone(m.ProtocolVersion)
	}
	switch m.Method {
	case scope.MethodToolsCall:
		e.Tool = strings.Clone(m.Name)
	case scope.MethodPromptsGet:
		e.Prompt = strings.Clone(m.Name)
	case scope.MethodResourcesRead, scope.MethodResourcesSubscribe, scope.MethodResourcesUnsubscribe:
		e.ResourceURI = strings.Clone(m.URI)
	case scope.MethodCompletionComplete:
		e.Prompt, e.ResourceURI = strings.Clone(m.RefName), strings.Clone(m.RefURI)
	}
}

// argumentsOf returns params.arguments of a message: the raw bytes rpcpeek
// found, which are exactly what the server's decoder hands the tool (a
// second "arguments" in any spelling is refused before the handler).
func argumentsOf(m *rpcpeek.Message) json.RawMessage {
	return m.Arguments
}

// knownMethods are returned without copying.
var knownMethods = map[string]string{}

func init() {
	for _, m := range []string{"initialize", "ping", "tools/list", "tools/call", "resources/list", "resources/templates/list",
		"resources/read", "resources/subscribe", "resources/unsubscribe", "prompts/list", "prompts/get",
		"completion/complete", "logging/setLevel", "notifications/initialized", "notifications/cancelled",
		"notifications/progress", "notifications/roots/list_changed"} {
		knownMethods[m] = m
	}
}

// internMethod returns a copy of m, or the shared constant for the
// standard MCP methods (no allocation).
func internMethod(m string) string {
	if c, ok := knownMethods[m]; ok {
		return c
	}
	return strings.Clone(m)
}

func sameID(a, b []byte) bool { return string(a) == string(b) }

func (g *Guard) emit(ctx context.Context, e audit.Event, wait bool) error {
	err := g.opts.Audit.Record(ctx, e)
	if err == nil {
		return nil
	}
	if wait {
		g.opts.Logger.LogAttrs(ctx, slog.LevelError, "mcpauth: audit event could not be recorded; refusing the request",
			slog.String("key_id", e.KeyID), slog.String("error", err.Error()))
		return fmt.Errorf("%w: audit", ErrUnavailable)
	}
	return nil // BestEffort/Blocking writers count their own drops
}
