package keyadmin_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/store"
)

// keysOf returns every key record of user, as stored.
func keysOf(t *testing.T, f *fixture, user string) []store.Key {
	t.Helper()
	keys, err := f.store.ListKeys(context.Background(), user)
	require.NoError(t, err)
	return keys
}

// activeKeys counts user's active keys now, rotated keys in grace included.
func activeKeys(t *testing.T, f *fixture, user string) int {
	t.Helper()
	n := 0
	for _, k := range keysOf(t, f, user) {
		if k.StatusAt(f.clock.Now()) == store.StatusActive {
			n++
		}
	}
	return n
}

// send is call with extra request headers.
func send(t *testing.T, srv *httptest.Server, user, method, path string, headers map[string]string, body string) apiResp {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if user != "" {
		req.Header.Set("X-Test-User", user)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	out := apiResp{status: resp.StatusCode, raw: string(b)}
	if len(b) > 0 && resp.Header.Get("Content-Type") == jsonCT {
		require.NoError(t, json.Unmarshal(b, &out.body), string(b))
	}
	return out
}

// TestKeysAPIUserCannotSetHostFields: rate_limit and metadata decide limits
// and tiers; a user's own request may not set them (finding 3), whatever
// spelling, duplicate or case variant the body uses.
func TestKeysAPIUserCannotSetHostFields(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	srv := keysServer(t, f.mgr, &keyadmin.HandlerOptions{UserMetadataKeys: []string{"label"}})

	attacks := []struct {
		name, body string
		field      string // the field the refusal names; "" for none
	}{
		{"raise own rate limit", `{"rate_limit":1000000}`, "rate_limit"},
		{"rate limit zero is still the host's", `{"rate_limit":0}`, "rate_limit"},
		{"tier metadata", `{"metadata":{"tier":"paid"}}`, "metadata.tier"},
		{"tier beside an allowed key", `{"metadata":{"label":"laptop","tier":"paid"}}`, "metadata.tier"},
		{"escaped field name", `{"metad\u0061ta":{"tier":"paid"}}`, "metadata.tier"},
		{"case variant of rate_limit", `{"Rate_Limit":1000000}`, "Rate_Limit"},
		{"upper-case metadata", `{"METADATA":{"tier":"paid"}}`, "METADATA"},
		{"long s folds to s", `{"metadata":{},"expires_in_\u017feconds":1}`, "expires_in_ſeconds"},
		{"long s in scopes", `{"\u017fcopes":["documents:read"]}`, "ſcopes"},
		{"case-folded duplicate", `{"scopes":["documents:read"],"Scopes":["documents:write"]}`, "Scopes"},
		{"exact duplicate", `{"scopes":["documents:read"],"scopes":["documents:write"]}`, "scopes"},
		{"duplicate inside metadata", `{"metadata":{"label":"a","label":"b"}}`, "label"},
		{"owner of the key", `{"user_id":"bob"}`, "user_id"},
		{"hash of the key", `{"hash":"AAAA"}`, "hash"},
		{"second object smuggled", `{"name":"x"}{"rate_limit":5}`, ""},
		{"array body", `[{"rate_limit":5}]`, ""},
		{"null body", `null`, ""},
		{"nested too deep", `{"metadata":{"label":[[[["x"]]]]}}`, ""},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			user := "u-" + a.name
			r := call(t, srv, user, "POST", "/keys", jsonCT, a.body)
			assert.Equal(t, http.StatusBadRequest, r.status, r.raw)
			assert.Equal(t, "invalid_request", r.body["error"], r.raw)
			if a.field != "" {
				assert.Equal(t, a.field, r.body["field"], r.raw)
			}
			assert.Empty(t, keysOf(t, f, user), "no key was created")
		})
	}

	t.Run("allowed metadata key is stored", func(t *testing.T) {
		r := call(t, srv, "carol", "POST", "/keys", jsonCT, `{"name":"laptop","metadata":{"label":"work"}}`)
		require.Equal(t, http.StatusCreated, r.status, r.raw)
		keys := keysOf(t, f, "carol")
		require.Len(t, keys, 1)
		assert.Equal(t, map[string]string{"label": "work"}, keys[0].Metadata)
		assert.Zero(t, keys[0].RateLimit)
	})
	t.Run("UnsafeUserRateLimit lets users set it", func(t *testing.T) {
		unsafe := keysServer(t, f.mgr, &keyadmin.HandlerOptions{UnsafeUserRateLimit: true})
		r := call(t, unsafe, "dave", "POST", "/keys", jsonCT, `{"rate_limit":50}`)
		require.Equal(t, http.StatusCreated, r.status, r.raw)
		keys := keysOf(t, f, "dave")
		require.Len(t, keys, 1)
		assert.Equal(t, 50, keys[0].RateLimit)
		r = call(t, unsafe, "dave", "POST", "/keys", jsonCT, `{"metadata":{"label":"x"}}`)
		assert.Equal(t, http.StatusBadRequest, r.status, "metadata keys are still refused unless listed")
	})
}

