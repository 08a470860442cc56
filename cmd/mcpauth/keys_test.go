package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/store/sqlstore"
)

// authenticate reports whether a server with the given peppers and clock
// accepts raw against the harness database.
func (h *harness) authenticate(raw string, opts mcpauth.Options) error {
	h.t.Helper()
	keys, err := sqlstore.New(h.openDB(), nil)
	require.NoError(h.t, err)
	if opts.Now == nil {
		opts.Now = h.clock
	}
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	g, err := mcpauth.New(keys, &opts)
	require.NoError(h.t, err)
	defer g.Close(context.Background())
	req := httptest.NewRequest("POST", "/mcp", nil)
	req.RemoteAddr = "10.1.2.3:4567"
	req.Header.Set("Authorization", "Bearer "+raw)
	_, err = g.Authenticate(req)
	return err
}

func pepper(t *testing.T, s string) apikey.Pepper {
	p, err := apikey.ParsePepper(s)
	require.NoError(t, err)
	return p
}

func TestKeysLifecycle(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.must(exitOK, "migrate")
	h.must(exitOK, "migrate") // again: a no-op

	r := h.must(exitOK, "keys", "create", "--user", "alice", "--name", "claude desktop", "--scope", "documents:read",
		"--scope", "documents:write", "--cidr", "10.0.0.0/8", "--cidr", "2001:db8::/32", "--rate-limit", "120", "--meta", "tier=pro", "--expires", "720h")
	laptop := rawKeyOnce(t, r)
	require.Equal(t, laptop+"\n", r.stdout, "stdout holds the raw key and nothing else")
	laptopID := laptop[4:16]

	r = h.must(exitOK, "keys", "create", "--user", "alice", "--json", "--expires", "never")
	ci := rawKeyOnce(t, r)
	var created struct {
		RawKey string           `json:"raw_key"`
		Key    keyadmin.KeyInfo `json:"key"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &created))
	assert.Equal(t, ci, created.RawKey)
	assert.True(t, created.Key.ExpiresAt.IsZero(), "--expires never")
	assert.Empty(t, r.stderr)

	h.must(exitOK, "keys", "create", "--user", "bob", "--name", "bob's agent", "--expires", "30d")
	h.must(exitOK, "keys", "list", "--user", "alice")
	r = h.must(exitOK, "keys", "list", "--user", "alice", "--json")
	var list []keyadmin.KeyInfo
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &list))
	require.Len(t, list, 2)
	assert.Equal(t, laptopID, list[0].ID)
	assert.Equal(t, []string{"documents:read", "documents:write"}, list[0].Scopes)
	assert.Equal(t, 120, list[0].RateLimit)
	assert.Equal(t, map[string]string{"tier": "pro"}, list[0].Metadata)
	assert.Equal(t, t0.Add(3*time.Minute).Add(720*time.Hour), list[0].ExpiresAt)
	h.must(exitOK, "keys", "list", "--user", "nobody")
	h.must(exitOK, "keys", "show", laptopID)
	h.must(exitOK, "--json", "keys", "show", laptopID)

	// The keys work on a server with the same pepper, from allowed addresses.
	peppers := []apikey.Pepper{pepper(t, testPepper)}
	require.NoError(t, h.authenticate(laptop, mcpauth.Options{Peppers: peppers}))
	require.NoError(t, h.authenticate(ci, mcpauth.Options{Peppers: peppers}))

	// Rotate with a grace period: both keys work until it ends.
	r = h.must(exitOK, "keys", "rotate", laptopID, "--grace", "1h")
	rotated := rawKeyOnce(t, r)
	require.Equal(t, rotated+"\n", r.stdout)
	require.NoError(t, h.authenticate(rotated, mcpauth.Options{Peppers: peppers}))
	require.NoError(t, h.authenticate(laptop, mcpauth.Options{Peppers: peppers}))
	later := h.clock().Add(time.Hour)
	require.ErrorIs(t, h.authenticate(laptop, mcpauth.Options{Peppers: peppers, Now: func() time.Time { return later }}), mcpauth.ErrKeyExpired)
	h.must(exitOK, "keys", "show", laptopID)

	r = h.must(exitOK, "keys", "rotate", rotated[4:16], "--grace", "0", "--json")
	immediate := rawKeyOnce(t, r)
	var rot struct {
		RawKey string            `json:"raw_key"`
		Key    keyadmin.KeyInfo  `json:"key"`
		OldKey *keyadmin.KeyInfo `json:"old_key"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rot))
	assert.Equal(t, immediate, rot.RawKey)
	require.NotNil(t, rot.OldKey)
	assert.Equal(t, "revoked", string(rot.OldKey.Status))
	require.ErrorIs(t, h.authenticate(rotated, mcpauth.Options{Peppers: peppers}), mcpauth.ErrKeyRevoked)

	// A revoked key cannot be rotated.
	r = h.must(exitUsage, "keys", "rotate", rotated[4:16])
	assert.Contains(t, r.stderr, "key ID")
	assert.Contains(t, r.stderr, "revoked")

	h.must(exitOK, "keys", "revoke", ci[4:16])
	h.must(exitOK, "keys", "revoke", ci[4:16]) // again: not an error
	require.ErrorIs(t, h.authenticate(ci, mcpauth.Options{Peppers: peppers}), mcpauth.ErrKeyRevoked)
	h.must(exitOK, "keys", "revoke-all", "--user", "alice")
	h.must(exitOK, "keys", "revoke-all", "--user", "alice", "--json")
	h.must(exitOK, "keys", "list", "--user", "alice")
	require.ErrorIs(t, h.authenticate(immediate, mcpauth.Options{Peppers: peppers}), mcpauth.ErrKeyRevoked)

	// Legacy import: the raw key is never given to the CLI.
	legacy := []string{"sk_live_0123456789abcdefghij", "sk_live_zyxwvutsrqponmlkjihg"}
	var hashes []string
	for _, raw := range legacy {
		sum := apikey.LegacyKeyHash(raw)
		hashes = append(hashes, hex.EncodeToString(sum[:]))
	}
	h.must(exitOK, "keys", "import-legacy", "--user", "carol", "--sha256", hashes[0], "--sha256", hashes[1], "--name", "imported", "--scope", "documents:read")
	for _, raw := range legacy {
		require.NoError(t, h.authenticate(raw, mcpauth.Options{Peppers: peppers, AcceptLegacyKeys: true}))
		require.ErrorIs(t, h.authenticate(raw, mcpauth.Options{Peppers: peppers}), mcpauth.ErrInvalidKey)
	}
	r = h.must(exitOK, "keys", "import-legacy", "--user", "carol", "--sha256", hex.EncodeToString([]byte("0123456789abcdef0123456789abcdef")), "--json")
	h.must(exitOK, "keys", "list", "--user", "carol")

	// Each raw key appears once in the whole session: where it was issued.
	for _, raw := range []string{laptop, ci, rotated, immediate} {
		assert.Equal(t, 1, strings.Count(h.transcript.String(), raw), "raw key printed more than once")
	}
	h.golden("keys")
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.must(exitOK, "migrate")
	for _, args := range [][]string{
		{"keys", "show", "AbCdEfGhIjKl"},
		{"keys", "show", "--json", "AbCdEfGhIjKl"},
		{"keys", "rotate", "AbCdEfGhIjKl"},
		{"keys", "revoke", "AbCdEfGhIjKl"},
		{"keys", "show", "not-even-a-key-id"},
	} {
		r := h.must(exitNotFound, args...)
		assert.Empty(t, r.stdout)
		assert.Contains(t, r.stderr, `no key with ID "`)
	}
	h.golden("not_found")
}

