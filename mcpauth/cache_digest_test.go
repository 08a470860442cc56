package mcpauth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
)

// TestRememberedKeySkipsOnlyTheHash: once a key has verified, the cache
// knows its material by a keyed digest and skips the HMAC for it; every
// other check still runs on every request. A forged secret under the
// victim's ID (well-formed, valid checksum) is refused however often the
// real key was used before and after it, and does not displace the real
// key; the real key with a wrong checksum is still malformed; a revocation and an expiry refuse the remembered key at once. The
// handler never runs for a refused request.
func TestRememberedKeySkipsOnlyTheHash(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &mcpauth.Options{CacheTTL: time.Hour})
	victim := f.create(t, "victim", keyadmin.CreateOptions{ExpiresIn: 2 * time.Hour})
	attacker := f.create(t, "attacker", keyadmin.CreateOptions{})
	forged := mustBuild(t, "mcp", victim.Key.ID, attacker.Raw[4+12:4+36])

	var ran []string
	h := f.guard.Require(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		p, _ := mcpauth.PrincipalFrom(r.Context())
		ran = append(ran, p.UserID)
	}))
	call := func(raw string) int {
		r := httptest.NewRequest(http.MethodGet, "/mcp", nil)
		r.Header.Set("Authorization", "Bearer "+raw)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}

	lookups := f.store.lookups.Load()
	for range 3 {
		require.Equal(t, http.StatusOK, call(victim.Raw))
		require.Equal(t, http.StatusUnauthorized, call(forged), "a forged secret for a remembered key")
	}
	_, err := f.auth(badChecksum(victim.Raw))
	assert.ErrorIs(t, err, apikey.ErrMalformedKey, "the remembered key with a wrong checksum is still malformed")
	assert.Equal(t, []string{"victim", "victim", "victim"}, ran, "the handler ran for the real key only")
	assert.Equal(t, int64(1), f.store.lookups.Load()-lookups, "every request after the first was served from the cache")

	f.clock.Advance(2*time.Hour - time.Second)
	require.Equal(t, http.StatusOK, call(victim.Raw))
	f.clock.Advance(time.Second)
	_, err = f.auth(victim.Raw)
	assert.ErrorIs(t, err, mcpauth.ErrKeyExpired, "expiry refuses the remembered key at its instant")
	assert.Len(t, ran, 4)

	other := f.create(t, "other", keyadmin.CreateOptions{})
	require.Equal(t, http.StatusOK, call(other.Raw))
	require.Equal(t, http.StatusOK, call(other.Raw))
	require.NoError(t, f.mgr.Revoke(context.Background(), other.Key.ID))
	require.Equal(t, http.StatusUnauthorized, call(other.Raw))
	_, err = f.auth(other.Raw)
	assert.ErrorIs(t, err, mcpauth.ErrKeyRevoked, "revocation refuses the remembered key at once")
	assert.Len(t, ran, 6)
}