// TestDefaultCeilingRefusesPrivilegedScopes: without a configured ceiling
// neither the Manager nor the keys API issues admin or wildcard keys
// (finding 4).
func TestDefaultCeilingRefusesPrivilegedScopes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	srv := keysServer(t, f.mgr, nil)
	ctx := context.Background()

	attacks := []struct {
		name   string
		scopes []string
	}{
		{"admin", []string{"admin"}},
		{"global wildcard", []string{"*"}},
		{"resource wildcard", []string{"documents:*"}},
		{"admin hidden after an ordinary scope", []string{"documents:read", "admin"}},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			user := "u-" + a.name
			body, err := json.Marshal(map[string]any{"scopes": a.scopes})
			require.NoError(t, err)
			r := call(t, srv, user, "POST", "/keys", jsonCT, string(body))
			assert.Equal(t, http.StatusForbidden, r.status, r.raw)
			assert.Equal(t, "scope_not_allowed", r.body["error"], r.raw)

			_, err = f.mgr.Create(ctx, user, keyadmin.CreateOptions{Scopes: a.scopes})
			assert.ErrorIs(t, err, keyadmin.ErrScopeNotAllowed)
			_, err = f.mgr.ImportLegacy(ctx, user, strings.Repeat("ab", 32), keyadmin.CreateOptions{Scopes: a.scopes})
			assert.ErrorIs(t, err, keyadmin.ErrScopeNotAllowed)
			assert.Empty(t, keysOf(t, f, user), "no key was created")
		})
	}

	t.Run("ordinary scopes are issued by default", func(t *testing.T) {
		k, err := f.mgr.Create(ctx, "erin", keyadmin.CreateOptions{Scopes: []string{"documents:read", "read", "notes:write"}})
		require.NoError(t, err)
		assert.Equal(t, []string{"documents:read", "read", "notes:write"}, k.Key.Scopes)
	})
	t.Run("a ceiling that contains them lifts the default", func(t *testing.T) {
		docs := newManager(t, f, &keyadmin.Options{ScopeCeiling: keyadmin.FixedScopeCeiling("documents:*")})
		_, err := docs.Create(ctx, "frank", keyadmin.CreateOptions{Scopes: []string{"documents:*"}})
		require.NoError(t, err)
		_, err = docs.Create(ctx, "frank", keyadmin.CreateOptions{Scopes: []string{"admin"}})
		require.ErrorIs(t, err, keyadmin.ErrScopeNotAllowed, "documents:* does not cover admin")
		root := newManager(t, f, &keyadmin.Options{ScopeCeiling: keyadmin.FixedScopeCeiling("admin")})
		_, err = root.Create(ctx, "root", keyadmin.CreateOptions{Scopes: []string{"admin", "*"}})
		require.NoError(t, err)
	})
}

// mutableCeiling is a ScopeCeiling the test lowers at run time.
type mutableCeiling struct {
	mu     sync.Mutex
	scopes []string
}

func (c *mutableCeiling) set(scopes ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.scopes = scopes
}

func (c *mutableCeiling) get(context.Context, string) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.scopes, nil
}

