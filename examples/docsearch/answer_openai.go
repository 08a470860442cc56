package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// modelConfig is how to reach an OpenAI-compatible Chat Completions server:
// OpenAI itself, or Ollama, vLLM or llama.cpp's server, which speak the same
// wire format.
type modelConfig struct {
	// BaseURL is the API root, such as https://api.openai.com/v1 or
	// http://localhost:11434/v1 (Ollama). Default: OpenAI's.
	BaseURL string
	// APIKey is sent as a bearer token; local servers ignore it.
	APIKey string
	// Model names the model, such as gpt-4o-mini or llama3.2. Empty means
	// no model is configured: the app answers with the extractive answerer.
	Model string
}

// modelFromEnv reads DOCSEARCH_MODEL, OPENAI_BASE_URL and OPENAI_API_KEY.
func modelFromEnv() modelConfig {
	return modelConfig{
		BaseURL: os.Getenv("OPENAI_BASE_URL"),
		APIKey:  os.Getenv("OPENAI_API_KEY"),
		Model:   os.Getenv("DOCSEARCH_MODEL"),
	}
}

// chatCompletions answers through a Chat Completions server, with the
// seed's system prompt and context message.
type chatCompletions struct {
	client openai.Client
	model  string
	log    *slog.Logger
}

func newChatCompletions(cfg modelConfig, hc *http.Client, log *slog.Logger) *chatCompletions {
	opts := []option.RequestOption{
		option.WithMaxRetries(1),
		option.WithRequestTimeout(90 * time.Second),
	}
	if cfg.BaseURL != "" {
		opts = append(opts, option.WithBaseURL(cfg.BaseURL))
	}
	if cfg.APIKey != "" {
		opts = append(opts, option.WithAPIKey(cfg.APIKey))
	} else {
		opts = append(opts, option.WithAPIKey("unused")) // local servers take no key
	}
	if hc != nil {
		opts = append(opts, option.WithHTTPClient(hc))
	}
	return &chatCompletions{client: openai.NewClient(opts...), model: cfg.Model, log: log}
}

func (c *chatCompletions) Name() string { return c.model }

func (c *chatCompletions) Answer(ctx context.Context, question string, sources []source) (string, error) {
	resp, err := c.client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model: c.model,
		Messages: []openai.ChatCompletionMessageParamUnion{
			openai.SystemMessage(systemPrompt),
			openai.UserMessage(userPrompt(question, sources)),
		},
		Temperature: openai.Float(0.2),
	})
	if err != nil {
		return "", c.userError(err)
	}
	if len(resp.Choices) == 0 || strings.TrimSpace(resp.Choices[0].Message.Content) == "" {
		return "", userError{msg: "The language model returned an empty answer. Try asking again."}
	}
	return resp.Choices[0].Message.Content, nil
}

// userError turns a client error into a message for the page. The
// server's own error text can quote the key it was sent (OpenAI's
// "Incorrect API key provided: sk-...") so it is neither shown nor logged;
// the status code is.
func (c *chatCompletions) userError(err error) error {
	var apiErr *openai.Error
	if errors.As(err, &apiErr) {
		c.log.Warn("docsearch: chat completion failed", slog.String("model", c.model), slog.Int("status", apiErr.StatusCode))
		switch {
		case apiErr.StatusCode == http.StatusUnauthorized || apiErr.StatusCode == http.StatusForbidden:
			return userError{msg: "The language model refused the app's credentials. Check OPENAI_API_KEY.", cause: err}
		case apiErr.StatusCode == http.StatusNotFound:
			return userError{msg: fmt.Sprintf("The language model server does not know the model %q. Check DOCSEARCH_MODEL.", c.model), cause: err}
		case apiErr.StatusCode == http.StatusTooManyRequests:
			return userError{msg: "The language model is rate limiting the app. Try again in a minute.", cause: err}
		}
		return userError{msg: "The language model failed to answer. Try again later.", cause: err}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		c.log.Warn("docsearch: chat completion timed out", slog.String("model", c.model))
		return userError{msg: "The language model took too long to answer. Try again later.", cause: err}
	}
	c.log.Warn("docsearch: chat completion failed", slog.String("model", c.model), slog.String("error", errorClass(err)))
	return userError{msg: "The language model could not be reached. Is the server at OPENAI_BASE_URL running?", cause: err}
}

// errorClass names what kind of failure err is without its text, which
// may hold a URL with credentials in it.
func errorClass(err error) string { return fmt.Sprintf("%T", err) }

// userError is an error whose message is written for the person using the
// app: it is shown on the page as it is. Its cause is for logs.
type userError struct {
	msg   string
	cause error
}

func (e userError) Error() string { return e.msg }
func (e userError) Unwrap() error { return e.cause }
