package gateway

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/mcpauth/mcpauth/mcpauth/accesstoken"
	"github.com/mcpauth/mcpauth/mcpauth/oauth"
)

// maxClockSkew is oauth.New's bound on Options.ClockSkew.
const maxClockSkew = 5 * time.Minute

// DefaultOAuthHTTPTimeout is OAuthConfig.HTTPTimeout's default (and
// oauth.New's own); maxOAuthHTTPTimeout is the most validate accepts.
const (
	DefaultOAuthHTTPTimeout = 10 * time.Second
	maxOAuthHTTPTimeout     = time.Minute
)

// OAuthConfig makes the MCP endpoint accept OAuth access tokens beside API
// keys (module github.com/mcpauth/mcpauth/mcpauth/oauth; docs/oauth.md),
// and serves the protected resource metadata at
// /.well-known/oauth-protected-resource. Default off (no issuers): API keys
// only. Reloadable: a reload builds a new verifier from the new table, and
// re-reads the introspection client secret, so that rotating the secret,
// adding or removing an issuer or changing audiences needs no restart; a
// reload that changes neither the table nor the secret keeps the running
// verifier, with the keys it fetched and its introspection caches.
type OAuthConfig struct {
	// Resource is this MCP endpoint's public URL, as clients reach it
	// (https://mcp.example.com/mcp): the audience tokens must name (RFC
	// 8707). Required with issuers: https, or http on a loopback host.
	Resource string `toml:"resource"`
	// ScopesSupported are published in the metadata. Default none.
	ScopesSupported []string `toml:"scopes_supported"`
	// ResourceName and ResourceDocumentation are published in the
	// metadata. Default none.
	ResourceName          string `toml:"resource_name"`
	ResourceDocumentation string `toml:"resource_documentation"`
	// ClockSkew is the leeway on exp, nbf and iat. Default 30s, at most 5m.
	ClockSkew Duration `toml:"clock_skew"`
	// HTTPTimeout bounds each call to an issuer (a discovery document, its
	// keys, an introspection), from dialling to the end of the answer's
	// body: it is the verifier's http.Client.Timeout. Default 10s (0 means
	// the default); negative or over 1m is refused. A call that takes
	// longer fails, and a token that needed it gets 503, as when the
	// issuer is unreachable. One token may wait for more than one call in
	// turn: discovery tries two documents before the keys or the
	// introspection are asked for. An introspection also ends when net/http
	// notices that its request's client hung up: at once for a GET or
	// DELETE, but over HTTP/1.1 not for a POST (the gateway authenticates
	// before it reads the body), whose wait only this bounds.
	HTTPTimeout Duration `toml:"http_timeout"`
	// Issuers are the trusted authorization servers ([[oauth.issuers]]).
	Issuers []OAuthIssuerConfig `toml:"issuers"`
}

// OAuthIssuerConfig is one oauth.Issuer; defaults are that type's.
type OAuthIssuerConfig struct {
	// URL is the issuer identifier, exactly as tokens' "iss" spells it.
	URL string `toml:"url"`
	// JWKSURL is the signing keys' URL. Default: from discovery.
	JWKSURL string `toml:"jwks_url"`
	// Audiences are the accepted "aud" values. Default: oauth.resource.
	Audiences []string `toml:"audiences"`
	// Algorithms are the accepted JWS algorithms. Default the asymmetric
	// ones; "none" and HMAC are refused.
	Algorithms []string `toml:"algorithms"`
	// TokenTypes are the accepted "typ" headers. Default ["at+jwt"];
	// Auth0, Entra ID, Keycloak and Okta need ["JWT"].
	TokenTypes []string `toml:"token_types"`
	// UserClaim becomes the user ID. Default "sub".
	UserClaim string `toml:"user_claim"`
	// Introspection verifies opaque tokens (RFC 7662); at most one issuer.
	Introspection IntrospectionConfig `toml:"introspection"`
}

// IntrospectionConfig is oauth.Introspection; set when ClientID is. The
// client secret is read from a variable or a file, never from this file.
type IntrospectionConfig struct {
	// Endpoint is the introspection URL. Default: from discovery.
	Endpoint string `toml:"endpoint"`
	// ClientID is this resource server's client ID at the issuer.
	ClientID string `toml:"client_id"`
	// ClientSecretEnv names the variable holding the client secret;
	// ClientSecretFile is a file holding it instead. One is required.
	ClientSecretEnv  string `toml:"client_secret_env"`
	ClientSecretFile string `toml:"client_secret_file"`
	// CacheTTL (default 10s), NegativeCacheTTL (default 5s; negative
	// disables) and MaxConcurrent (default 8) are oauth.Introspection's.
	CacheTTL         Duration `toml:"cache_ttl"`
	NegativeCacheTTL Duration `toml:"negative_cache_ttl"`
	MaxConcurrent    int      `toml:"max_concurrent"`
}

