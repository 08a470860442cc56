package mcpauth

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/stretchr/testify/assert"
)

func TestResponseFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err       error
		status    int
		challenge string
		code      string
	}{
		{ErrNoCredential, 401, `Bearer realm="mcp"`, "unauthorized"},
		{apikey.ErrMalformedKey, 401, `Bearer realm="mcp", error="invalid_token", error_description="The API key is invalid, expired or revoked."`, "invalid_token"},
		{fmt.Errorf("x: %w", apikey.ErrMalformedKey), 401, `Bearer realm="mcp", error="invalid_token", error_description="The API key is invalid, expired or revoked."`, "invalid_token"},
		{ErrUnknownKey, 401, `Bearer realm="mcp", error="invalid_token", error_description="The API key is invalid, expired or revoked."`, "invalid_token"},
		{ErrKeyRevoked, 401, `Bearer realm="mcp", error="invalid_token", error_description="The API key is invalid, expired or revoked."`, "invalid_token"},
		{ErrKeyExpired, 401, `Bearer realm="mcp", error="invalid_token", error_description="The API key is invalid, expired or revoked."`, "invalid_token"},
		{ErrConflictingCredentials, 400, `Bearer realm="mcp", error="invalid_request", error_description="Send exactly one API key, in one header."`, "invalid_request"},
		{ErrUserInactive, 403, "", "account_inactive"},
		{fmt.Errorf("%w: db on fire at 10.0.0.7", ErrUnavailable), 503, "", "temporarily_unavailable"},
		{errors.New("pq: password authentication failed for user admin"), 500, "", "internal_error"},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			got := ResponseFor(tt.err, "")
			assert.Equal(t, tt.status, got.Status)
			assert.Equal(t, tt.challenge, got.Challenge)
			assert.Equal(t, tt.code, got.Code)
			assert.NotContains(t, got.Message, "10.0.0.7")
			assert.NotContains(t, got.Message, "password")
		})
		if tt.status == 401 && tt.code == "invalid_token" {
			seen[ResponseFor(tt.err, "").Message] = true
		}
	}
	assert.Len(t, seen, 1, "every invalid-key case must read the same (no oracle)")
	assert.Equal(t, `Bearer realm="acme"`, ResponseFor(ErrNoCredential, "acme").Challenge)
}

func TestWriteErrorOutsideAGuard(t *testing.T) {
	t.Parallel()
	w := httptest.NewRecorder()
	WriteError(w, httptest.NewRequest(http.MethodGet, "/", nil), fmt.Errorf("%w: secret detail", ErrUnavailable))
	assert.Equal(t, 503, w.Code)
	assert.Equal(t, "application/json", w.Header().Get("Content-Type"))
	assert.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	assert.JSONEq(t, `{"error":"temporarily_unavailable","message":"Authentication is temporarily unavailable. Try again shortly."}`, w.Body.String())
	assert.NotContains(t, w.Body.String(), "secret detail")
}
