package mcpauth_test

import (
	"context"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/store"
)

// line is one request header line; repeated names are separate lines.
type line struct{ name, value string }

func authLines(g *mcpauth.Guard, raw, remote string, lines []line) (mcpauth.Principal, error) {
	r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	r.RemoteAddr = remote
	r.Header.Set("Authorization", "Bearer "+raw)
	for _, l := range lines {
		r.Header.Add(l.name, l.value)
	}
	return g.Authenticate(r)
}

// Finding 7: behind a proxy at 127.0.0.1 that sets one forwarding header,
// a key allowed only from 10.0.0.0/8 must not be usable from outside it by
// sending the other header, extra hops, extra lines or odd syntax.
func TestClientAddressSpoofing(t *testing.T) {
	t.Parallel()
	proxies := []string{"127.0.0.1", "::1"}
	guards := map[string]*mcpauth.Guard{}
	keys := map[string]string{}
	for name, header := range map[string]string{"xff": "", "fwd": "Forwarded"} {
		s := store.NewMemory()
		g, c, _ := guardOn(t, s, &mcpauth.Options{TrustedProxies: proxies, TrustedProxyHeader: header})
		k, err := managerFor(t, g, s, c.Now).Create(context.Background(), "alice", keyadmin.CreateOptions{AllowedCIDRs: []string{"10.0.0.0/8"}})
		require.NoError(t, err)
		guards[name], keys[name] = g, k.Raw
	}
	const proxy = "127.0.0.1:40000"
	attacks := []struct {
		name   string
		guard  string // which header the proxies set: "xff" or "fwd"
		remote string
		lines  []line // as the server receives them: client's, then the proxy's
	}{
		{"client Forwarded, proxy appends X-Forwarded-For", "xff", proxy, []line{{"Forwarded", "for=10.1.1.1"}, {"X-Forwarded-For", "203.0.113.9"}}},
		{"client Forwarded after the proxy's X-Forwarded-For", "xff", proxy, []line{{"X-Forwarded-For", "203.0.113.9"}, {"Forwarded", `for="10.1.1.1:80"`}}},
		{"client Forwarded, proxy sets nothing", "xff", proxy, []line{{"Forwarded", "for=10.1.1.1;proto=https"}}},
		{"client X-Forwarded-For left of the proxy's entry", "xff", proxy, []line{{"X-Forwarded-For", "10.1.1.1, 203.0.113.9"}}},
		{"client X-Forwarded-For line before the proxy's line", "xff", proxy, []line{{"X-Forwarded-For", "10.1.1.1"}, {"X-Forwarded-For", "203.0.113.9"}}},
		{"client hop behind unknown", "xff", proxy, []line{{"X-Forwarded-For", "10.1.1.1, unknown"}}},
		{"client hop behind an obfuscated one", "xff", proxy, []line{{"X-Forwarded-For", `10.1.1.1, "_hidden"`}}},
		{"spaces instead of commas", "xff", proxy, []line{{"X-Forwarded-For", "10.1.1.1 203.0.113.9"}}},
		{"empty element", "xff", proxy, []line{{"X-Forwarded-For", "10.1.1.1,,"}}},
		{"v6 client with port", "xff", "[::1]:40000", []line{{"X-Forwarded-For", "10.1.1.1, [2001:db8::5]:443"}}},
		{"zoned v6 hop", "xff", proxy, []line{{"X-Forwarded-For", "10.1.1.1, fe80::1%25eth0"}}},
		{"untrusted peer sends both headers", "xff", "203.0.113.9:1", []line{{"Forwarded", "for=10.1.1.1"}, {"X-Forwarded-For", "10.1.1.1"}}},
		{"untrusted v6 peer", "xff", "[2001:db8::5]:1", []line{{"X-Forwarded-For", "10.1.1.1"}}},
		{"huge header of spoofed hops", "xff", proxy, []line{{"X-Forwarded-For", strings.Repeat("10.1.1.1, ", 100_000) + "203.0.113.9"}}},
		{"huge chain of trusted hops", "xff", proxy, []line{{"X-Forwarded-For", "10.1.1.1, " + strings.Repeat("127.0.0.1, ", 10_000) + "127.0.0.1"}}},
		{"client X-Forwarded-For, proxy appends Forwarded", "fwd", proxy, []line{{"X-Forwarded-For", "10.1.1.1"}, {"Forwarded", "for=203.0.113.9"}}},
		{"client X-Forwarded-For, proxy sets nothing", "fwd", proxy, []line{{"X-Forwarded-For", "10.1.1.1"}}},
		{"client Forwarded element left of the proxy's", "fwd", proxy, []line{{"Forwarded", "for=10.1.1.1, for=203.0.113.9"}}},
		{"client Forwarded line before the proxy's", "fwd", proxy, []line{{"Forwarded", "for=10.1.1.1"}, {"Forwarded", "for=203.0.113.9;proto=https"}}},
		{"client open quote to swallow the proxy's element", "fwd", proxy, []line{{"Forwarded", `for="10.1.1.1, for=203.0.113.9`}}},
		{"client hop inside a quoted value", "fwd", proxy, []line{{"Forwarded", `for=203.0.113.9;ext=", for=10.1.1.1"`}}},
		{"client hop behind for=_hidden", "fwd", proxy, []line{{"Forwarded", `for=10.1.1.1, for="_hidden"`}}},
		{"client hop behind for=unknown", "fwd", proxy, []line{{"Forwarded", "for=10.1.1.1, for=unknown"}}},
		{"two for= in the proxy's element", "fwd", proxy, []line{{"Forwarded", "for=203.0.113.9;for=10.1.1.1"}}},
		{"spaces around =", "fwd", proxy, []line{{"Forwarded", "for = 10.1.1.1"}}},
		{"v6 with port", "fwd", "[::1]:40000", []line{{"Forwarded", `for=10.1.1.1, for="[2001:db8::5]:443"`}}},
		{"huge Forwarded", "fwd", proxy, []line{{"Forwarded", strings.Repeat("for=10.1.1.1, ", 70_000) + "for=203.0.113.9"}}},
	}
	for _, a := range attacks {
		t.Run(a.guard+"/"+a.name, func(t *testing.T) {
			t.Parallel()
			p, err := authLines(guards[a.guard], keys[a.guard], a.remote, a.lines)
			require.ErrorIs(t, err, mcpauth.ErrAddressNotAllowed)
			assert.Empty(t, p.KeyID, "the key must not authenticate from outside its allowlist")
		})
	}

	// The same guards let the real client in, so the refusals above are
	// about the address, not a broken setup.
	allowed := []struct {
		name, guard, remote string
		lines               []line
	}{
		{"direct", "xff", "10.1.1.1:1", nil},
		{"via proxy, X-Forwarded-For", "xff", proxy, []line{{"X-Forwarded-For", "203.0.113.9, 10.1.1.1"}}},
		{"via proxy, own line", "xff", proxy, []line{{"X-Forwarded-For", "203.0.113.9"}, {"X-Forwarded-For", "10.1.1.1"}}},
		{"via proxy, Forwarded ignored", "xff", proxy, []line{{"Forwarded", "for=203.0.113.9"}, {"X-Forwarded-For", "10.1.1.1"}}},
		{"via proxy, Forwarded", "fwd", proxy, []line{{"Forwarded", "for=203.0.113.9, for=10.1.1.1;proto=https"}}},
		{"via proxy, Forwarded v4-mapped with port", "fwd", "[::1]:1", []line{{"Forwarded", `for="[::ffff:10.1.1.1]:4711"`}}},
	}
	for _, a := range allowed {
		t.Run("allowed/"+a.guard+"/"+a.name, func(t *testing.T) {
			t.Parallel()
			p, err := authLines(guards[a.guard], keys[a.guard], a.remote, a.lines)
			require.NoError(t, err)
			assert.NotEmpty(t, p.KeyID)
		})
	}
}