func (c *IntrospectionConfig) enabled() bool { return *c != IntrospectionConfig{} }

// Enabled reports whether OAuth tokens are accepted.
func (c *OAuthConfig) Enabled() bool { return len(c.Issuers) > 0 || c.Resource != "" }

// validate checks the oauth table without reading a secret: each issuer
// is compiled by oauth.New on its own, so that its error names it.
func (c *OAuthConfig) validate(path string) error {
	if !c.Enabled() {
		return nil
	}
	if c.Resource == "" {
		return fieldErr("oauth.resource", "required with oauth.issuers: this endpoint's public URL, such as https://mcp.example.com%s", path)
	}
	if len(c.Issuers) == 0 {
		return fieldErr("oauth.issuers", "oauth.resource is set but no issuer is: add an [[oauth.issuers]] table")
	}
	if _, err := oauth.New(c.Resource, []oauth.Issuer{{URL: "https://issuer.invalid/"}}, nil); err != nil {
		return fieldErr("oauth.resource", "%s", strings.TrimPrefix(err.Error(), "mcpauth/oauth: resource: "))
	}
	if c.ClockSkew < 0 || c.ClockSkew.D() > maxClockSkew {
		return fieldErr("oauth.clock_skew", "must be between 0 and %v", maxClockSkew)
	}
	if c.HTTPTimeout < 0 || c.HTTPTimeout.D() > maxOAuthHTTPTimeout {
		return fieldErr("oauth.http_timeout", "must be between 0 (the default, %v) and %v", DefaultOAuthHTTPTimeout, maxOAuthHTTPTimeout)
	}
	seen := map[string]int{}
	introspecting := -1
	for i, is := range c.Issuers {
		field := fmt.Sprintf("oauth.issuers[%d]", i)
		if is.URL == "" {
			return fieldErr(field+".url", "required")
		}
		if j, dup := seen[is.URL]; dup {
			return fieldErr(field+".url", "%q is oauth.issuers[%d] too", is.URL, j)
		}
		seen[is.URL] = i
		in := &is.Introspection
		if in.enabled() {
			if introspecting >= 0 {
				return fieldErr(field+".introspection", "oauth.issuers[%d] introspects already: only one issuer may (an opaque token does not name its issuer)", introspecting)
			}
			introspecting = i
			switch {
			case in.ClientID == "":
				return fieldErr(field+".introspection.client_id", "required for introspection")
			case in.ClientSecretEnv == "" && in.ClientSecretFile == "":
				return fieldErr(field+".introspection.client_secret_env", "name the variable (or client_secret_file) holding the client secret")
			case in.ClientSecretEnv != "" && in.ClientSecretFile != "":
				return fieldErr(field+".introspection.client_secret_file", "client_secret_env is set too: name one")
			case in.CacheTTL < 0:
				return fieldErr(field+".introspection.cache_ttl", "must not be negative")
			case in.MaxConcurrent < 0:
				return fieldErr(field+".introspection.max_concurrent", "must not be negative")
			}
		}
		// A placeholder secret: Validate reads none, and oauth.New only
		// checks that one is set.
		if _, err := oauth.New(c.Resource, []oauth.Issuer{is.issuer(in.enabled(), "placeholder")}, nil); err != nil {
			msg := strings.TrimPrefix(err.Error(), "mcpauth/oauth: Issuers[0]")
			return fieldErr(field, "%s", strings.TrimPrefix(msg, ": "))
		}
	}
	return nil
}

// issuer is the oauth.Issuer of this table, with secret as the
// introspection client secret.
func (is *OAuthIssuerConfig) issuer(introspect bool, secret string) oauth.Issuer {
	out := oauth.Issuer{
		URL: is.URL, JWKSURL: is.JWKSURL, Audiences: is.Audiences, Algorithms: is.Algorithms,
		TokenTypes: is.TokenTypes, UserClaim: is.UserClaim,
	}
	if introspect {
		in := &is.Introspection
		out.Introspection = &oauth.Introspection{
			Endpoint: in.Endpoint, ClientID: in.ClientID, ClientSecret: secret,
			CacheTTL: in.CacheTTL.D(), NegativeCacheTTL: in.NegativeCacheTTL.D(), MaxConcurrent: in.MaxConcurrent,
		}
	}
	return out
}

