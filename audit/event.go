package audit

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strconv"
	"time"
)

// Outcome says how a request or message ended.
type Outcome string

// Outcomes recorded by the middleware.
const (
	// OutcomeAllowed: authenticated and authorised; the handler ran.
	OutcomeAllowed Outcome = "allowed"
	// OutcomeDenied: authenticated, but refused (missing scope, blocked
	// resource, inactive user).
	OutcomeDenied Outcome = "denied"
	// OutcomeUnauthenticated: no usable credential (missing, malformed,
	// unknown, revoked or expired key).
	OutcomeUnauthenticated Outcome = "unauthenticated"
	// OutcomeRateLimited: refused by the rate limiter.
	OutcomeRateLimited Outcome = "rate_limited"
	// OutcomeError: refused because a backend failed (store, limiter).
	OutcomeError Outcome = "error"
)

// Valid reports whether o is one of the defined outcomes.
func (o Outcome) Valid() bool {
	switch o {
	case OutcomeAllowed, OutcomeDenied, OutcomeUnauthenticated, OutcomeRateLimited, OutcomeError:
		return true
	}
	return false
}

// Action is a key lifecycle action. Events about MCP traffic leave it empty.
type Action string

// Key lifecycle actions.
const (
	ActionCreated        Action = "created"
	ActionRotated        Action = "rotated"
	ActionRevoked        Action = "revoked"
	ActionExpiredKeyUsed Action = "expired_key_used"
)

// Event is one audit record: an MCP message, a failed authentication or a
// key lifecycle action. It is a plain value with no pointers to share, so it
// can be built on the request path and queued without allocation.
//
// An Event never carries key material: keys appear by their public KeyID
// only. Tool arguments are empty unless the operator opted in, and then they
// should go through [RedactArguments] first.
type Event struct {
	// Time is when the request arrived (or the action happened).
	Time time.Time
	// ID identifies the event; see [NewEventID]. The Writer fills an empty ID.
	ID string
	// RequestID is the request's ID, the one sent back in a response header.
	// One HTTP request carrying a JSON-RPC batch yields several events with
	// the same RequestID.
	RequestID string
	// UserID is the host application's user the key belongs to.
	UserID string
	// KeyID is the public ID of the API key; never the key itself. For an
	// OAuth access token it is the grant's derived ID ("oauth_...").
	KeyID string
	// Credential is the kind of credential the request carried, told from
	// its shape: "api_key", "jwt" or "opaque_token"; empty when it carried
	// none, and for lifecycle events.
	Credential string
	// Outcome is how the message ended.
	Outcome Outcome
	// Reason is a short machine-readable cause for a refusal or error, such as
	// "insufficient_scope", "key_expired", "store_unavailable".
	Reason string
	// Action is set for key lifecycle events only.
	Action Action
	// Method is the JSON-RPC method ("tools/call", "resources/read", ...).
	Method string
	// Tool is params.name of a tools/call.
	Tool string
	// ResourceURI is params.uri of a resources/read or resources/subscribe.
	ResourceURI string
	// Prompt is params.name of a prompts/get.
	Prompt string
	// RPCID is the JSON-RPC id as it appeared on the wire (`7`, `"abc"`).
	RPCID string
	// SessionID is the Mcp-Session-Id header.
	SessionID string
	// ProtocolVersion is the MCP-Protocol-Version header.
	ProtocolVersion string
	// Status is the HTTP status of the response.
	Status int
	// Duration is the time from request start to response written.
	Duration time.Duration
	// Count is the number of MCP messages this one event stands for. It is
	// set (to 2 or more) on the event that aggregates the messages of one
	// HTTP request past the middleware's per-request event bound: their
	// common fields are recorded once, with the number of messages here.
	// 0, the zero value, is an ordinary event for one message; every sink
	// treats values below 2 as 0 (stores 0, omits it from JSON and slog).
	// Use [Event.Messages] to count messages.
	Count int
	// ClientIP is the client address as the middleware determined it.
	ClientIP string
	// UserAgent is the User-Agent header.
	UserAgent string
	// Arguments are the tool call arguments, empty unless the operator opted
	// in; pass them through RedactArguments before recording.
	Arguments json.RawMessage
	// Attributes holds extra string attributes chosen by the host.
	Attributes map[string]string
	// Instance names the process that recorded the event (the Guard's or
	// the Manager's Options.Instance; default [DefaultInstance]: host name
	// and process ID), so that one trail shared by several instances says
	// which one served each request or made each change.
	Instance string
	// Actor, on key lifecycle events, says who made the change: the keys
	// API's "user:<id>" (the signed-in user), the CLI's "cli:<os user>",
	// or what the host named with keyadmin.WithActor (default "host").
	Actor string
}

// DefaultInstance is the instance name used when none is configured:
// "<host name>:<process ID>" ("api-7f9c:4211"), or "pid:<process ID>"
// when the host name is unknown.
func DefaultInstance() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "pid"
	}
	return host + ":" + strconv.Itoa(os.Getpid())
}