func TestPeppers(t *testing.T) {
	t.Parallel()
	const secret = "very-secret-pepper-value-42"
	cases := []struct {
		name     string
		env      map[string]string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"no separator", map[string]string{"MCPAUTH_PEPPER": secret}, nil, exitUsage, "$MCPAUTH_PEPPER"},
		{"bad version", map[string]string{"MCPAUTH_PEPPER": "x:" + secret}, nil, exitUsage, "$MCPAUTH_PEPPER: pepper version"},
		{"short secret", map[string]string{"MCPAUTH_PEPPER": "1:short"}, nil, exitUsage, "at least 16 bytes"},
		{"other variable", map[string]string{"APP_PEPPER": "nope"}, []string{"--pepper-env", "APP_PEPPER"}, exitUsage, "$APP_PEPPER"},
		{"bad retired", map[string]string{"MCPAUTH_PEPPER": "2:" + secret, "MCPAUTH_PEPPERS_RETIRED": "1:" + secret + ",oops" + secret}, nil, exitUsage, "$MCPAUTH_PEPPERS_RETIRED entry 2"},
		{"retired without current", map[string]string{"MCPAUTH_PEPPERS_RETIRED": "1:" + secret}, nil, exitUsage, "$MCPAUTH_PEPPERS_RETIRED is set but $MCPAUTH_PEPPER is not"},
		{"same version twice", map[string]string{"MCPAUTH_PEPPER": "1:" + secret, "MCPAUTH_PEPPERS_RETIRED": "1:" + secret + "x"}, nil, exitUsage, "version 1 given twice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.must(exitOK, "migrate")
			h.env = tc.env
			r := h.must(tc.wantCode, append(tc.args, "keys", "create", "--user", "u")...)
			assert.Contains(t, r.stderr, tc.wantErr)
			assert.NotContains(t, r.stderr, secret)
			assert.NotContains(t, r.stderr, "short\n")
			assert.Empty(t, r.stdout)
		})
	}

	t.Run("custom variable and retired peppers", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.must(exitOK, "migrate")
		h.env = map[string]string{"APP_PEPPER": "3:" + secret, "MCPAUTH_PEPPERS_RETIRED": "2:older-pepper-value-0001, 1:oldest-pepper-value-0001"}
		r := h.must(exitOK, "--pepper-env", "APP_PEPPER", "keys", "create", "--user", "u")
		raw := rawKeyOnce(t, r)
		assert.NotContains(t, r.stderr, "warning")
		require.NoError(t, h.authenticate(raw, mcpauth.Options{Peppers: []apikey.Pepper{pepper(t, "3:"+secret)}}))
		require.ErrorIs(t, h.authenticate(raw, mcpauth.Options{Peppers: []apikey.Pepper{pepper(t, "2:older-pepper-value-0001")}}), mcpauth.ErrInvalidKey)
	})

	t.Run("no pepper warns", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.must(exitOK, "migrate")
		h.env = nil
		r := h.must(exitOK, "keys", "create", "--user", "u")
		raw := rawKeyOnce(t, r)
		assert.Contains(t, r.stderr, "warning: $MCPAUTH_PEPPER is not set")
		// Plain SHA-256 keys still work on a server with peppers.
		require.NoError(t, h.authenticate(raw, mcpauth.Options{Peppers: []apikey.Pepper{pepper(t, testPepper)}}))
	})

	t.Run("custom key prefix", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.must(exitOK, "migrate")
		r := h.must(exitOK, "keys", "create", "--user", "u", "--prefix", "acme")
		raw := strings.TrimSpace(r.stdout)
		require.True(t, strings.HasPrefix(raw, "acme_"), raw)
		require.NoError(t, h.authenticate(raw, mcpauth.Options{Prefix: "acme", Peppers: []apikey.Pepper{pepper(t, testPepper)}}))
		r = h.must(exitUsage, "keys", "create", "--user", "u", "--prefix", "Not-OK")
		assert.Contains(t, r.stderr, "--prefix")
	})
}