// clientSecret reads the introspection client secret. Errors name the
// variable or file, never the secret.
func (in *IntrospectionConfig) clientSecret(field string, getenv func(string) string) (string, error) {
	if in.ClientSecretFile != "" {
		b, err := os.ReadFile(in.ClientSecretFile)
		if err != nil {
			return "", fieldErr(field+".client_secret_file", "%v", err)
		}
		s := strings.TrimSpace(string(b))
		if s == "" {
			return "", fieldErr(field+".client_secret_file", "%s is empty", in.ClientSecretFile)
		}
		return s, nil
	}
	s := strings.TrimSpace(getenv(in.ClientSecretEnv))
	if s == "" {
		return "", fieldErr(field+".client_secret_env", "$%s is not set", in.ClientSecretEnv)
	}
	return s, nil
}

// runningVerifier is a verifier with what it was built from: a copy of the
// oauth table and a digest of the client secret read for it (the secret
// itself is not kept here, so nothing that prints this can show it).
type runningVerifier struct {
	v      *oauth.Verifier
	table  OAuthConfig
	secret [sha256.Size]byte
}

// verifier builds the OAuth verifier of a validated configuration, reading
// the introspection client secret (at start, prev nil, and on each
// reload). It returns prev itself when neither the table nor the secret
// changed, so that a reload keeps the running verifier's fetched keys and
// caches; else a new verifier, which fetches nothing until the first
// token. nil when oauth is off. Errors name the field, never the secret.
func (c *OAuthConfig) verifier(prev *runningVerifier, getenv func(string) string, log *slog.Logger) (*runningVerifier, error) {
	if !c.Enabled() {
		return nil, nil
	}
	issuers := make([]oauth.Issuer, len(c.Issuers))
	sum := sha256.New()
	for i := range c.Issuers {
		is := &c.Issuers[i]
		secret := ""
		if is.Introspection.enabled() {
			var err error
			if secret, err = is.Introspection.clientSecret(fmt.Sprintf("oauth.issuers[%d].introspection", i), getenv); err != nil {
				return nil, err
			}
		}
		// Length-prefixed: the digest of a list, not of a concatenation.
		_ = binary.Write(sum, binary.BigEndian, uint64(len(secret)))
		sum.Write([]byte(secret))
		issuers[i] = is.issuer(is.Introspection.enabled(), secret)
	}
	rv := &runningVerifier{table: c.clone()}
	sum.Sum(rv.secret[:0])
	if prev != nil && prev.secret == rv.secret && reflect.DeepEqual(prev.table, rv.table) {
		return prev, nil
	}
	v, err := oauth.New(c.Resource, issuers, c.options(log))
	if err != nil {
		return nil, fieldErr("oauth", "%s", strings.TrimPrefix(err.Error(), "mcpauth/oauth: "))
	}
	rv.v = v
	return rv, nil
}

// clone is a deep copy of c: a running verifier's table does not change
// with the Config it came from.
func (c *OAuthConfig) clone() OAuthConfig {
	out := *c
	out.ScopesSupported = slices.Clone(c.ScopesSupported)
	out.Issuers = slices.Clone(c.Issuers)
	for i := range out.Issuers {
		is := &out.Issuers[i]
		is.Audiences, is.Algorithms, is.TokenTypes = slices.Clone(is.Audiences), slices.Clone(is.Algorithms), slices.Clone(is.TokenTypes)
	}
	return out
}

// options are the oauth.Options of the table: its client times out after
// HTTPTimeout (DefaultOAuthHTTPTimeout when 0).
func (c *OAuthConfig) options(log *slog.Logger) *oauth.Options {
	timeout := c.HTTPTimeout.D()
	if timeout == 0 {
		timeout = DefaultOAuthHTTPTimeout
	}
	return &oauth.Options{
		ScopesSupported: c.ScopesSupported, ResourceName: c.ResourceName, ResourceDocumentation: c.ResourceDocumentation,
		ClockSkew: c.ClockSkew.D(), HTTPClient: &http.Client{Timeout: timeout}, Logger: log,
	}
}

// metadataPaths are where the protected resource metadata is mounted.
var metadataPaths = []string{accesstoken.WellKnownPath, accesstoken.WellKnownPath + "/"}
