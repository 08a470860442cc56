package scope

import (
	"strconv"
	"strings"
)

// canonURI is what canonicalURI makes of a resource URI.
type canonURI struct {
	// uri is the canonical form that rules and blocklists are matched
	// against; "" when refused.
	uri string
	// stable is the length of the prefix of uri that no ".." segment
	// climbed into: a rule whose literal prefix is longer than stable was
	// reached by climbing out of it and back in.
	stable int
	// noPort is uri without its port, set only when an explicit port of a
	// scheme without a known default was kept; blocklists are also matched
	// against it.
	noPort string
	// refusal says why the URI cannot be decided on (it is then denied);
	// "" when uri is valid.
	refusal string
}

// defaultPorts are the schemes whose default port is dropped; any other
// port of these schemes is kept.
var defaultPorts = map[string]string{"http": "80", "https": "443", "ws": "80", "wss": "443"}

// maxDecodeRounds bounds repeated percent-decoding; a URI still encoded
// after that many rounds is refused.
const maxDecodeRounds = 4

// canonicalURI returns the form of a resource URI that rules and blocks are
// matched against, or the reason it is refused:
//
//   - control bytes (NUL, CR, LF, DEL, ...) raw or percent-encoded, a
//     missing scheme, user information ("x@host"), a malformed or non-ASCII
//     host and a path with more than maxDecodeRounds levels of encoding are
//     refused;
//   - the query and fragment are dropped; scheme and host are lower-cased;
//     default ports (http 80, https 443, ws 80, wss 443) and empty ports
//     are dropped; any other port of those schemes is kept; a port of any
//     other scheme is kept only when ports names the scheme://host:port
//     (a rule lists it), else refused, because servers disagree on whether
//     "docs://users:80/x" is "docs://users/x";
//   - the host and path are percent-decoded until nothing changes, so
//     "%252e%252e" is "..";
//   - in the path, backslashes are slashes, runs of slashes are one, "."
//     segments are removed and ".." segments remove the one before them; a
//     ".." with nothing left to remove (climbing above the root) is
//     refused; a trailing slash is dropped (the root "/" stays); "?" and "#"
//     that were percent-encoded are written back as %3F and %23 so that
//     the result is its own canonical form.
//
// ports may be nil. A URI already in canonical form is returned as is,
// without allocating.
func canonicalURI(u string, ports map[string]bool) canonURI {
	if isCanonical(u) {
		return canonURI{uri: u, stable: len(u)}
	}
	return canonicalizeSlow(u, ports)
}

