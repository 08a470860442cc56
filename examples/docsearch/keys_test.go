package main

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/store"
)

var rawKeyElement = regexp.MustCompile(`<code id="raw-key">(mcp_[0-9A-Za-z]+)</code>`)

// TestKeysPage: create a key from the fixed scope list, rotate it with a
// grace period (both keys work until the grace ends), rotate without one
// (the old key stops at once); scopes outside the list and lifetimes not
// offered are refused and write nothing.
func TestKeysPage(t *testing.T) {
	e := newTestEnv(t, "sqlite", nil)
	ctx := context.Background()
	alice := e.login("alice")

	status, page := alice.postForm("/keys", url.Values{"name": {"laptop"}, "scopes": {"documents:read", "documents:write"}, "expires_in": {"604800"}})
	require.Equal(t, http.StatusCreated, status)
	m := rawKeyElement.FindStringSubmatch(page)
	require.NotNil(t, m, "the new key is shown")
	first := m[1]
	firstID := first[4:16]
	info, err := e.app.keys.Get(ctx, firstID)
	require.NoError(t, err)
	assert.Equal(t, []string{"documents:read", "documents:write"}, info.Scopes)
	assert.WithinDuration(t, e.clock.now().Add(7*24*time.Hour), info.ExpiresAt, time.Minute)
	_, page = alice.get("/keys")
	assert.NotContains(t, page, first, "shown once")

	status, page = alice.postForm("/keys/"+firstID+"/rotate", url.Values{"grace": {"3600"}})
	require.Equal(t, http.StatusCreated, status)
	m = rawKeyElement.FindStringSubmatch(page)
	require.NotNil(t, m)
	second := m[1]
	assert.Contains(t, page, "(replaces "+firstID+")")
	old, err := e.app.keys.Get(ctx, firstID)
	require.NoError(t, err)
	assert.WithinDuration(t, e.clock.now().Add(time.Hour), old.ExpiresAt, time.Minute, "the old key ends with the grace period")
	e.mustConnect(first)
	e.mustConnect(second)

	status, page = alice.postForm("/keys/"+second[4:16]+"/rotate", url.Values{"grace": {"0"}})
	require.Equal(t, http.StatusCreated, status)
	require.NotNil(t, rawKeyElement.FindStringSubmatch(page))
	_, err = e.connect(second)
	assert.Error(t, err, "rotated without grace: the old key stops at once")
	k, err := e.app.keys.Get(ctx, second[4:16])
	require.NoError(t, err)
	assert.Equal(t, store.StatusRevoked, k.Status)

	before := e.countRows("mcpauth_keys", "user_id = $1", "alice")
	refused := []url.Values{
		{"name": {"x"}, "scopes": {"admin"}, "expires_in": {"604800"}},
		{"name": {"x"}, "scopes": {"documents:*"}, "expires_in": {"604800"}},
		{"name": {"x"}, "scopes": {"billing:read"}, "expires_in": {"604800"}},
		{"name": {"x"}, "scopes": {"documents:read"}, "expires_in": {"315360000"}}, // ten years: not offered
		{"name": {"x"}, "scopes": {"documents:read"}, "expires_in": {"-1"}},
	}
	for _, form := range refused {
		status, page := alice.postForm("/keys", form)
		assert.GreaterOrEqual(t, status, 400, "%v", form)
		assert.Contains(t, page, `class="error"`)
		assert.Nil(t, rawKeyElement.FindStringSubmatch(page), "%v: no key shown", form)
	}
	assert.Equal(t, before, e.countRows("mcpauth_keys", "user_id = $1", "alice"), "no key written")
}
