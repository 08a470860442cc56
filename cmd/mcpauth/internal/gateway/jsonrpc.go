package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
)

// JSON-RPC error codes the gateway answers with. They avoid the codes the
// official SDKs use for themselves (docs/refusals.md).
const (
	codeParseError     = -32700
	codeInvalidRequest = -32600
	codeInternalError  = -32603
)

// msgKind is what a JSON-RPC message is.
type msgKind uint8

const (
	kindRequest msgKind = iota + 1
	kindNotification
	kindResponse
)

// message is one JSON-RPC message: its compact bytes (one line) and what
// routing needs of it.
type message struct {
	raw    []byte
	kind   msgKind
	id     string // compact JSON of the id; "" for notifications
	method string
	token  string // params._meta.progressToken, compact JSON; "" if none
}

var errNotJSONRPC = errors.New("not a JSON-RPC message")

// parseMessages reads a POST body: one message or a batch.
func parseMessages(body []byte) ([]message, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, errNotJSONRPC
	}
	var raws []json.RawMessage
	if body[0] == '[' {
		if err := json.Unmarshal(body, &raws); err != nil || len(raws) == 0 {
			return nil, errNotJSONRPC
		}
	} else {
		raws = []json.RawMessage{body}
	}
	out := make([]message, 0, len(raws))
	for _, r := range raws {
		m, err := parseMessage(r)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// parseMessage reads one message (as a line from a stdio server, or one
// element of a POST body).
func parseMessage(b []byte) (message, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return message{}, errNotJSONRPC
	}
	var head struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
	}
	if err := json.Unmarshal(buf.Bytes(), &head); err != nil {
		return message{}, errNotJSONRPC
	}
	m := message{raw: buf.Bytes(), method: head.Method}
	hasID := len(head.ID) > 0 && string(head.ID) != "null"
	switch {
	case head.Method != "" && hasID:
		m.kind, m.id = kindRequest, string(head.ID)
	case head.Method != "":
		m.kind = kindNotification
	case hasID:
		m.kind, m.id = kindResponse, string(head.ID)
	default:
		return message{}, errNotJSONRPC
	}
	if head.Method != "" {
		var p struct {
			Params struct {
				Meta struct {
					ProgressToken json.RawMessage `json:"progressToken"`
				} `json:"_meta"`
				ProgressToken json.RawMessage `json:"progressToken"` // notifications/progress
			} `json:"params"`
		}
		if json.Unmarshal(m.raw, &p) == nil {
			t := p.Params.Meta.ProgressToken
			if m.kind == kindNotification {
				t = p.Params.ProgressToken
			}
			if len(t) > 0 && string(t) != "null" {
				m.token = string(t)
			}
		}
	}
	return m, nil
}

// errorResponse is a JSON-RPC error response for id (compact JSON, or ""
// for null).
func errorResponse(id string, code int, msg string) []byte {
	if id == "" {
		id = "null"
	}
	m, _ := json.Marshal(msg)
	return []byte(`{"jsonrpc":"2.0","id":` + id + `,"error":{"code":` + strconv.Itoa(code) + `,"message":` + string(m) + `}}`)
}

// writeRPCError answers an HTTP request with status and a JSON-RPC error.
func writeRPCError(w http.ResponseWriter, status int, id string, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(errorResponse(id, code, msg), '\n'))
}
