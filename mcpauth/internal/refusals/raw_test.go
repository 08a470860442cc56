package refusals_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// rawResponse is an HTTP answer to a hand-made POST.
type rawResponse struct {
	status int
	header http.Header
	body   string
}

// rawPost POSTs body as a client would (JSON, accepting JSON and SSE),
// with auth as the Authorization header ("" for none) and extra headers.
func rawPost(t *testing.T, url, auth string, extra map[string]string, body string) rawResponse {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for k, v := range extra {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return rawResponse{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// messages returns the JSON-RPC payload of a response: the body itself, or
// for an SSE response the data of its events, concatenated.
func (r rawResponse) messages(t *testing.T) []json.RawMessage {
	t.Helper()
	var payloads []string
	if strings.HasPrefix(r.header.Get("Content-Type"), "text/event-stream") {
		sc := bufio.NewScanner(strings.NewReader(r.body))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok && strings.TrimSpace(d) != "" {
				payloads = append(payloads, d)
			}
		}
	} else {
		payloads = []string{r.body}
	}
	var out []json.RawMessage
	for _, p := range payloads {
		p = strings.TrimSpace(p)
		if strings.HasPrefix(p, "[") {
			var arr []json.RawMessage
			require.NoError(t, json.Unmarshal([]byte(p), &arr), "body: %s", r.body)
			out = append(out, arr...)
			continue
		}
		out = append(out, json.RawMessage(p))
	}
	return out
}

// isArray reports whether the (non-SSE) body, or the single SSE event, is
// a JSON array.
func (r rawResponse) isArray() bool {
	body := r.body
	if strings.HasPrefix(r.header.Get("Content-Type"), "text/event-stream") {
		for line := range strings.SplitSeq(r.body, "\n") {
			if d, ok := strings.CutPrefix(line, "data: "); ok && strings.TrimSpace(d) != "" {
				body = d
				break
			}
		}
	}
	return bytes.HasPrefix(bytes.TrimSpace([]byte(body)), []byte("["))
}

// rpcMessage is the part of a JSON-RPC response the tests look at.
type rpcMessage struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	} `json:"error"`
}

func decodeRPC(t *testing.T, raw json.RawMessage) rpcMessage {
	t.Helper()
	var m rpcMessage
	require.NoError(t, json.Unmarshal(raw, &m), "message: %s", raw)
	return m
}

// rpcError returns the code and message of a single JSON-RPC error body,
// or 0 and "" when the body is not one.
func (r rawResponse) rpcError() (int, string) {
	var m rpcMessage
	if json.Unmarshal([]byte(r.body), &m) != nil || m.Error == nil {
		return 0, ""
	}
	return m.Error.Code, m.Error.Message
}
