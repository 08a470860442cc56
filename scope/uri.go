package scope

import (
	"path"
	"strings"
)

// normalizeURI returns the form of a resource URI that rules and blocks are
// matched against, so that "file:///etc/%70asswd", "file:///reports/../etc/passwd"
// and "file:////etc//passwd?x" cannot dodge a pattern: percent-escapes are
// decoded (repeatedly, for double encoding), the query and fragment dropped, and the path cleaned (dot segments
// resolved, repeated slashes collapsed, backslashes read as slashes). URIs
// that need none of this are returned as is, without allocating.
func normalizeURI(u string) string {
	if !strings.ContainsAny(u, "%?#\\") && !strings.Contains(u, "/.") && strings.Count(u, "//") <= 1 && !strings.HasSuffix(u, "/") {
		return u
	}
	// Decode until nothing changes (at most 4 rounds), so that a server
	// that decodes twice cannot be reached with "%2570asswd".
	for range 4 {
		d := percentDecode(u)
		if d == u {
			break
		}
		u = d
	}
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		u = u[:i]
	}
	u = strings.ReplaceAll(u, "\\", "/")
	prefix, rest := "", u
	if i := strings.Index(u, "://"); i >= 0 {
		// Keep scheme://authority; clean what follows.
		j := strings.IndexByte(u[i+3:], '/')
		if j < 0 {
			return u
		}
		prefix, rest = u[:i+3+j], u[i+3+j:]
	}
	if rest == "" {
		return prefix
	}
	cleaned := path.Clean(rest)
	if strings.HasPrefix(rest, "/") && !strings.HasPrefix(cleaned, "/") {
		cleaned = "/" + cleaned
	}
	return prefix + cleaned
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
