package mcpauth

import (
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/mcpauth/mcpauth/store"
)

// The forwarding headers Options.TrustedProxyHeader may name.
const (
	headerXForwardedFor = "X-Forwarded-For"
	headerForwarded     = "Forwarded"
)

// maxForwardedHops bounds how many hops of the forwarding header are walked
// past trusted proxies. A chain of trusted proxies longer than this ends the
// walk at the last trusted hop, as an unreadable hop does.
const maxForwardedHops = 32

// proxyTrust says whose word is taken about the client address: the trusted
// proxies and the one header they set (canonical form).
type proxyTrust struct {
	prefixes []netip.Prefix
	header   string
}

// newProxyTrust parses Options.TrustedProxies and Options.TrustedProxyHeader
// (empty means X-Forwarded-For).
func newProxyTrust(proxies []string, header string) (proxyTrust, error) {
	t := proxyTrust{header: http.CanonicalHeaderKey(header)}
	switch t.header {
	case "":
		t.header = headerXForwardedFor
	case headerXForwardedFor, headerForwarded:
	default:
		return proxyTrust{}, fmt.Errorf("mcpauth: TrustedProxyHeader %q: want %q or %q", header, headerXForwardedFor, headerForwarded)
	}
	for i, c := range proxies {
		p, err := store.ParseCIDR(c)
		if err != nil {
			return proxyTrust{}, fmt.Errorf("mcpauth: TrustedProxies[%d]: %q is not an IP address or CIDR prefix", i, c)
		}
		t.prefixes = append(t.prefixes, p)
	}
	return t, nil
}

// clientIP returns the address of the client that sent r. It is the TCP
// peer (r.RemoteAddr) unless that peer is a trusted proxy; then only the
// header the trusted proxies set (t.header, X-Forwarded-For or Forwarded;
// several lines of it are one list, in order) is read, from the right (the
// hop the nearest proxy appended) leftwards, skipping trusted proxies: the
// first address that is not a trusted proxy is the client. A hop that is
// not an address ("unknown", an obfuscated "_hidden", garbage, an empty
// element) or a trusted chain longer than maxForwardedHops ends the walk at
// the last trusted address. The other forwarding header, and every header
// from an untrusted peer, is ignored: clients can send any of them. It
// returns the zero Addr if RemoteAddr is not an address.
func clientIP(r *http.Request, t proxyTrust) netip.Addr {
	addr, ok := parsePeer(r.RemoteAddr)
	if !ok {
		return netip.Addr{}
	}
	if !inPrefixes(addr, t.prefixes) {
		return addr
	}
	lines := r.Header[t.header]
	if len(lines) == 0 {
		return addr
	}
	var buf [maxForwardedHops]string
	hops := lastHops(buf[:0], lines, t.header == headerForwarded)
	for _, hop := range hops {
		a, ok := parseHop(hop)
		if !ok {
			return addr // not an address: stop at the last one we trust
		}
		if !inPrefixes(a, t.prefixes) {
			return a
		}
		addr = a
	}
	return addr
}

// parsePeer parses r.RemoteAddr ("ip:port", or a bare ip).
func parsePeer(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	return netip.Addr{}, false
}

// lastHops appends to dst the last cap(dst) hops of the forwarding header
// lines, nearest (rightmost) first. For Forwarded a hop is the for= value of
// an element ("" if the element has none, or has it twice); for
// X-Forwarded-For it is the list element with surrounding spaces removed.
// It never reads more of the header than those hops.
func lastHops(dst []string, lines []string, forwarded bool) []string {
	for i := len(lines) - 1; i >= 0 && len(dst) < cap(dst); i-- {
		if forwarded {
			dst = lastForwardedFors(dst, lines[i])
			continue
		}
		line := lines[i]
		for len(dst) < cap(dst) {
			j := strings.LastIndexByte(line, ',')
			dst = append(dst, strings.Trim(line[j+1:], " \t"))
			if j < 0 {
				break
			}
			line = line[:j]
		}
	}
	return dst
}

// lastForwardedFors appends the for= values of the last elements of one
// Forwarded line (RFC 7239: elements separated by commas, pairs by
// semicolons, values tokens or quoted strings), rightmost first, until dst
// is full. Commas inside quoted strings do not split. The line is scanned
// from the right, so that a client's unbalanced quote on the left cannot
// swallow the elements its proxies appended.
func lastForwardedFors(dst []string, line string) []string {
	end, quoted := len(line), false
	for i := len(line) - 1; i >= -1 && len(dst) < cap(dst); i-- {
		if i >= 0 {
			switch line[i] {
			case '"':
				if !escapedAt(line, i) {
					quoted = !quoted
				}
				continue
			case ',':
				if quoted {
					continue
				}
			default:
				continue
			}
		}
		dst = append(dst, forwardedFor(line[i+1:end]))
		end = i
	}
	return dst
}

