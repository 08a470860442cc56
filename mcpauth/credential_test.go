package mcpauth

import (
	"net/http"
	"strings"
	"testing"

	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/stretchr/testify/assert"
)

func TestCredential(t *testing.T) {
	t.Parallel()
	const both, bearerOnly = false, true
	tests := []struct {
		name       string
		headers    map[string][]string
		bearerOnly bool
		want       string
		wantErr    error
	}{
		{"bearer", map[string][]string{"Authorization": {"Bearer k1"}}, both, "k1", nil},
		{"bearer scheme is case-insensitive", map[string][]string{"Authorization": {"bEaReR   k1  "}}, both, "k1", nil},
		{"x-api-key", map[string][]string{"X-Api-Key": {" k1 "}}, both, "k1", nil},
		{"same key in both headers", map[string][]string{"Authorization": {"Bearer k1"}, "X-Api-Key": {"k1"}}, both, "k1", nil},
		{"different keys in both headers", map[string][]string{"Authorization": {"Bearer k1"}, "X-Api-Key": {"k2"}}, both, "", ErrConflictingCredentials},
		{"authorization twice", map[string][]string{"Authorization": {"Bearer k1", "Bearer k2"}}, both, "", ErrConflictingCredentials},
		{"x-api-key twice", map[string][]string{"X-Api-Key": {"k1", "k2"}}, both, "", ErrConflictingCredentials},
		{"none", map[string][]string{}, both, "", ErrNoCredential},
		{"basic auth is not a key", map[string][]string{"Authorization": {"Basic dXNlcjpwYXNz"}}, both, "", ErrNoCredential},
		{"empty bearer", map[string][]string{"Authorization": {"Bearer "}}, both, "", ErrNoCredential},
		{"x-api-key off with BearerOnly", map[string][]string{"X-Api-Key": {"k1"}}, bearerOnly, "", ErrNoCredential},
		{"an ignored header cannot conflict", map[string][]string{"Authorization": {"Bearer k1"}, "X-Api-Key": {"k2"}}, bearerOnly, "k1", nil},
		{"huge header", map[string][]string{"Authorization": {"Bearer " + strings.Repeat("a", 1<<20)}}, both, "", apikey.ErrMalformedKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, _ := http.NewRequest(http.MethodPost, "http://x/mcp?api_key=k9&key=k9", nil)
			for k, vs := range tt.headers {
				for _, v := range vs {
					r.Header.Add(k, v)
				}
			}
			got, err := credential(r, tt.bearerOnly, maxCredentialLen)
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
				return
			}
			assert.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}
