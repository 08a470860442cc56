package mcpauth

import (
	"context"
	"errors"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/store"
)

// TestAdmitIsTheSameForEveryCredentialKind: what follows verification (the
// address allowlist, the host's user check) applies to an entry whatever
// verifier produced it, so a second kind of credential (OAuth tokens,
// later) gets the same admission without touching the steps.
func TestAdmitIsTheSameForEveryCredentialKind(t *testing.T) {
	t.Parallel()
	inactive := map[string]bool{"bob": true}
	g, err := New(store.NewMemory(), &Options{Users: store.UserCheckerFunc(func(_ context.Context, u string) (bool, error) {
		if u == "broken" {
			return false, errors.New("users db down")
		}
		return !inactive[u], nil
	})})
	require.NoError(t, err)
	t.Cleanup(func() { _ = g.Close(context.Background()) })
	// An entry as a non-key verifier would build it: no hash, no store record.
	entry := func(user string, allowed ...netip.Prefix) *cacheEntry {
		return &cacheEntry{principal: &Principal{KeyID: "tok-1", UserID: user}, allowed: allowed}
	}
	r := httptest.NewRequest("POST", "/mcp", nil)
	r.RemoteAddr = "198.51.100.7:4000"
	tests := []struct {
		name string
		e    *cacheEntry
		want error
	}{
		{"active user, any address", entry("alice"), nil},
		{"address allowed", entry("alice", netip.MustParsePrefix("198.51.100.0/24")), nil},
		{"address not allowed", entry("alice", netip.MustParsePrefix("10.0.0.0/8")), ErrAddressNotAllowed},
		{"inactive user", entry("bob"), ErrUserInactive},
		{"user check fails closed", entry("broken"), ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := g.admit(r, tt.e, &facts{}, time.Now())
			assert.Same(t, tt.e, got)
			if tt.want == nil {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, tt.want)
			}
		})
	}
}
