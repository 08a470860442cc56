package mcpauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/mcpauth/mcpauth/mcpauth/accesstoken"
)

// resourceMetadata is the Guard's metadata, checked and encoded once.
type resourceMetadata struct {
	url   string   // where the metadata is published (path-suffixed form)
	paths []string // the paths the handler answers
	body  []byte
}

// setOAuth prepares what Options.OAuth changes: the token cache, the
// longer credential bound, the metadata and the challenges' prefix.
func (g *Guard) setOAuth() error {
	g.maxCredential = maxCredentialLen
	g.bearer = `Bearer realm="` + g.opts.Realm + `"`
	if g.opts.OAuth == nil {
		return nil
	}
	m, err := newResourceMetadata(g.opts.OAuth.ResourceMetadata())
	if err != nil {
		return fmt.Errorf("mcpauth: Options.OAuth: %w", err)
	}
	g.metadata = m
	g.maxCredential = maxTokenLen
	g.bearer += `, resource_metadata="` + m.url + `"`
	g.tokens = newKeyCache(g.opts.CacheSize, 0)
	return nil
}

func newResourceMetadata(md accesstoken.ResourceMetadata) (*resourceMetadata, error) {
	u, err := url.Parse(md.Resource)
	switch {
	case md.Resource == "":
		return nil, errors.New("ResourceMetadata.Resource is required")
	case err != nil:
		return nil, fmt.Errorf("ResourceMetadata.Resource: %w", err)
	case u.Host == "" || !(u.Scheme == "https" || u.Scheme == "http" && isLoopback(u.Hostname())):
		return nil, fmt.Errorf("ResourceMetadata.Resource %q: need an absolute https URL (http only on a loopback host)", md.Resource)
	case u.Fragment != "" || u.RawQuery != "" || u.User != nil:
		return nil, fmt.Errorf("ResourceMetadata.Resource %q: no query, fragment or user info allowed", md.Resource)
	case len(md.AuthorizationServers) == 0:
		return nil, errors.New("ResourceMetadata.AuthorizationServers: at least one is required")
	}
	for _, s := range md.ScopesSupported {
		if s == "" || strings.ContainsAny(s, " \"\\") {
			return nil, fmt.Errorf("ResourceMetadata.ScopesSupported: %q is not a scope", s)
		}
	}
	md.AuthorizationServers = slices.Clone(md.AuthorizationServers)
	md.ScopesSupported = slices.Clone(md.ScopesSupported)
	md.BearerMethodsSupported = []string{"header"}
	body, err := json.Marshal(md)
	if err != nil {
		return nil, err
	}
	// RFC 9728 §3.1: the well-known path goes between the host and the
	// resource's path. Clients also try the root form; both are served.
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	m := &resourceMetadata{paths: []string{accesstoken.WellKnownPath}, body: append(body, '\n')}
	if path != "" {
		m.paths = append(m.paths, accesstoken.WellKnownPath+path)
	}
	m.url = u.Scheme + "://" + u.Host + m.paths[len(m.paths)-1]
	return m, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ResourceMetadataURL is the URL of this server's protected resource
// metadata, the resource_metadata of its challenges: the well-known path
// inserted before the resource's path (RFC 9728 §3.1). Empty without
// Options.OAuth.
func (g *Guard) ResourceMetadataURL() string {
	if g.metadata == nil {
		return ""
	}
	return g.metadata.url
}

// ResourceMetadataHandler serves the protected resource metadata (RFC
// 9728) at /.well-known/oauth-protected-resource and at the path-suffixed
// form (/.well-known/oauth-protected-resource/mcp for a resource
// https://host/mcp); mount it on both, outside Require:
//
//	mux.Handle(accesstoken.WellKnownPath, guard.ResourceMetadataHandler())
//	mux.Handle(accesstoken.WellKnownPath+"/", guard.ResourceMetadataHandler())
//
// GET and HEAD get the JSON document with "Access-Control-Allow-Origin: *"
// (browser-based clients read it across origins), OPTIONS a CORS
// preflight answer, other methods 405, other paths 404. Without
// Options.OAuth every request gets 404: a server that advertises metadata
// without an authorization server makes some clients ignore a configured
// API key.
func (g *Guard) ResourceMetadataHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := g.metadata
		if m == nil || !slices.Contains(m.paths, strings.TrimSuffix(r.URL.Path, "/")) {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		switch r.Method {
		case http.MethodGet, http.MethodHead:
		case http.MethodOptions:
			h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Mcp-Protocol-Version")
			w.WriteHeader(http.StatusNoContent)
			return
		default:
			h.Set("Allow", "GET, HEAD, OPTIONS")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "public, max-age=300")
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(m.body)
	})
}