// Finding 12: with AcceptLegacyKeys, credentials that cannot be a legacy
// key never reach the store.
func TestLegacyJunkNeverReachesStore(t *testing.T) {
	t.Parallel()
	s := newHookStore()
	g, c, _ := guardOn(t, s, &mcpauth.Options{AcceptLegacyKeys: true})
	current, err := managerFor(t, g, s, c.Now).Create(context.Background(), "alice", keyadmin.CreateOptions{})
	require.NoError(t, err)
	before := s.total()
	attacks := []struct{ name, raw string }{
		{"too short", "abcdefghijklmno"},
		{"too long", strings.Repeat("a", 257)},
		{"space inside", "sk_live abcdefghijklmnop"},
		{"non-ASCII", "sk_live_ſecretsecretsecret"},
		{"control character", "sk_live_\x01abcdefghijklmnop"},
		{"quote", `sk_live_"abcdefghijklmnop"`},
		{"comma list", "sk_live_aaaaaaaaaa,sk_live_bbbbbbbbbb"},
		{"= in the middle", "abcdef=ghijklmnopqrs"},
		{"JSON", `{"key":"abcdefghijklmnop"}`},
		{"percent-encoded", "sk_live_%41%42%43%44%45%46"},
		{"current-format key with a bad checksum", badChecksum(current.Raw)},
		{"current-format key forged without checksum", "mcp_" + strings.Repeat("A", 42)},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			_, err := authWith(g, a.raw)
			require.ErrorIs(t, err, mcpauth.ErrInvalidKey)
		})
	}
	assert.Equal(t, before, s.total(), "junk reached the store")

	// What a legacy key can look like still reaches it (and works).
	for _, raw := range []string{"sk_live_3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c", "mcp_" + strings.Repeat("0123456789abcdef", 4), "dGhpcyBpcyBhIGtleQ=="} {
		sum := apikey.LegacyKeyHash(raw)
		_, err := managerFor(t, g, s, c.Now).ImportLegacy(context.Background(), "alice", hex.EncodeToString(sum[:]), keyadmin.CreateOptions{})
		require.NoError(t, err)
		p, err := authWith(g, raw)
		require.NoError(t, err, raw)
		assert.Equal(t, "alice", p.UserID)
	}
}