// escapedAt reports whether the quote at s[i] is a quoted-pair (preceded
// by an odd number of backslashes).
func escapedAt(s string, i int) bool {
	n := 0
	for j := i - 1; j >= 0 && s[j] == '\\'; j-- {
		n++
	}
	return n%2 == 1
}

// forwardedFor returns the for= value of one Forwarded element, unquoted,
// or "" if it has none, has it twice, or is not well formed.
func forwardedFor(elem string) string {
	var value string
	found := false
	for len(elem) > 0 {
		pair, rest := splitPair(elem)
		elem = rest
		k, v, ok := strings.Cut(strings.Trim(pair, " \t"), "=")
		if !ok {
			if strings.Trim(pair, " \t") == "" {
				continue // tolerate empty pairs ("a=b;;c=d")
			}
			return ""
		}
		if !strings.EqualFold(k, "for") {
			continue
		}
		if found {
			return "" // a parameter occurs at most once per element
		}
		found = true
		if strings.HasPrefix(v, `"`) {
			u, ok := unquote(v)
			if !ok {
				return ""
			}
			v = u
		}
		value = v
	}
	return value
}

// splitPair cuts the first ;-separated pair off s, respecting quotes.
func splitPair(s string) (pair, rest string) {
	quoted, escaped := false, false
	for i := range len(s) {
		c := s[i]
		switch {
		case escaped:
			escaped = false
		case quoted && c == '\\':
			escaped = true
		case c == '"':
			quoted = !quoted
		case !quoted && c == ';':
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}

// unquote decodes an RFC 9110 quoted-string that is the whole of s.
func unquote(s string) (string, bool) {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return "", false
	}
	s = s[1 : len(s)-1]
	if !strings.ContainsAny(s, `\"`) {
		return s, true
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			return "", false
		case '\\':
			i++
			if i == len(s) {
				return "", false
			}
		}
		b.WriteByte(s[i])
	}
	return b.String(), true
}

// parseHop parses one hop: "203.0.113.7", "203.0.113.7:8080",
// "[2001:db8::1]", "[2001:db8::1]:443" or a bare "2001:db8::1" (as
// X-Forwarded-For carries it). A port may be an RFC 7239 obfuscated one
// ("_p1"). Zoned addresses, names, "unknown" and obfuscated identifiers
// are not addresses.
func parseHop(s string) (netip.Addr, bool) {
	var a netip.Addr
	var err error
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return netip.Addr{}, false
		}
		if rest := s[end+1:]; rest != "" && (rest[0] != ':' || !validPort(rest[1:])) {
			return netip.Addr{}, false
		}
		if a, err = netip.ParseAddr(s[1:end]); err != nil || !a.Is6() {
			return netip.Addr{}, false
		}
	case strings.Count(s, ":") == 1:
		host, port, _ := strings.Cut(s, ":")
		if !validPort(port) {
			return netip.Addr{}, false
		}
		if a, err = netip.ParseAddr(host); err != nil || !a.Is4() {
			return netip.Addr{}, false
		}
	default:
		if a, err = netip.ParseAddr(s); err != nil {
			return netip.Addr{}, false
		}
	}
	if a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// validPort reports whether s is a port number or an RFC 7239 obfuscated
// port ("_" followed by letters, digits, ".", "_" or "-").
func validPort(s string) bool {
	if strings.HasPrefix(s, "_") {
		if len(s) == 1 {
			return false
		}
		for i := 1; i < len(s); i++ {
			c := s[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
				return false
			}
		}
		return true
	}
	if len(s) == 0 || len(s) > 5 {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	n, err := strconv.Atoi(s)
	return err == nil && n <= 65535
}

func inPrefixes(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientIP returns the client address of r as the Guard sees it: the TCP
// peer, or the address TrustedProxies vouch for in TrustedProxyHeader. The
// zero Addr if it cannot tell. Give it to keyadmin's HandlerOptions.ClientIP
// so that key-change audit events carry the same address as requests.
func (g *Guard) ClientIP(r *http.Request) netip.Addr { return clientIP(r, g.trusted) }