// TestRealDeps runs through run itself, with the real clock and crypto/rand.
func TestRealDeps(t *testing.T) {
	t.Parallel()
	db := t.TempDir() + "/real.db"
	env := func(k string) string {
		return map[string]string{"MCPAUTH_DB": db, "MCPAUTH_PEPPER": testPepper}[k]
	}
	var out, errb strings.Builder
	require.Equal(t, exitOK, run(context.Background(), []string{"migrate"}, &out, &errb, env), errb.String())
	out.Reset()
	require.Equal(t, exitOK, run(context.Background(), []string{"keys", "create", "--user", "u"}, &out, &errb, env), errb.String())
	raw := strings.TrimSpace(out.String())
	_, err := apikey.ParseKey(raw, "mcp")
	require.NoError(t, err)
	out.Reset()
	require.Equal(t, exitOK, run(context.Background(), []string{"keys", "list", "--user", "u"}, &out, &errb, env))
	assert.Contains(t, out.String(), raw[4:16])
	assert.Contains(t, out.String(), "active")
}

// A whole key pasted where a key ID belongs is used by its ID and never
// echoed back.
func TestWholeKeyAsID(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.must(exitOK, "migrate")
	raw := rawKeyOnce(t, h.must(exitOK, "keys", "create", "--user", "u"))
	for _, args := range [][]string{{"keys", "show", raw}, {"keys", "revoke", raw}, {"keys", "show", "--json", raw}} {
		r := h.must(exitOK, args...)
		assert.NotContains(t, r.stdout+r.stderr, raw[16:], "the secret part is never printed")
		assert.Contains(t, r.stderr, "not a key ID: using its ID "+raw[4:16])
		assert.Contains(t, r.stdout, raw[4:16])
	}
	long := strings.Repeat("x", 100)
	r := h.must(exitUsage, "keys", "show", long)
	assert.NotContains(t, r.stderr, long)
	assert.Contains(t, r.stderr, "not a key ID")
	// A mistyped key (bad checksum) is not a key: it is looked up as an ID
	// only if short, and never echoed when long.
	typo := raw[:len(raw)-1] + "0"
	if typo == raw {
		typo = raw[:len(raw)-1] + "1"
	}
	r = h.must(exitUsage, "keys", "revoke", typo)
	assert.NotContains(t, r.stderr, typo)
}