func TestLegacyKeyPattern(t *testing.T) {
	t.Parallel()
	s := newHookStore()
	g, c, _ := guardOn(t, s, &mcpauth.Options{AcceptLegacyKeys: true, LegacyKeyPattern: `mcp_[0-9a-f]{64}`})
	seedKey := "mcp_" + strings.Repeat("0123456789abcdef", 4)
	sum := apikey.LegacyKeyHash(seedKey)
	_, err := managerFor(t, g, s, c.Now).ImportLegacy(context.Background(), "alice", hex.EncodeToString(sum[:]), keyadmin.CreateOptions{})
	require.NoError(t, err)
	p, err := authWith(g, seedKey)
	require.NoError(t, err)
	assert.Equal(t, "alice", p.UserID)

	before := s.total()
	for _, raw := range []string{
		"sk_live_3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c", // good shape, not this operator's
		"x" + seedKey, // the pattern is anchored
		seedKey + "00",
		strings.ToUpper(seedKey),
	} {
		_, err := authWith(g, raw)
		require.ErrorIs(t, err, mcpauth.ErrInvalidKey, raw)
	}
	assert.Equal(t, before, s.total(), "credentials outside LegacyKeyPattern reached the store")
}

func TestNewValidatesProxyAndLegacyOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts mcpauth.Options
		want string
	}{
		{"unknown proxy header", mcpauth.Options{TrustedProxyHeader: "X-Real-IP"}, "TrustedProxyHeader"},
		{"bad proxy address", mcpauth.Options{TrustedProxies: []string{"proxy.internal"}}, "TrustedProxies[0]"},
		{"bad legacy pattern", mcpauth.Options{AcceptLegacyKeys: true, LegacyKeyPattern: "mcp_[0-9"}, "LegacyKeyPattern"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := mcpauth.New(store.NewMemory(), &tt.opts)
			require.ErrorContains(t, err, tt.want)
		})
	}
}
