package mcpauth

import (
	"net/netip"
	"strings"
	"testing"
)

// FuzzClientIP checks the client address against what the request can
// prove: it is the TCP peer, or an address written in the one header the
// trusted proxies set; an untrusted peer's headers are never believed, nor
// the header the proxies do not set.
func FuzzClientIP(f *testing.F) {
	seeds := []struct {
		remote, xff1, xff2, fwd1, fwd2 string
		forwarded                      bool
	}{
		{"127.0.0.1:1", "203.0.113.9", "", "for=10.1.1.1", "", false},
		{"127.0.0.1:1", "10.1.1.1, 203.0.113.9", "10.2.2.2", "", "", false},
		{"127.0.0.1:1", "10.1.1.1", "203.0.113.9", "", "", false},
		{"127.0.0.1:1", "", "", "for=10.1.1.1, for=203.0.113.9", "for=10.2.2.2", true},
		{"[::1]:1", "10.1.1.1", "", `for="[2001:db8::7]:4711";proto=https`, "", true},
		{"127.0.0.1:1", "", "", `for="_hidden", for=unknown`, "", true},
		{"127.0.0.1:1", "", "", `for="10.1.1.1, for=203.0.113.9`, "", true},
		{"127.0.0.1:1", "", "", `for=203.0.113.9;ext="\", for=10.1.1.1"`, "", true},
		{"127.0.0.1:1", "", "", `for="10.1.1.\1"`, "", true},
		{"127.0.0.1:1", " 10.1.1.1 ,\t[2001:db8::7]:443 , ::ffff:10.3.3.3", "", "", "", false},
		{"127.0.0.1:1", "fe80::1%eth0, 203.0.113.9:99999, unknown,,", "", "", "", false},
		{"203.0.113.9:1", "10.1.1.1", "", "for=10.1.1.1", "", false},
		{"203.0.113.9:1", "10.1.1.1", "", "for=10.1.1.1", "", true},
		{"10.9.9.9:80", strings.Repeat("10.1.1.1, ", 40) + "10.2.2.2", "", "", "", false},
		{"pipe", "10.1.1.1", "", "", "", false},
		{"[::ffff:127.0.0.1]:1", "203.0.113.9", "", "", "", false},
	}
	for _, s := range seeds {
		f.Add(s.remote, s.xff1, s.xff2, s.fwd1, s.fwd2, s.forwarded)
	}
	trusted := []string{"127.0.0.1", "10.0.0.0/8", "::1", "2001:db8:ffff::/48"}
	xff, err := newProxyTrust(trusted, headerXForwardedFor)
	if err != nil {
		f.Fatal(err)
	}
	fwd, err := newProxyTrust(trusted, headerForwarded)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, remote, xff1, xff2, fwd1, fwd2 string, forwarded bool) {
		var lines []hdr
		for _, l := range []hdr{{"X-Forwarded-For", xff1}, {"Forwarded", fwd1}, {"X-Forwarded-For", xff2}, {"Forwarded", fwd2}} {
			if l.value != "" {
				lines = append(lines, l)
			}
		}
		r := requestFrom(remote, lines...)
		trust := xff
		if forwarded {
			trust = fwd
		}
		got := clientIP(r, trust)

		peer, ok := parsePeer(remote)
		switch {
		case !ok:
			if got.IsValid() {
				t.Fatalf("no peer address in %q, got %v", remote, got)
			}
			return
		case !inPrefixes(peer, trust.prefixes):
			if got != peer {
				t.Fatalf("untrusted peer %v: got %v from its headers", peer, got)
			}
			return
		case got == peer:
			return
		}
		if !got.IsValid() || got.Zone() != "" || got.Is4In6() {
			t.Fatalf("got %#v", got)
		}
		if !writtenIn(r.Header.Values(trust.header), got) {
			t.Fatalf("%v is neither the peer %v nor written in %s %q", got, peer, trust.header, r.Header.Values(trust.header))
		}
	})
}

// writtenIn reports whether a appears as an address (with or without a
// port, brackets, quotes or quoted-pair backslashes) in the header lines.
func writtenIn(lines []string, a netip.Addr) bool {
	for _, l := range lines {
		for _, v := range []string{l, strings.ReplaceAll(l, `\`, "")} {
			for _, tok := range strings.FieldsFunc(v, func(r rune) bool { return strings.ContainsRune(",;=\"[] \t", r) }) {
				cands := []string{tok}
				if host, _, ok := strings.Cut(tok, ":"); ok && strings.Count(tok, ":") == 1 {
					cands = append(cands, host)
				}
				for _, c := range cands {
					if b, err := netip.ParseAddr(c); err == nil && b.Unmap() == a {
						return true
					}
				}
			}
		}
	}
	return false
}
