package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpauth/mcpauth/mcpauth"
)

// JSON-RPC codes of mcpauth refusals besides the two the package exports
// (see mcpauth.RPCCodeForbidden): the Guard answers them with
// RefusalJSONRPC, so the go-sdk client reads them instead of an HTTP status.
const (
	rpcCodeRateLimited = -32012
	rpcCodeUnavailable = -32013
)

// Limits of the assistant.
const (
	maxQuestionLen = 1000 // characters
	searchLimit    = 5    // excerpts asked of search_documents
	readLimit      = 3    // best hits read in full with get_document
)

// assistant is the backend of the AI Assistant page (steps 3 to 9 of the
// seed's flow): it gets the user's assistant key, asks the MCP server for
// the user's matching documents as a real MCP client over HTTP, and hands
// the excerpts to the Answerer.
type assistant struct {
	keys     *assistantKeys
	mcpURL   string // the MCP endpoint, such as http://127.0.0.1:8080/mcp
	http     *http.Client
	answerer Answerer
	log      *slog.Logger
}

// reply is an answer with the sources it cites.
type reply struct {
	Question string
	Text     string
	Segments []segment
	Cited    []source
	Answerer string
}

// ask answers a user's question. Its errors are userErrors, written for the
// page; their causes are logged, never shown.
func (a *assistant) ask(ctx context.Context, userID, question string) (reply, error) {
	question = strings.TrimSpace(question)
	switch {
	case question == "":
		return reply{}, userError{msg: "Ask a question first."}
	case utf8.RuneCountInString(question) > maxQuestionLen:
		return reply{}, userError{msg: fmt.Sprintf("The question is longer than %d characters.", maxQuestionLen)}
	}
	sources, err := a.retrieve(ctx, userID, question)
	if err != nil {
		return reply{}, err
	}
	text := nothingFound
	if len(sources) > 0 {
		text, err = a.answerer.Answer(ctx, question, sources)
		if err != nil {
			var ue userError
			if !errors.As(err, &ue) {
				a.log.Error("docsearch: answerer failed", slog.String("answerer", a.answerer.Name()), slog.String("error", err.Error()))
				err = userError{msg: "The assistant could not write an answer. Try again later.", cause: err}
			}
			return reply{}, err
		}
	}
	segs, cited := segments(text, sources)
	return reply{Question: question, Text: text, Segments: segs, Cited: cited, Answerer: a.answerer.Name()}, nil
}

// retrieve runs the MCP calls with the user's assistant key. When the
// server refuses the key itself (revoked on the keys page, expired, or
// sealed under a lost secret), it drops the key and tries once more with a
// new one.
func (a *assistant) retrieve(ctx context.Context, userID, question string) ([]source, error) {
	for attempt := 0; ; attempt++ {
		key, err := a.keys.get(ctx, userID)
		if err != nil {
			a.log.Error("docsearch: assistant key", slog.String("user_id", userID), slog.String("error", err.Error()))
			return nil, userError{msg: "The assistant could not get its key. Try again later.", cause: err}
		}
		sources, err := a.search(ctx, key, question)
		var rpcErr *jsonrpc.Error
		if attempt == 0 && errors.As(err, &rpcErr) && rpcErr.Code == mcpauth.RPCCodeUnauthorized {
			if err := a.keys.drop(ctx, userID, key.id); err != nil {
				a.log.Warn("docsearch: dropping a refused assistant key", slog.String("key_id", key.id), slog.String("error", err.Error()))
			}
			continue
		}
		if err != nil {
			return nil, a.mcpError(err, key.id)
		}
		return sources, nil
	}
}

// search calls search_documents, then get_document for the best hits, on
// one MCP session (steps 6 to 8).
func (a *assistant) search(ctx context.Context, key assistantKey, question string) ([]source, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	client := mcp.NewClient(&mcp.Implementation{Name: "docsearch-assistant", Version: "1.0.0"}, nil)
	hc := *a.http
	hc.Transport = bearer{key: key.raw, base: a.http.Transport}
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: a.mcpURL, HTTPClient: &hc, MaxRetries: -1, DisableStandaloneSSE: true}, nil)
	if err != nil {
		return nil, err
	}
	defer cs.Close()
	var found searchOut
	if err := callTool(ctx, cs, "search_documents", searchIn{Query: question, Limit: searchLimit}, &found); err != nil {
		return nil, err
	}
	sources := make([]source, 0, len(found.Results))
	for i, h := range found.Results {
		s := source{N: i + 1, ID: h.ID, Title: h.Title, UploadedAt: h.UploadedAt, Text: h.Snippet}
		if i < readLimit {
			var doc documentOut
			if err := callTool(ctx, cs, "get_document", idIn{ID: h.ID}, &doc); err != nil {
				return nil, err
			}
			s.Text = truncate(doc.Body, maxSourceText)
		}
		sources = append(sources, s)
	}
	return sources, nil
}

// toolError is a tool's own error result (isError), with its text.
type toolError struct{ tool, text string }

func (e toolError) Error() string { return e.tool + ": " + e.text }

func callTool(ctx context.Context, cs *mcp.ClientSession, name string, in, out any) error {
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: in})
	if err != nil {
		return err
	}
	if res.IsError {
		var text []string
		for _, c := range res.Content {
			if t, ok := c.(*mcp.TextContent); ok {
				text = append(text, t.Text)
			}
		}
		return toolError{tool: name, text: strings.Join(text, " ")}
	}
	b, err := json.Marshal(res.StructuredContent)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

// mcpError turns an MCP failure into a message for the page: the policy's
// reason for a refusal (written for people and models, never secret), a
// plain sentence for the rest.
func (a *assistant) mcpError(err error, keyID string) error {
	a.log.Warn("docsearch: MCP call failed", slog.String("key_id", keyID), slog.String("error", err.Error()))
	var rpcErr *jsonrpc.Error
	var te toolError
	switch {
	case errors.As(err, &rpcErr) && rpcErr.Code == mcpauth.RPCCodeForbidden:
		return userError{msg: "The document server refused the assistant: " + rpcErr.Message, cause: err}
	case errors.As(err, &rpcErr) && rpcErr.Code == mcpauth.RPCCodeUnauthorized:
		return userError{msg: "The document server did not accept the assistant's key. Try again.", cause: err}
	case errors.As(err, &rpcErr) && rpcErr.Code == rpcCodeRateLimited:
		return userError{msg: "You have asked too many questions in a short time. Wait a minute and try again.", cause: err}
	case errors.As(err, &rpcErr) && rpcErr.Code == rpcCodeUnavailable:
		return userError{msg: "The document server is temporarily unavailable. Try again later.", cause: err}
	case errors.As(err, &te):
		return userError{msg: "The document server could not answer: " + te.text, cause: err}
	case errors.Is(err, context.DeadlineExceeded):
		return userError{msg: "The document server took too long to answer. Try again later.", cause: err}
	}
	return userError{msg: "The document server could not be reached. Try again later.", cause: err}
}

// bearer adds the assistant's key to every request of its MCP client.
type bearer struct {
	key  string
	base http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.key)
	base := b.base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(r)
}

// truncate cuts s to at most n bytes, at a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
