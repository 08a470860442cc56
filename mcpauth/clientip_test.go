package mcpauth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hdr is one header line, in the order the request carries it.
type hdr struct{ name, value string }

func requestFrom(remote string, lines ...hdr) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	r.RemoteAddr = remote
	for _, l := range lines {
		r.Header.Add(l.name, l.value)
	}
	return r
}

func mustTrust(t testing.TB, header string, proxies ...string) proxyTrust {
	t.Helper()
	pt, err := newProxyTrust(proxies, header)
	require.NoError(t, err)
	return pt
}

func TestClientIP(t *testing.T) {
	t.Parallel()
	xff := mustTrust(t, "", "127.0.0.1", "10.0.0.0/8", "2001:db8:ffff::/48")
	fwd := mustTrust(t, "forwarded", "127.0.0.1", "10.0.0.0/8", "2001:db8:ffff::/48")
	none := mustTrust(t, "")
	tests := []struct {
		name   string
		trust  proxyTrust
		remote string
		lines  []hdr
		want   string
	}{
		{"no proxies: peer", none, "203.0.113.9:1", []hdr{{"X-Forwarded-For", "10.1.1.1"}}, "203.0.113.9"},
		{"untrusted peer: headers ignored", xff, "198.51.100.1:1", []hdr{{"X-Forwarded-For", "10.1.1.1"}, {"Forwarded", "for=10.1.1.1"}}, "198.51.100.1"},
		{"trusted peer, no header: peer", xff, "127.0.0.1:1", nil, "127.0.0.1"},
		{"peer without port", xff, "203.0.113.9", nil, "203.0.113.9"},
		{"unparsable peer", xff, "pipe", nil, "invalid IP"},
		{"xff one hop", xff, "127.0.0.1:1", []hdr{{"X-Forwarded-For", "203.0.113.9"}}, "203.0.113.9"},
		{"xff rightmost untrusted wins", xff, "127.0.0.1:1", []hdr{{"X-Forwarded-For", "10.1.1.1, 203.0.113.9"}}, "203.0.113.9"},
		{"xff past trusted hops", xff, "127.0.0.1:1", []hdr{{"X-Forwarded-For", "198.51.100.1, 203.0.113.9, 10.2.2.2, 10.3.3.3"}}, "203.0.113.9"},
		{"xff lines are one list, in order", xff, "127.0.0.1:1", []hdr{{"X-Forwarded-For", "203.0.113.9"}, {"X-Forwarded-For", "10.2.2.2"}}, "203.0.113.9"},
		{"xff later line is nearer", xff, "127.0.0.1:1", []hdr{{"X-Forwarded-For", "10.1.1.1"}, {"X-Forwarded-For", "203.0.113.9"}}, "203.0.113.9"},
		{"xff spaces and tabs", xff, "127.0.0.1:1", []hdr{{"X-Forwarded-For", " 198.51.100.1 ,\t203.0.113.9\t"}}, "203.0.113.9"},
		{"xff ipv4 with port", xff, "127.0.0.1:1", []hdr{{"X-Forwarded-For", "203.0.113.9:4711"}}, "203.0.113.9"},
		{"xff bare ipv6", xff, "127.0.0.1:1", []hdr{{"X-Forwarded-For", "2001:db8::7"}}, "2001:db8::7"},
		{"xff bracketed ipv6 with port", xff, "127.0.0.1:1", []hdr{{"X-Forwarded-For", "[2001:db8::7]:443"}}, "2001:db8::7"},
		{"xff v4-mapped v6", xff, "127.0.0.1:1", []hdr{{"X-Forwarded-For", "::ffff:203.0.113.9"}}, "203.0.113.9"},
		{"xff unknown stops at last trusted", xff, "127.0.0.1:1", []hdr{{"X-Forwarded-For", "203.0.113.9, unknown, 10.2.2.2"}}, "10.2.2.2"},
		{"xff empty element stops", xff, "127.0.0.1:1", []hdr{{"X-Forwarded-For", "203.0.113.9,,"}}, "127.0.0.1"},
		{"xff zone stops", xff, "127.0.0.1:1", []hdr{{"X-Forwarded-For", "fe80::1%eth0"}}, "127.0.0.1"},
		{"xff bad port stops", xff, "127.0.0.1:1", []hdr{{"X-Forwarded-For", "203.0.113.9:99999"}}, "127.0.0.1"},
		{"xff ignores Forwarded", xff, "127.0.0.1:1", []hdr{{"Forwarded", "for=10.1.1.1"}, {"X-Forwarded-For", "203.0.113.9"}}, "203.0.113.9"},
		{"xff only Forwarded: peer", xff, "127.0.0.1:1", []hdr{{"Forwarded", "for=203.0.113.9"}}, "127.0.0.1"},
		{"trusted v6 peer", xff, "[2001:db8:ffff::1]:443", []hdr{{"X-Forwarded-For", "203.0.113.9"}}, "203.0.113.9"},
		{"fwd one hop", fwd, "127.0.0.1:1", []hdr{{"Forwarded", "for=203.0.113.9;proto=https"}}, "203.0.113.9"},
		{"fwd quoted v6 with port", fwd, "127.0.0.1:1", []hdr{{"Forwarded", `for="[2001:db8::7]:4711"`}}, "2001:db8::7"},
		{"fwd case-insensitive key", fwd, "127.0.0.1:1", []hdr{{"Forwarded", "For=203.0.113.9"}}, "203.0.113.9"},
		{"fwd obfuscated port", fwd, "127.0.0.1:1", []hdr{{"Forwarded", `for="203.0.113.9:_p1"`}}, "203.0.113.9"},
		{"fwd past trusted hops", fwd, "127.0.0.1:1", []hdr{{"Forwarded", "for=198.51.100.1, for=203.0.113.9;by=10.2.2.2, for=10.2.2.2"}}, "203.0.113.9"},
		{"fwd lines are one list", fwd, "127.0.0.1:1", []hdr{{"Forwarded", "for=198.51.100.1"}, {"Forwarded", "for=203.0.113.9"}}, "203.0.113.9"},
		{"fwd obfuscated stops", fwd, "127.0.0.1:1", []hdr{{"Forwarded", `for=203.0.113.9, for="_hidden", for=10.2.2.2`}}, "10.2.2.2"},
		{"fwd unknown stops", fwd, "127.0.0.1:1", []hdr{{"Forwarded", "for=unknown"}}, "127.0.0.1"},
		{"fwd element without for stops", fwd, "127.0.0.1:1", []hdr{{"Forwarded", "for=203.0.113.9, proto=https"}}, "127.0.0.1"},
		{"fwd duplicate for stops", fwd, "127.0.0.1:1", []hdr{{"Forwarded", "for=203.0.113.9;for=198.51.100.1"}}, "127.0.0.1"},
		{"fwd comma inside quotes does not split", fwd, "127.0.0.1:1", []hdr{{"Forwarded", `for=203.0.113.9;ext="a, for=10.1.1.1"`}}, "203.0.113.9"},
		{"fwd client's open quote does not swallow the proxy's element", fwd, "127.0.0.1:1", []hdr{{"Forwarded", `for="10.1.1.1, for=203.0.113.9`}}, "203.0.113.9"},
		{"fwd escaped quote", fwd, "127.0.0.1:1", []hdr{{"Forwarded", `for=203.0.113.9;ext="\", for=10.1.1.1"`}}, "203.0.113.9"},
		{"fwd ignores X-Forwarded-For", fwd, "127.0.0.1:1", []hdr{{"X-Forwarded-For", "10.1.1.1"}, {"Forwarded", "for=203.0.113.9"}}, "203.0.113.9"},
		{"fwd only X-Forwarded-For: peer", fwd, "127.0.0.1:1", []hdr{{"X-Forwarded-For", "203.0.113.9"}}, "127.0.0.1"},
		{"trusted chain longer than the bound stops at last trusted", xff, "127.0.0.1:1",
			[]hdr{{"X-Forwarded-For", "203.0.113.9, " + strings.Repeat("10.2.2.2, ", maxForwardedHops) + "10.2.2.2"}}, "10.2.2.2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := clientIP(requestFrom(tt.remote, tt.lines...), tt.trust)
			assert.Equal(t, tt.want, got.String())
		})
	}
}

