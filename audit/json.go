package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"
)

// jsonEvent is the wire form of an Event: one flat object whose keys are the
// Key... constants.
type jsonEvent struct {
	Time            string            `json:"time"`
	ID              string            `json:"mcpauth.event.id,omitempty"`
	RequestID       string            `json:"mcpauth.request.id,omitempty"`
	UserID          string            `json:"user.id,omitempty"`
	KeyID           string            `json:"mcpauth.key.id,omitempty"`
	Credential      string            `json:"mcpauth.credential.kind,omitempty"`
	Outcome         Outcome           `json:"mcpauth.outcome,omitempty"`
	Reason          string            `json:"error.type,omitempty"`
	Action          Action            `json:"mcpauth.key.action,omitempty"`
	Method          string            `json:"mcp.method.name,omitempty"`
	Tool            string            `json:"gen_ai.tool.name,omitempty"`
	ResourceURI     string            `json:"mcp.resource.uri,omitempty"`
	Prompt          string            `json:"gen_ai.prompt.name,omitempty"`
	RPCID           string            `json:"jsonrpc.request.id,omitempty"`
	SessionID       string            `json:"mcp.session.id,omitempty"`
	ProtocolVersion string            `json:"mcp.protocol.version,omitempty"`
	Status          int               `json:"http.response.status_code,omitempty"`
	Duration        int64             `json:"mcpauth.duration_ns,omitempty"`
	Count           int               `json:"mcpauth.event.count,omitempty"`
	ClientIP        string            `json:"client.address,omitempty"`
	UserAgent       string            `json:"user_agent.original,omitempty"`
	Arguments       json.RawMessage   `json:"gen_ai.tool.call.arguments,omitempty"`
	Attributes      map[string]string `json:"mcpauth.attributes,omitempty"`
	Instance        string            `json:"service.instance.id,omitempty"`
	Actor           string            `json:"mcpauth.actor,omitempty"`
}

// MarshalJSON encodes the event as one flat JSON object keyed by the Key...
// constants, with the time in RFC 3339 (UTC, nanoseconds) and empty fields
// left out. Arguments that are not valid JSON are encoded as a JSON string.
func (e Event) MarshalJSON() ([]byte, error) {
	j := jsonEvent{
		Time: e.Time.UTC().Format(time.RFC3339Nano), ID: e.ID, RequestID: e.RequestID,
		UserID: e.UserID, KeyID: e.KeyID, Credential: e.Credential, Outcome: e.Outcome, Reason: e.Reason,
		Action: e.Action, Method: e.Method, Tool: e.Tool, ResourceURI: e.ResourceURI,
		Prompt: e.Prompt, RPCID: e.RPCID, SessionID: e.SessionID,
		ProtocolVersion: e.ProtocolVersion, Status: e.Status, Duration: int64(e.Duration),
		ClientIP: e.ClientIP, UserAgent: e.UserAgent, Attributes: e.Attributes,
		Instance: e.Instance, Actor: e.Actor,
	}
	if e.Count > 1 {
		j.Count = e.Count
	}
	if len(e.Arguments) > 0 {
		if json.Valid(e.Arguments) {
			j.Arguments = e.Arguments
		} else {
			s, _ := json.Marshal(string(e.Arguments))
			j.Arguments = s
		}
	}
	if e.Time.IsZero() {
		j.Time = ""
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(j); err != nil {
		return nil, fmt.Errorf("mcpauth/audit: encode event: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// UnmarshalJSON decodes what MarshalJSON produces.
func (e *Event) UnmarshalJSON(b []byte) error {
	var j jsonEvent
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("mcpauth/audit: decode event: %w", err)
	}
	var t time.Time
	if j.Time != "" {
		var err error
		if t, err = time.Parse(time.RFC3339Nano, j.Time); err != nil {
			return fmt.Errorf("mcpauth/audit: decode event time: %w", err)
		}
	}
	*e = Event{
		Time: t, ID: j.ID, RequestID: j.RequestID, UserID: j.UserID, KeyID: j.KeyID, Credential: j.Credential,
		Outcome: j.Outcome, Reason: j.Reason, Action: j.Action, Method: j.Method,
		Tool: j.Tool, ResourceURI: j.ResourceURI, Prompt: j.Prompt, RPCID: j.RPCID,
		SessionID: j.SessionID, ProtocolVersion: j.ProtocolVersion, Status: j.Status,
		Duration: time.Duration(j.Duration), ClientIP: j.ClientIP, UserAgent: j.UserAgent,
		Arguments: j.Arguments, Attributes: j.Attributes, Instance: j.Instance, Actor: j.Actor,
	}
	if j.Count > 1 {
		e.Count = j.Count
	}
	return nil
}

// JSONSink writes each event as one line of JSON (see Event.MarshalJSON) to
// an io.Writer. It is safe for concurrent use: lines never interleave. It
// implements BatchSink, writing a batch with one Write call.
type JSONSink struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

var _ BatchSink = (*JSONSink)(nil)

// NewJSONSink returns a sink writing JSON lines to w. Wrap a file in a
// bufio.Writer only if something flushes it; the sink itself does not buffer
// across calls, so every Record has reached w when it returns.
func NewJSONSink(w io.Writer) *JSONSink {
	return &JSONSink{w: w}
}

// Record writes one line.
func (s *JSONSink) Record(ctx context.Context, e Event) error {
	return s.RecordBatch(ctx, []Event{e})
}

// RecordBatch writes one line per event with a single Write.
func (s *JSONSink) RecordBatch(_ context.Context, events []Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = s.buf[:0]
	for _, e := range events {
		b, err := e.MarshalJSON()
		if err != nil {
			return err
		}
		s.buf = append(s.buf, b...)
		s.buf = append(s.buf, '\n')
	}
	if _, err := s.w.Write(s.buf); err != nil {
		return fmt.Errorf("mcpauth/audit: write json lines: %w", err)
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
