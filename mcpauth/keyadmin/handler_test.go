package keyadmin_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
)

// keysAPI serves the management API; the "session" is the X-Test-User
// header, standing in for the host's own session authentication.
func keysAPI(t *testing.T) (*fixture, *httptest.Server) {
	t.Helper()
	f := newFixture(t, nil)
	m := newManager(t, f, &keyadmin.Options{MaxActiveKeys: 3, AllowedScopes: []string{"documents:read", "documents:write"}})
	return f, keysServer(t, m, nil)
}

// keysServer serves m's KeysHandler with opts.
func keysServer(t *testing.T, m *keyadmin.Manager, opts *keyadmin.HandlerOptions) *httptest.Server {
	t.Helper()
	h, err := m.Handler(testUser, opts)
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func testUser(r *http.Request) (string, error) {
	if u := r.Header.Get("X-Test-User"); u != "" {
		return u, nil
	}
	return "", keyadmin.ErrNotSignedIn
}

type apiResp struct {
	status int
	body   map[string]any
	raw    string
}

func call(t *testing.T, srv *httptest.Server, user, method, path, ctype, body string) apiResp {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if user != "" {
		req.Header.Set("X-Test-User", user)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
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

const jsonCT = "application/json"

func TestKeysAPITwoUsers(t *testing.T) {
	t.Parallel()
	f, srv := keysAPI(t)
	created := call(t, srv, "alice", "POST", "/keys", jsonCT, `{"name":"laptop","scopes":["documents:read"],"expires_in_seconds":3600}`)
	require.Equal(t, 201, created.status, created.raw)
	raw := created.body["raw_key"].(string)
	info := created.body["key"].(map[string]any)
	id := info["id"].(string)
	assert.Equal(t, "alice", info["user_id"])
	assert.Equal(t, "active", info["status"])
	assert.NotContains(t, created.raw, "hash")
	_, err := f.auth(raw)
	require.NoError(t, err, "the key works")

	list := call(t, srv, "alice", "GET", "/keys", "", "")
	require.Equal(t, 200, list.status)
	require.Len(t, list.body["keys"], 1)
	assert.NotContains(t, list.raw, raw, "listing never shows the secret")
	assert.Equal(t, 200, call(t, srv, "alice", "GET", "/keys/"+id, "", "").status)

	// Bob sees nothing of Alice's and cannot touch her key.
	assert.Empty(t, call(t, srv, "bob", "GET", "/keys", "", "").body["keys"])
	for _, c := range []struct{ method, path, ctype string }{
		{"GET", "/keys/" + id, ""},
		{"DELETE", "/keys/" + id, jsonCT},
		{"POST", "/keys/" + id + "/rotate", jsonCT},
	} {
		r := call(t, srv, "bob", c.method, c.path, c.ctype, "")
		assert.Equal(t, 404, r.status, "%s %s", c.method, c.path)
		assert.Equal(t, "not_found", r.body["error"])
	}
	_, err = f.auth(raw)
	require.NoError(t, err, "bob's attempts changed nothing")

	rot := call(t, srv, "alice", "POST", "/keys/"+id+"/rotate", jsonCT, `{"grace_seconds":60}`)
	require.Equal(t, 201, rot.status, rot.raw)
	newRaw := rot.body["raw_key"].(string)
	_, err = f.auth(newRaw)
	require.NoError(t, err)
	old := rot.body["old_key"].(map[string]any)
	assert.Equal(t, id, old["id"], "rotate says what became of the old key")
	assert.Equal(t, f.clock.Now().Add(time.Minute).UTC().Format(time.RFC3339Nano), old["expires_at"], "its new expiry: the end of the grace")
	shown := call(t, srv, "alice", "GET", "/keys/"+rot.body["key"].(map[string]any)["id"].(string), "", "")
	assert.Equal(t, rot.body["key"], shown.body, "a new key reads the same as when it is shown later (one shape, one time precision)")

	del := call(t, srv, "alice", "DELETE", "/keys/"+id, jsonCT, "")
	assert.Equal(t, 204, del.status)
	_, err = f.auth(raw)
	assert.ErrorIs(t, err, mcpauth.ErrKeyRevoked)
}

func TestKeysAPIBadInput(t *testing.T) {
	t.Parallel()
	_, srv := keysAPI(t)
	for range 3 {
		require.Equal(t, 201, call(t, srv, "carol", "POST", "/keys", jsonCT, `{}`).status)
	}
	tests := []struct {
		name, user, method, path, ctype, body string
		status                                int
		code, field                           string
	}{
		{"not signed in", "", "GET", "/keys", "", "", 401, "unauthorized", ""},
		{"wrong content type", "alice", "POST", "/keys", "text/plain", `{}`, 415, "unsupported_media_type", ""},
		{"form post (CSRF shape)", "alice", "POST", "/keys", "application/x-www-form-urlencoded", `name=x`, 415, "unsupported_media_type", ""},
		{"missing body", "alice", "POST", "/keys", jsonCT, ``, 400, "invalid_request", ""},
		{"bad json", "alice", "POST", "/keys", jsonCT, `{"name":`, 400, "invalid_request", ""},
		{"unknown field", "alice", "POST", "/keys", jsonCT, `{"nmae":"x"}`, 400, "invalid_request", "nmae"},
		{"wrong type", "alice", "POST", "/keys", jsonCT, `{"scopes":"documents:read"}`, 400, "invalid_request", "scopes"},
		{"unknown scope", "alice", "POST", "/keys", jsonCT, `{"scopes":["documents:read","billing:read"]}`, 400, "invalid_request", "scopes[1]"},
		{"negative expiry", "alice", "POST", "/keys", jsonCT, `{"expires_in_seconds":-5}`, 400, "invalid_request", "expires_in_seconds"},
		{"bad cidr", "alice", "POST", "/keys", jsonCT, `{"allowed_cidrs":["300.1.1.1"]}`, 400, "invalid_request", "allowed_cidrs[0]"},
		{"trailing data", "alice", "POST", "/keys", jsonCT, `{} {}`, 400, "invalid_request", ""},
		{"too many keys", "carol", "POST", "/keys", jsonCT, `{}`, 409, "too_many_keys", ""},
		{"oversized body", "alice", "POST", "/keys", jsonCT, `{"name":"` + strings.Repeat("a", 70<<10) + `"}`, 413, "too_large", ""},
		{"unknown key", "alice", "GET", "/keys/000000000000", "", "", 404, "not_found", ""},
		{"bad grace", "carol", "POST", "/keys/000000000000/rotate", jsonCT, `{"grace_seconds":-1}`, 400, "invalid_request", "grace_seconds"},
		{"wrong method", "alice", "PUT", "/keys", jsonCT, `{}`, 405, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, srv, tt.user, tt.method, tt.path, tt.ctype, tt.body)
			assert.Equal(t, tt.status, r.status, r.raw)
			if tt.code != "" {
				assert.Equal(t, tt.code, r.body["error"], r.raw)
			}
			if tt.field != "" {
				assert.Equal(t, tt.field, r.body["field"], r.raw)
			}
		})
	}
}

// TestKeysAPIMountPathRevokeAllAndFailingUser: the handler serves under
// the path it is given, DELETE on the collection revokes all the user's
// keys, and a failing user function is a 503, not a "sign in" 401.
func TestKeysAPIMountPathRevokeAllAndFailingUser(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	m := newManager(t, f, nil)
	_, err := m.Handler(testUser, &keyadmin.HandlerOptions{Path: "agent-keys/"})
	require.ErrorContains(t, err, "HandlerOptions.Path")
	srv := keysServer(t, m, &keyadmin.HandlerOptions{Path: "/api/agent-keys"})
	var raws []string
	for range 2 {
		c := call(t, srv, "alice", "POST", "/api/agent-keys", jsonCT, `{}`)
		require.Equal(t, 201, c.status, c.raw)
		raws = append(raws, c.body["raw_key"].(string))
	}
	bob := call(t, srv, "bob", "POST", "/api/agent-keys", jsonCT, `{}`)
	require.Equal(t, 201, bob.status)
	assert.Equal(t, 404, call(t, srv, "alice", "GET", "/keys", "", "").status, "only the given path is served")

	all := call(t, srv, "alice", "DELETE", "/api/agent-keys", jsonCT, "")
	require.Equal(t, 200, all.status, all.raw)
	assert.EqualValues(t, 2, all.body["revoked"])
	for _, raw := range raws {
		_, err := f.auth(raw)
		assert.ErrorIs(t, err, mcpauth.ErrKeyRevoked)
	}
	_, err = f.auth(bob.body["raw_key"].(string))
	assert.NoError(t, err, "another user's keys are untouched")
	assert.Equal(t, 415, call(t, srv, "alice", "DELETE", "/api/agent-keys", "text/plain", "").status, "revoke-all is a state change: JSON only")

	broken, err := m.Handler(func(*http.Request) (string, error) { return "", errors.New("session store down") }, nil)
	require.NoError(t, err)
	bsrv := httptest.NewServer(broken)
	t.Cleanup(bsrv.Close)
	r := call(t, bsrv, "alice", "GET", "/keys", "", "")
	assert.Equal(t, 503, r.status)
	assert.NotContains(t, r.raw, "session store down")
	r = call(t, srv, "", "GET", "/api/agent-keys", "", "")
	assert.Equal(t, 401, r.status, "no user: sign in")
}

// TestKeysAPIChangesAreAuditedWithTheRequest: a key change made through the
// keys API is audited with the request's client address, user agent and
// request ID (sent back in X-Request-Id).
func TestKeysAPIChangesAreAuditedWithTheRequest(t *testing.T) {
	t.Parallel()
	sink := &memSink{}
	f := newFixture(t, &mcpauth.Options{Audit: sink})
	srv := keysServer(t, f.mgr, nil)
	req, err := http.NewRequest("POST", srv.URL+"/keys", strings.NewReader(`{"name":"laptop"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", jsonCT)
	req.Header.Set("X-Test-User", "alice")
	req.Header.Set("User-Agent", "settings-page/2")
	req.Header.Set("X-Request-Id", "req-keys-1")
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 201, resp.StatusCode)
	assert.Equal(t, "req-keys-1", resp.Header.Get("X-Request-Id"))
	var created *audit.Event
	for _, e := range sink.all() {
		if e.Action == audit.ActionCreated {
			created = &e
		}
	}
	require.NotNil(t, created)
	assert.Equal(t, "127.0.0.1", created.ClientIP)
	assert.Equal(t, "settings-page/2", created.UserAgent)
	assert.Equal(t, "req-keys-1", created.RequestID)
	assert.Equal(t, "alice", created.UserID)
}