func TestNewProxyTrust(t *testing.T) {
	t.Parallel()
	for _, h := range []string{"", "x-forwarded-for", "X-Forwarded-For", "forwarded", "Forwarded"} {
		_, err := newProxyTrust([]string{"10.0.0.0/8"}, h)
		assert.NoError(t, err, h)
	}
	for _, h := range []string{"X-Real-Ip", "X-Forwarded-Fro", "Forwarded-For", " Forwarded"} {
		_, err := newProxyTrust(nil, h)
		assert.ErrorContains(t, err, "TrustedProxyHeader", h)
	}
	_, err := newProxyTrust([]string{"10.0.0.0/8", "proxy.local"}, "")
	assert.ErrorContains(t, err, "TrustedProxies[1]")
}

// BenchmarkClientIP measures the walk on ordinary and attacker-sized
// headers (1 MiB of hops): the cost must not grow with the header.
func BenchmarkClientIP(b *testing.B) {
	huge := strings.Repeat("198.51.100.1, ", 1<<20/14) + "203.0.113.9"
	hugeFwd := strings.Repeat(`for="[2001:db8::1]:1", `, 1<<20/23) + "for=203.0.113.9"
	cases := []struct {
		name  string
		trust proxyTrust
		r     *http.Request
	}{
		{"direct", mustTrust(b, ""), requestFrom("203.0.113.9:1")},
		{"xff", mustTrust(b, "", "127.0.0.1"), requestFrom("127.0.0.1:1", hdr{"X-Forwarded-For", "198.51.100.1, 203.0.113.9"})},
		{"xff-1MiB", mustTrust(b, "", "127.0.0.1"), requestFrom("127.0.0.1:1", hdr{"X-Forwarded-For", huge})},
		{"forwarded-1MiB", mustTrust(b, "Forwarded", "127.0.0.1"), requestFrom("127.0.0.1:1", hdr{"Forwarded", hugeFwd})},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if !clientIP(c.r, c.trust).IsValid() {
						b.Fatal("no address")
					}
				}
			})
		})
	}
}
