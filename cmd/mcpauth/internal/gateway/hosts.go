package gateway

import (
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// hostCheck refuses requests whose Host (or Origin) names a host the
// gateway does not serve: a web page cannot reach a gateway on loopback
// through a DNS name it controls (DNS rebinding).
type hostCheck struct {
	any     bool
	allowed map[string]bool
}

var loopbackNames = []string{"localhost", "127.0.0.1", "::1"}

// newHostCheck follows Config.AllowedHosts: the names given ("*" for all),
// else loopback names only when listen is a loopback address, else all.
func newHostCheck(listen string, allowed []string) hostCheck {
	if len(allowed) == 0 {
		host, _, _ := net.SplitHostPort(listen)
		if a, err := netip.ParseAddr(host); (err == nil && a.IsLoopback()) || strings.EqualFold(host, "localhost") {
			allowed = loopbackNames
		} else {
			return hostCheck{any: true}
		}
	}
	h := hostCheck{allowed: make(map[string]bool, len(allowed))}
	for _, a := range allowed {
		if a == "*" {
			return hostCheck{any: true}
		}
		h.allowed[hostOnly(a)] = true
	}
	return h
}

// hostOnly lower-cases a host[:port] and drops the port and brackets.
func hostOnly(s string) string {
	if h, _, err := net.SplitHostPort(s); err == nil {
		s = h
	}
	return strings.ToLower(strings.Trim(s, "[]"))
}

func (h hostCheck) ok(r *http.Request) bool {
	if h.any {
		return true
	}
	if !h.allowed[hostOnly(r.Host)] {
		return false
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		if err != nil || !h.allowed[strings.ToLower(u.Hostname())] {
			return false
		}
	}
	return true
}

func (h hostCheck) wrap(next http.Handler) http.Handler {
	if h.any {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !h.ok(r) {
			writeRPCError(w, http.StatusForbidden, "", codeInvalidRequest, "mcpauth gateway: host not allowed")
			return
		}
		next.ServeHTTP(w, r)
	})
}