// Attribute keys used by Attrs, by the JSON-lines sink and by exports.
// Where the OpenTelemetry semantic conventions (MCP, GenAI, HTTP, user) have
// a name it is used; the rest are under "mcpauth.".
const (
	KeyTime            = "time"
	KeyID              = "mcpauth.event.id"
	KeyRequestID       = "mcpauth.request.id"
	KeyUserID          = "user.id"
	KeyKeyID           = "mcpauth.key.id"
	KeyCredential      = "mcpauth.credential.kind"
	KeyOutcome         = "mcpauth.outcome"
	KeyReason          = "error.type"
	KeyAction          = "mcpauth.key.action"
	KeyMethod          = "mcp.method.name"
	KeyTool            = "gen_ai.tool.name"
	KeyResourceURI     = "mcp.resource.uri"
	KeyPrompt          = "gen_ai.prompt.name"
	KeyRPCID           = "jsonrpc.request.id"
	KeySessionID       = "mcp.session.id"
	KeyProtocolVersion = "mcp.protocol.version"
	KeyStatus          = "http.response.status_code"
	KeyDuration        = "mcpauth.duration_ns"
	KeyCount           = "mcpauth.event.count"
	KeyClientIP        = "client.address"
	KeyUserAgent       = "user_agent.original"
	KeyArguments       = "gen_ai.tool.call.arguments"
	KeyAttributes      = "mcpauth.attributes"
	KeyInstance        = "service.instance.id"
	KeyActor           = "mcpauth.actor"
)

// Attrs returns the event's non-empty fields as slog attributes named after
// the Key... constants (time excluded: slog records carry their own). Duration
// is a slog duration; Arguments are a string of JSON; Attributes a group.
func (e Event) Attrs() []slog.Attr {
	a := make([]slog.Attr, 0, 12)
	str := func(k, v string) {
		if v != "" {
			a = append(a, slog.String(k, v))
		}
	}
	str(KeyID, e.ID)
	str(KeyRequestID, e.RequestID)
	str(KeyUserID, e.UserID)
	str(KeyKeyID, e.KeyID)
	str(KeyCredential, e.Credential)
	str(KeyOutcome, string(e.Outcome))
	str(KeyReason, e.Reason)
	str(KeyAction, string(e.Action))
	str(KeyMethod, e.Method)
	str(KeyTool, e.Tool)
	str(KeyResourceURI, e.ResourceURI)
	str(KeyPrompt, e.Prompt)
	str(KeyRPCID, e.RPCID)
	str(KeySessionID, e.SessionID)
	str(KeyProtocolVersion, e.ProtocolVersion)
	if e.Status != 0 {
		a = append(a, slog.Int(KeyStatus, e.Status))
	}
	if e.Duration != 0 {
		a = append(a, slog.Duration(KeyDuration, e.Duration))
	}
	if e.Count > 1 {
		a = append(a, slog.Int(KeyCount, e.Count))
	}
	str(KeyClientIP, e.ClientIP)
	str(KeyUserAgent, e.UserAgent)
	str(KeyInstance, e.Instance)
	str(KeyActor, e.Actor)
	if len(e.Arguments) > 0 {
		a = append(a, slog.String(KeyArguments, string(e.Arguments)))
	}
	if len(e.Attributes) > 0 {
		g := make([]any, 0, len(e.Attributes))
		for _, k := range sortedKeys(e.Attributes) {
			g = append(g, slog.String(k, e.Attributes[k]))
		}
		a = append(a, slog.Group(KeyAttributes, g...))
	}
	return a
}

// Messages returns the number of MCP messages the event stands for: Count
// when it is 2 or more, else 1.
func (e Event) Messages() int { return max(e.Count, 1) }

// level is the slog level an event is logged at: Info for allowed traffic
// and lifecycle actions, Warn for refusals, Error for backend failures.
func (e Event) level() slog.Level {
	switch e.Outcome {
	case OutcomeDenied, OutcomeUnauthenticated, OutcomeRateLimited:
		return slog.LevelWarn
	case OutcomeError:
		return slog.LevelError
	}
	return slog.LevelInfo
}

// Sink receives audit events. Implementations document whether they are
// safe for concurrent use; all in this module are.
//
// Record returns only once the sink is done with the event (written,
// or handed to something that will write it, as documented by the sink).
type Sink interface {
	Record(ctx context.Context, e Event) error
}

// BatchSink is an optional interface for sinks that write several events
// at once more cheaply than one by one (a multi-row INSERT). The Writer
// hands whole batches to sinks that implement it. RecordBatch either writes
// every event or returns an error; it must not keep the slice.
type BatchSink interface {
	Sink
	RecordBatch(ctx context.Context, events []Event) error
}

// SinkFunc adapts a function to the Sink interface.
type SinkFunc func(ctx context.Context, e Event) error

// Record calls f(ctx, e).
func (f SinkFunc) Record(ctx context.Context, e Event) error { return f(ctx, e) }

var _ Sink = SinkFunc(nil)