// TestKeysPrivilegedScopesNeedCeiling: the CLI issues admin and wildcard
// keys only when the operator names them with --ceiling; rotation applies
// the ceiling too.
func TestKeysPrivilegedScopesNeedCeiling(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.must(exitOK, "migrate")
	for _, s := range []string{"admin", "*", "documents:*"} {
		r := h.run("keys", "create", "--user", "root", "--scope", s)
		assert.NotEqual(t, exitOK, r.code, "--scope %s without --ceiling", s)
		assert.Contains(t, r.stderr, "scope not allowed")
		assert.Empty(t, r.stdout, "no key printed")
	}
	r := h.must(exitOK, "keys", "list", "--user", "root", "--json")
	assert.JSONEq(t, "[]", r.stdout, "no key created")

	r = h.must(exitOK, "keys", "create", "--user", "root", "--scope", "admin", "--ceiling", "admin")
	id := rawKeyOnce(t, r)[4:16]
	r = h.run("keys", "rotate", id)
	assert.NotEqual(t, exitOK, r.code, "rotating an admin key needs --ceiling too")
	assert.Empty(t, r.stdout)
	r = h.must(exitOK, "keys", "list", "--user", "root", "--json")
	var list []keyadmin.KeyInfo
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &list))
	require.Len(t, list, 1, "the refused rotation issued no key")
	assert.Equal(t, "active", string(list[0].Status))
	h.must(exitOK, "keys", "rotate", id, "--ceiling", "admin")
}