// isCanonical reports whether u is its own canonical form, by a single scan
// that does not allocate.
func isCanonical(u string) bool {
	i := 0
	for ; i < len(u); i++ {
		c := u[i]
		if c == ':' {
			break
		}
		if !(c >= 'a' && c <= 'z' || i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	if i == 0 || i == len(u) {
		return false
	}
	rest := u[i+1:]
	if strings.HasPrefix(rest, "//") {
		end := strings.IndexByte(rest[2:], '/')
		if end < 0 {
			end = len(rest) - 2
		}
		for j := 2; j < 2+end; j++ {
			c := rest[j]
			if c <= ' ' || c >= 0x7f || c >= 'A' && c <= 'Z' || strings.IndexByte("@:%[]\\?#", c) >= 0 {
				return false
			}
		}
		rest = rest[2+end:]
	}
	if rest == "" || rest == "/" {
		return true
	}
	if rest[len(rest)-1] == '/' {
		return false
	}
	segStart := 0
	for j := 0; j <= len(rest); j++ {
		if j < len(rest) {
			c := rest[j]
			if c < ' ' || c == 0x7f || c == '%' || c == '\\' || c == '?' || c == '#' {
				return false
			}
			if c != '/' {
				continue
			}
		}
		seg := rest[segStart:j]
		if (seg == "" && j > 0) || seg == "." || seg == ".." {
			return false
		}
		segStart = j + 1
	}
	return true
}

func refuse(reason string) canonURI { return canonURI{refusal: reason} }

func canonicalizeSlow(u string, ports map[string]bool) canonURI {
	if hasControl(u) {
		return refuse("it contains a control character")
	}
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		u = u[:i]
	}
	colon := strings.IndexByte(u, ':')
	if colon <= 0 || !validScheme(u[:colon]) {
		return refuse("it is not an absolute URI (no scheme)")
	}
	scheme, rest := strings.ToLower(u[:colon]), u[colon+1:]
	var b strings.Builder
	b.Grow(len(u) + 8)
	b.WriteString(scheme)
	b.WriteByte(':')
	noPortAt, portLen := -1, 0
	if len(rest) >= 2 && (rest[0] == '/' || rest[0] == '\\') && (rest[1] == '/' || rest[1] == '\\') {
		if rest[:2] != "//" {
			return refuse("it has backslashes where its host begins")
		}
		end := strings.IndexByte(rest[2:], '/')
		if end < 0 {
			end = len(rest) - 2
		}
		authority := rest[2 : 2+end]
		rest = rest[2+end:]
		host, port, why := splitAuthority(authority)
		if why != "" {
			return refuse(why)
		}
		b.WriteString("//")
		b.WriteString(host)
		if port != "" && port != defaultPorts[scheme] {
			if _, known := defaultPorts[scheme]; !known && !ports[scheme+"://"+host+":"+port] {
				return refuse("it names port " + port + ", which this server's policy does not list for scheme " + strconv.Quote(scheme) + "; send it without the port")
			}
			if _, known := defaultPorts[scheme]; !known {
				noPortAt, portLen = b.Len(), 1+len(port)
			}
			b.WriteByte(':')
			b.WriteString(port)
		}
	}
	prefixLen := b.Len()
	p, ok := decodeFully(rest)
	if !ok {
		return refuse("it is percent-encoded more than " + strconv.Itoa(maxDecodeRounds) + " times")
	}
	if hasControl(p) {
		return refuse("it contains an encoded control character")
	}
	minOut, ok := writeCleanPath(&b, p)
	if !ok {
		return refuse(`its path climbs above the root with ".." segments`)
	}
	out := b.String()
	c := canonURI{uri: out, stable: min(prefixLen+minOut, len(out))}
	if noPortAt >= 0 {
		c.noPort = out[:noPortAt] + out[noPortAt+portLen:]
	}
	return c
}

// splitAuthority splits host[:port], decodes and lower-cases the host, and
// says why the authority is refused.
func splitAuthority(a string) (host, port, why string) {
	if strings.IndexByte(a, '@') >= 0 {
		return "", "", "it contains user information (user@host); send the URI without it"
	}
	if strings.IndexByte(a, '\\') >= 0 {
		return "", "", "its host contains a backslash"
	}
	if strings.HasPrefix(a, "[") {
		end := strings.IndexByte(a, ']')
		if end < 0 {
			return "", "", "its IPv6 host has no closing bracket"
		}
		host = strings.ToLower(a[:end+1])
		for i := 1; i < end; i++ {
			c := host[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c == ':' || c == '.') {
				return "", "", "its IPv6 host is not a plain IPv6 address"
			}
		}
		a = a[end+1:]
		if a != "" && a[0] != ':' {
			return "", "", "it has characters after its IPv6 host"
		}
		port = strings.TrimPrefix(a, ":")
	} else {
		h, pt, _ := strings.Cut(a, ":")
		port = pt
		d, ok := decodeFully(h)
		if !ok {
			return "", "", "its host is percent-encoded too many times"
		}
		for i := range len(d) {
			c := d[i]
			switch {
			case c >= 0x80:
				return "", "", "its host is not ASCII; send it in punycode (xn--) form"
			case c <= ' ' || c == 0x7f || strings.IndexByte("/\\?#@:[]%", c) >= 0:
				return "", "", "its host contains " + strconv.QuoteRune(rune(c))
			}
		}
		host = strings.ToLower(d)
	}
	for i := range len(port) {
		if port[i] < '0' || port[i] > '9' {
			return "", "", "its port is not a number"
		}
	}
	if t := strings.TrimLeft(port, "0"); t != "" {
		port = t
	} else if port != "" {
		port = "0"
	}
	return host, port, ""
}

func validScheme(s string) bool {
	for i := range len(s) {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}

func hasControl(s string) bool {
	for i := range len(s) {
		if s[i] < ' ' || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// decodeFully percent-decodes s until nothing changes, so that a server
// that decodes twice cannot be reached with "%2570asswd". It reports false
// when s is still encoded after maxDecodeRounds rounds.
func decodeFully(s string) (string, bool) {
	for range maxDecodeRounds {
		d := percentDecode(s)
		if d == s {
			return s, true
		}
		s = d
	}
	return s, percentDecode(s) == s
}

// writeCleanPath writes the dot-segment-free form of the decoded path p to
// b (backslashes read as slashes, empty segments dropped, no trailing
// slash but for the root). It returns the smallest length the written path
// had after a ".." removed a segment, plus one for the separator that
// follows (len of the whole path when there was no ".."), and false when a
// ".." had nothing to remove.
func writeCleanPath(b *strings.Builder, p string) (minOut int, ok bool) {
	if p == "" {
		return 0, true
	}
	start := b.Len()
	rooted := p[0] == '/' || p[0] == '\\'
	minOut = -1
	// Segments are written as "/seg"; a relative path drops its first
	// slash at the end. Popping truncates at the last slash.
	buf := make([]byte, 0, len(p)+1)
	for p != "" {
		i := strings.IndexAny(p, "/\\")
		seg := p
		if i >= 0 {
			seg, p = p[:i], p[i+1:]
		} else {
			p = ""
		}
		switch seg {
		case "", ".":
		case "..":
			j := lastSlash(buf)
			if j < 0 {
				return 0, false
			}
			buf = buf[:j]
			if minOut < 0 || len(buf) < minOut {
				minOut = len(buf)
			}
		default:
			buf = append(buf, '/')
			for k := range len(seg) {
				switch c := seg[k]; c {
				case '?':
					buf = append(buf, "%3F"...)
				case '#':
					buf = append(buf, "%23"...)
				default:
					buf = append(buf, c)
				}
			}
		}
	}
	if !rooted && len(buf) > 0 {
		buf = buf[1:]
		if minOut == 0 {
			// Climbed back to the start of a relative path: nothing of
			// it is stable, not even a separator.
			b.Write(buf)
			return 0, true
		}
		if minOut > 0 {
			minOut--
		}
	}
	if rooted && len(buf) == 0 {
		buf = append(buf, '/')
	}
	b.Write(buf)
	if minOut < 0 {
		return b.Len() - start, true
	}
	return minOut + 1, true
}

func lastSlash(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '/' {
			return i
		}
	}
	return -1
}

func percentDecode(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && unhex(s[i+1]) >= 0 && unhex(s[i+2]) >= 0 {
			b = append(b, byte(unhex(s[i+1])<<4|unhex(s[i+2])))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return string(b)
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c - 'a' + 10)
	case c >= 'A' && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}
