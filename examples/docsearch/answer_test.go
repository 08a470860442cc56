package main

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var testSources = []source{
	{N: 1, ID: 7, Title: "Q3 Financial Report", UploadedAt: day("2025-10-15"), Text: "# Q3 Financial Report\n\nRevenue for Q3 was $125,000, up 12% from Q2. Gross margin was 71%.\n\n## Outlook\n\nFor Q4 we expect revenue between $135,000 and $145,000."},
	{N: 2, ID: 9, Title: "Team Offsite Notes", UploadedAt: day("2025-09-03"), Text: "Decisions: we hire a second support engineer in November. The mobile app is postponed to next year."},
}

func TestExtractiveAnswerer(t *testing.T) {
	tests := []struct {
		name, question string
		want           string
	}{
		{"the seed's question", "What were our Q3 revenue numbers?",
			"According to your Q3 Financial Report (uploaded Oct 15, 2025): Revenue for Q3 was $125,000, up 12% from Q2. [1]"},
		{"plural finds singular", "gross margins",
			"According to your Q3 Financial Report (uploaded Oct 15, 2025): Gross margin was 71%. [1]"},
		{"second source", "When do we hire the support engineer?",
			"According to your Team Offsite Notes (uploaded Sep 3, 2025): Decisions: we hire a second support engineer in November. [2]"},
		{"two sources quoted", "mobile app revenue Q4",
			"According to your Q3 Financial Report (uploaded Oct 15, 2025): For Q4 we expect revenue between $135,000 and $145,000. [1] Your Team Offsite Notes (uploaded Sep 3, 2025) also says: The mobile app is postponed to next year. [2]"},
		{"headings are not answers", "outlook", nothingFound},
		{"nothing relevant", "Who won the world cup?", nothingFound},
		{"only stop words", "what is it?", nothingFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := extractive{}.Answer(context.Background(), tt.question, testSources)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestSegments(t *testing.T) {
	segs, cited := segments("See [2] and [1], again [2]; [9] is no source.", testSources)
	require.Len(t, cited, 2)
	assert.Equal(t, []int{2, 1}, []int{cited[0].N, cited[1].N}, "in order of first citation")
	var b strings.Builder
	for _, s := range segs {
		if s.Cite != nil {
			b.WriteString("<" + s.Cite.Title + ">")
		} else {
			b.WriteString(s.Text)
		}
	}
	assert.Equal(t, "See <Team Offsite Notes> and <Q3 Financial Report>, again <Team Offsite Notes>; [9] is no source.", b.String())
}

// chatServer speaks the Chat Completions wire format and records what it
// was sent.
type chatServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests []chatRequest
	auth     []string
	status   int    // when not 0, answer this status with body
	body     string // the error body
	answer   string
}

type chatRequest struct {
	Model    string `json:"model"`
	Messages []struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	} `json:"messages"`
	Temperature float64 `json:"temperature"`
}

func newChatServer(t *testing.T, answer string) *chatServer {
	s := &chatServer{answer: answer}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
			http.NotFound(w, r)
			return
		}
		b, _ := io.ReadAll(r.Body)
		var req chatRequest
		if err := json.Unmarshal(b, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.requests = append(s.requests, req)
		s.auth = append(s.auth, r.Header.Get("Authorization"))
		status, body := s.status, s.body
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if status != 0 {
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"id": "chatcmpl-1", "object": "chat.completion", "created": time.Now().Unix(), "model": req.Model,
			"choices": []map[string]any{{"index": 0, "finish_reason": "stop",
				"message": map[string]any{"role": "assistant", "content": s.answer}}},
			"usage": map[string]any{"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
		})
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *chatServer) fail(status int, body string) {
	s.mu.Lock()
	s.status, s.body = status, body
	s.mu.Unlock()
}

// TestChatCompletionsAnswerer runs the whole flow with an OpenAI-compatible
// model server: the request carries the seed's system prompt, the context
// (each excerpt numbered, with title and upload date) and the question;
// the model's answer reaches the page with its citations linked; failures
// reach the page as a sentence, never the server's text or the key.
func TestChatCompletionsAnswerer(t *testing.T) {
	const modelKey = "sk-test-3f9a1c0b7e"
	model := newChatServer(t, "According to your Q3 Financial Report (uploaded Oct 15), revenue was $125,000 [1].")
	e := newTestEnv(t, "sqlite", &envOptions{answerer: newChatCompletions(modelConfig{
		BaseURL: model.URL + "/v1", APIKey: modelKey, Model: "test-model",
	}, nil, testLogger())})
	alice := e.login("alice")
	status, page := alice.postForm("/assistant", url.Values{"question": {"What were our Q3 revenue numbers?"}})
	require.Equal(t, http.StatusOK, status)
	report := e.demoDocID("alice", "Q3 Financial Report")
	assert.Contains(t, page, "According to your Q3 Financial Report (uploaded Oct 15), revenue was $125,000 "+
		`<a class="cite" href="/documents/`+itoa64(report)+`" title="Q3 Financial Report">[1]</a>.`)
	assert.Contains(t, page, "Answered by: test-model")

	require.Len(t, model.requests, 1)
	req := model.requests[0]
	assert.Equal(t, "Bearer "+modelKey, model.auth[0])
	assert.Equal(t, "test-model", req.Model)
	require.Len(t, req.Messages, 2)
	assert.Equal(t, "system", req.Messages[0].Role)
	assert.Equal(t, systemPrompt, req.Messages[0].Content)
	assert.Contains(t, req.Messages[0].Content, "Always cite which document you got information from")
	assert.Contains(t, req.Messages[0].Content, "If you don't find relevant information in the provided context, say so clearly.")
	assert.Equal(t, "user", req.Messages[1].Role)
	user := req.Messages[1].Content
	assert.True(t, strings.HasPrefix(user, "Context from user's documents:\n\n[1] Document: Q3 Financial Report\nUploaded: Oct 15, 2025\nContent: # Q3 Financial Report"), user)
	assert.Contains(t, user, "Revenue for Q3 was $125,000")
	assert.True(t, strings.HasSuffix(user, "\n\nUser question: What were our Q3 revenue numbers?"), user)
	assert.NotContains(t, user, "Q3 Sales Pipeline", "only Alice's documents are sent to the model")

	failures := []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"bad key", http.StatusUnauthorized, `{"error":{"message":"Incorrect API key provided: ` + modelKey + `","type":"invalid_request_error"}}`,
			"The language model refused the app's credentials. Check OPENAI_API_KEY."},
		{"rate limited", http.StatusTooManyRequests, `{"error":{"message":"Rate limit reached for ` + modelKey + `"}}`,
			"The language model is rate limiting the app. Try again in a minute."},
		{"unknown model", http.StatusNotFound, `{"error":{"message":"model not found"}}`,
			`The language model server does not know the model "test-model". Check DOCSEARCH_MODEL.`},
		{"server error", http.StatusInternalServerError, `{"error":{"message":"panic: runtime error at /srv/model.go:12"}}`,
			"The language model failed to answer. Try again later."},
	}
	for _, f := range failures {
		t.Run(f.name, func(t *testing.T) {
			model.fail(f.status, f.body)
			_, page := alice.postForm("/assistant", url.Values{"question": {"What were our Q3 revenue numbers?"}})
			assert.Contains(t, page, `<p class="error" role="alert" id="error">`+html.EscapeString(f.want)+`</p>`)
			assert.NotContains(t, page, modelKey)
			assert.NotContains(t, page, "runtime error")
			assert.NotContains(t, page, `id="answer"`)
		})
	}
	t.Run("server down", func(t *testing.T) {
		model.Close()
		_, page := alice.postForm("/assistant", url.Values{"question": {"What were our Q3 revenue numbers?"}})
		assert.Contains(t, page, "The language model could not be reached.")
		assert.NotContains(t, page, modelKey)
		assert.NotContains(t, page, model.URL, "no internal address either")
	})
}
