package mcpauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/mcpauth/internal/rpcpeek"
	"github.com/mcpauth/mcpauth/scope"
)

// record writes the request's audit events: one per JSON-RPC message of an
// allowed request (at most maxEventsPerRequest; the rest aggregated into one
// event with a Count), or one for the request when it has none (GET,
// DELETE) or was refused. A refused request is one event whatever its size (the
// refused message, or the first one), so that a flood of refused messages
// cannot flood the audit log. With wait set (strict audit) it returns
// ErrUnavailable if an event cannot be recorded.
func (g *Guard) record(r *http.Request, x *exchange, status int, cause error, wait bool) error {
	ev := audit.Event{
		Time:            x.now,
		RequestID:       x.requestID,
		Outcome:         outcomeOf(cause),
		Reason:          reasonOf(cause),
		SessionID:       r.Header.Get("Mcp-Session-Id"),
		ProtocolVersion: r.Header.Get("Mcp-Protocol-Version"),
		Status:          status,
		UserAgent:       r.Header.Get("User-Agent"),
		Instance:        g.opts.Instance,
		Credential:      string(x.kind),
	}
	if x.idMade {
		// Made by audit's generator for this request: unique, so it is
		// also the ID of the request's first event (the Writer makes the
		// others'). Only once: a Strict refusal records again.
		ev.ID, x.idMade = x.requestID, false
	}
	if !wait {
		ev.Duration = g.opts.Now().Sub(x.now)
	}
	if ip := x.clientIP(r, g.trusted); ip.IsValid() {
		ev.ClientIP = x.more.formatIP(ip)
	}
	if x.entry != nil {
		ev.KeyID, ev.UserID = x.entry.principal.KeyID, x.entry.principal.UserID
		if errors.Is(cause, ErrKeyExpired) {
			ev.Action = audit.ActionExpiredKeyUsed
		}
	}
	ctx := x.more.detach(r.Context())
	if len(x.msgs) == 0 {
		ev.Method = r.Method
		return g.emit(ctx, ev, wait)
	}
	if cause != nil {
		m := &x.msgs[0]
		var refused *ScopeError
		if errors.As(cause, &refused) {
			for i := range x.msgs {
				if x.msgs[i].Kind != rpcpeek.Response && sameID(x.msgs[i].ID, refused.ID) {
					m = &x.msgs[i]
					break
				}
			}
		}
		g.describe(&ev, m, x.more)
		return g.emit(ctx, ev, wait)
	}
	n := len(x.msgs)
	if n > maxEventsPerRequest {
		n = maxEventsPerRequest - 1 // the rest are aggregated into one event
	}
	for i := range x.msgs[:n] {
		m := &x.msgs[i]
		e := ev
		if i > 0 {
			e.ID = "" // the first event's
		}
		g.describe(&e, m, x.more)
		if g.opts.AuditArguments {
			if args := m.Arguments; len(args) > 0 { // exactly the bytes the handler gets
				e.Arguments = audit.RedactArguments(args, g.opts.AuditRedact)
			}
		}
		if err := g.emit(ctx, e, wait); err != nil {
			return err
		}
	}
	if rest := x.msgs[n:]; len(rest) > 0 {
		e := ev
		e.ID = "" // the first event's
		e.Method, e.Count = aggregateMethod(rest), len(rest)
		return g.emit(ctx, e, wait)
	}
	return nil
}

// maxEventsPerRequest bounds the events one request produces: past it, the
// remaining messages of a batch are recorded as one event whose Count says
// how many there were, so that one large request cannot flood the log.
const maxEventsPerRequest = 16

// aggregateMethod is the method of an aggregated event: the messages' one
// method, or "batch" when they differ.
func aggregateMethod(msgs []rpcpeek.Message) string {
	m := msgs[0].Method
	for i := range msgs {
		if msgs[i].Method != m || msgs[i].Kind == rpcpeek.Response {
			return "batch"
		}
	}
	return internMethod(m)
}

// describe fills an event's MCP fields from a message. The message's
// strings alias the pooled request body, so every one is copied: events
// outlive the request.
func (g *Guard) describe(e *audit.Event, m *rpcpeek.Message, o *outlivingMore) {
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
		e.Tool = o.cloneTool(m.Name)
	case scope.MethodPromptsGet:
		e.Prompt = strings.Clone(m.Name)
	case scope.MethodResourcesRead, scope.MethodResourcesSubscribe, scope.MethodResourcesUnsubscribe:
		e.ResourceURI = strings.Clone(m.URI)
	case scope.MethodCompletionComplete:
		e.Prompt, e.ResourceURI = strings.Clone(m.RefName), strings.Clone(m.RefURI)
	}
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