// TestRotateAppliesTodaysLimits: rotation applies the ceiling, lifetime cap,
// grace bound and active-key count in force now, not those the old key was
// issued under (finding 5).
func TestRotateAppliesTodaysLimits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("lowered ceiling", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, nil)
		ceiling := &mutableCeiling{scopes: []string{"admin"}}
		m := newManager(t, f, &keyadmin.Options{ScopeCeiling: ceiling.get})
		srv := keysServer(t, m, nil)
		admin, err := m.Create(ctx, "alice", keyadmin.CreateOptions{Scopes: []string{"admin"}})
		require.NoError(t, err)
		ceiling.set("documents:read")
		before := keysOf(t, f, "alice")

		attacks := []struct {
			name   string
			rotate func() error
		}{
			{"Manager.Rotate", func() error { _, err := m.Rotate(ctx, admin.Key.ID, time.Hour); return err }},
			{"Manager.Rotate grace 0", func() error { _, err := m.Rotate(ctx, admin.Key.ID, 0); return err }},
			{"POST rotate", func() error {
				r := call(t, srv, "alice", "POST", "/keys/"+admin.Key.ID+"/rotate", jsonCT, `{"grace_seconds":60}`)
				assert.Equal(t, http.StatusForbidden, r.status, r.raw)
				assert.Equal(t, "scope_not_allowed", r.body["error"], r.raw)
				return keyadmin.ErrScopeNotAllowed
			}},
		}
		for _, a := range attacks {
			require.ErrorIs(t, a.rotate(), keyadmin.ErrScopeNotAllowed, a.name)
			assert.Equal(t, before, keysOf(t, f, "alice"), "%s: no new key, the old record unchanged", a.name)
		}
	})

	t.Run("lowered lifetime cap", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, nil)
		old, err := f.mgr.Create(ctx, "alice", keyadmin.CreateOptions{ExpiresIn: 365 * 24 * time.Hour})
		require.NoError(t, err)
		capped := newManager(t, f, &keyadmin.Options{MaxLifetime: 30 * 24 * time.Hour})
		fresh, err := capped.Rotate(ctx, old.Key.ID, 0)
		require.NoError(t, err)
		assert.Equal(t, f.clock.Now().Add(30*24*time.Hour), fresh.Key.ExpiresAt)
	})

	t.Run("grace bound and active-key count", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, nil)
		m := newManager(t, f, &keyadmin.Options{MaxActiveKeys: 2})
		srv := keysServer(t, m, nil)
		k, err := m.Create(ctx, "alice", keyadmin.CreateOptions{})
		require.NoError(t, err)

		// Five rotations with a 100-year grace: refused, nothing written.
		before := keysOf(t, f, "alice")
		for range 5 {
			_, err := m.Rotate(ctx, k.Key.ID, 100*365*24*time.Hour)
			var ve *keyadmin.ValidationError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, "grace", ve.Field)
			r := call(t, srv, "alice", "POST", "/keys/"+k.Key.ID+"/rotate", jsonCT, `{"grace_seconds":3153600000}`)
			assert.Equal(t, http.StatusBadRequest, r.status, r.raw)
			assert.Equal(t, "grace", r.body["field"], r.raw)
		}
		assert.Equal(t, before, keysOf(t, f, "alice"), "no key created, the old record unchanged")

		// Five rotations with the longest grace allowed, each of the newest
		// key: the old keys in grace count, so only the first succeeds.
		id := k.Key.ID
		var tooMany int
		for range 5 {
			fresh, err := m.Rotate(ctx, id, keyadmin.DefaultMaxRotationGrace)
			if err != nil {
				require.ErrorIs(t, err, keyadmin.ErrTooManyKeys)
				tooMany++
				continue
			}
			id = fresh.Key.ID
		}
		assert.Equal(t, 4, tooMany)
		assert.Equal(t, 2, activeKeys(t, f, "alice"), "never more than MaxActiveKeys")
		r := call(t, srv, "alice", "POST", "/keys/"+id+"/rotate", jsonCT, `{"grace_seconds":60}`)
		assert.Equal(t, http.StatusConflict, r.status, r.raw)
		assert.Len(t, keysOf(t, f, "alice"), 2)

		// Grace 0 replaces the key: allowed at the bound, the count stays.
		_, err = m.Rotate(ctx, id, 0)
		require.NoError(t, err)
		assert.Equal(t, 2, activeKeys(t, f, "alice"))

		_, err = f.newManager(&keyadmin.Options{MaxRotationGrace: -time.Second})
		assert.Error(t, err)
	})
}

// TestKeysAPICrossSiteRequests: every state-changing request must pass the
// cross-origin check and carry the JSON content type, with or without a
// body (finding 6).
func TestKeysAPICrossSiteRequests(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	srv := keysServer(t, f.mgr, &keyadmin.HandlerOptions{TrustedOrigins: []string{"https://admin.example.com"}})
	k, err := f.mgr.Create(context.Background(), "alice", keyadmin.CreateOptions{Name: "laptop"})
	require.NoError(t, err)
	rotate, key := "/keys/"+k.Key.ID+"/rotate", "/keys/"+k.Key.ID
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	crossSite := map[string]string{"Content-Type": jsonCT, "Sec-Fetch-Site": "cross-site"}

	attacks := []struct {
		name, method, path string
		headers            map[string]string
		body               string
		status             int
	}{
		{"bodyless form rotate", "POST", rotate, form, "", http.StatusUnsupportedMediaType},
		{"bodyless text/plain rotate", "POST", rotate, map[string]string{"Content-Type": "text/plain"}, "", http.StatusUnsupportedMediaType},
		{"bodyless rotate without content type", "POST", rotate, nil, "", http.StatusUnsupportedMediaType},
		{"form create", "POST", "/keys", form, "name=x", http.StatusUnsupportedMediaType},
		{"revoke without content type", "DELETE", key, nil, "", http.StatusUnsupportedMediaType},
		{"cross-site rotate", "POST", rotate, crossSite, "", http.StatusForbidden},
		{"same-site rotate (another subdomain)", "POST", rotate, map[string]string{"Content-Type": jsonCT, "Sec-Fetch-Site": "same-site"}, "", http.StatusForbidden},
		{"cross-site revoke", "DELETE", key, crossSite, "", http.StatusForbidden},
		{"cross-site create", "POST", "/keys", crossSite, `{}`, http.StatusForbidden},
		{"foreign Origin, old browser", "POST", rotate, map[string]string{"Content-Type": jsonCT, "Origin": "https://evil.example"}, "", http.StatusForbidden},
		{"revoke with a smuggled body field", "DELETE", key, map[string]string{"Content-Type": jsonCT}, `{"id":"other"}`, http.StatusBadRequest},
	}
	before := keysOf(t, f, "alice")
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			r := send(t, srv, "alice", a.method, a.path, a.headers, a.body)
			assert.Equal(t, a.status, r.status, r.raw)
			assert.Equal(t, before, keysOf(t, f, "alice"), "no key created, rotated or revoked")
		})
	}

	for _, ok := range []struct {
		name    string
		headers map[string]string
	}{
		{"same-origin fetch", map[string]string{"Content-Type": jsonCT, "Sec-Fetch-Site": "same-origin"}},
		{"trusted origin", map[string]string{"Content-Type": jsonCT, "Sec-Fetch-Site": "cross-site", "Origin": "https://admin.example.com"}},
		{"non-browser client", map[string]string{"Content-Type": "application/json; charset=utf-8"}},
	} {
		t.Run(ok.name, func(t *testing.T) {
			r := send(t, srv, ok.name, "POST", "/keys", ok.headers, `{}`)
			assert.Equal(t, http.StatusCreated, r.status, r.raw)
		})
	}
	r := send(t, srv, "alice", "POST", rotate, map[string]string{"Content-Type": jsonCT}, "")
	assert.Equal(t, http.StatusCreated, r.status, "a bodyless rotate with the JSON type: %s", r.raw)

	_, err = f.mgr.Handler(testUser, &keyadmin.HandlerOptions{TrustedOrigins: []string{"admin.example.com/path"}})
	assert.ErrorContains(t, err, "TrustedOrigins[0]")
}
