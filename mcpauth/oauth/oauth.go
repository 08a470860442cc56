package oauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/mcpauth/mcpauth/mcpauth/accesstoken"
)

// Defaults for Options, stated on each field.
const (
	defaultClockSkew        = 30 * time.Second
	maxClockSkew            = 5 * time.Minute
	defaultRefreshFloor     = 30 * time.Second
	defaultKeysMaxAge       = time.Hour
	defaultHTTPTimeout      = 10 * time.Second
	fetchTimeout            = time.Minute // a keys fetch, whatever HTTPClient's Timeout
	defaultIntrospectionTTL = 10 * time.Second
	defaultNegativeTTL      = 5 * time.Second
	defaultMaxIntrospecting = 8
	maxDocumentBytes        = 1 << 20
)

// DefaultAlgorithms are the JWS algorithms accepted when Issuer.Algorithms
// is empty: the asymmetric ones. "none" and the HMAC algorithms are never
// accepted (with HMAC, anyone holding the issuer's public key could sign).
var DefaultAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// DefaultTokenTypes are the JWT "typ" header values accepted when
// Issuer.TokenTypes is empty: RFC 9068's access token type, which keeps
// ID tokens and other JWTs of the issuer out.
var DefaultTokenTypes = []string{"at+jwt"}

// Issuer is one trusted authorization server.
type Issuer struct {
	// URL is the issuer identifier, exactly as tokens' "iss" claim and the
	// discovery document's "issuer" spell it (Auth0's ends with "/").
	// Required: https, or http on a loopback host (tests).
	URL string
	// JWKSURL is where the issuer publishes its signing keys. Default:
	// the jwks_uri of its discovery document (OpenID Connect Discovery
	// at URL + "/.well-known/openid-configuration", else RFC 8414
	// metadata), fetched on first use.
	JWKSURL string
	// Audiences are the "aud" values accepted (RFC 8707: the resource the
	// token was requested for). Default: the Verifier's resource, and the
	// same without a trailing "/" or with one. Some issuers put an API
	// identifier there instead (Auth0's API audience, Entra's application
	// ID URI): name it here.
	Audiences []string
	// Algorithms are the JWS algorithms accepted from this issuer. Default
	// DefaultAlgorithms. "none" and HS256/384/512 make New fail.
	Algorithms []string
	// TokenTypes are the accepted "typ" headers, compared without case and
	// without an "application/" prefix; "" accepts a token without typ.
	// Default DefaultTokenTypes ("at+jwt"). Issuers whose access tokens
	// say "JWT" (Auth0, Entra ID, Keycloak, Okta) need {"JWT"}; their ID
	// tokens are then kept out by the audience check alone.
	TokenTypes []string
	// UserClaim is the claim whose value becomes Principal.UserID.
	// Default "sub".
	UserClaim string
	// Introspection, if set, verifies opaque (non-JWT) access tokens from
	// this issuer by RFC 7662 introspection. At most one issuer may have
	// it: an opaque token does not say where it comes from.
	Introspection *Introspection
}

// Introspection configures RFC 7662 token introspection.
type Introspection struct {
	// Endpoint is the introspection URL. Default: the issuer's discovery
	// document's introspection_endpoint.
	Endpoint string
	// ClientID and ClientSecret authenticate this resource server to the
	// endpoint (HTTP Basic, RFC 7662 §2.1). Required.
	ClientID, ClientSecret string
	// CacheTTL is how long an active answer is reused for the same token;
	// never past the token's exp. A token revoked at the issuer keeps
	// working here for up to this long. Default 10s.
	CacheTTL time.Duration
	// NegativeCacheTTL is how long an inactive answer is remembered, so that
	// a client retrying a dead token does not reach the issuer each time.
	// Default 5s; negative disables it.
	NegativeCacheTTL time.Duration
	// MaxConcurrent bounds introspection calls in flight; further requests
	// wait (until their context ends). Default 8.
	MaxConcurrent int
	// UnsafeAcceptMissingAudience accepts an active answer without "aud".
	// Default false: the answer must name this resource (RFC 8707), or a
	// token issued for another server would work here.
	UnsafeAcceptMissingAudience bool
}

// Options configures a Verifier. The zero value (or nil) is secure.
type Options struct {
	// ScopesSupported are the scopes published in the protected resource
	// metadata (what clients may ask for). Default none.
	ScopesSupported []string
	// ResourceName and ResourceDocumentation are published in the
	// metadata. Default none.
	ResourceName, ResourceDocumentation string
	// ClockSkew is the leeway on exp, nbf and iat. Default 30s; at most 5
	// minutes (New fails past it).
	ClockSkew time.Duration
	// KeysRefreshFloor is the least time between two fetches of one
	// issuer's keys (or discovery document). A token with a key ID the
	// issuer did not publish triggers a fetch, at most this often, so a
	// flood of unknown key IDs costs one fetch per floor, and a key the
	// issuer rotated in is picked up within it. Default 30s.
	KeysRefreshFloor time.Duration
	// KeysMaxAge is how long fetched keys are used before they are fetched
	// again on the next token (a key the issuer withdrew stops working
	// within it). When that fetch fails, the old keys keep working.
	// Default 1h.
	KeysMaxAge time.Duration
	// HTTPClient fetches discovery documents and keys, and calls the
	// introspection endpoint. Default: a client with a 10s timeout. A
	// fetch of keys outlives the request that started it (its client
	// hanging up does not end it for the requests waiting on it), for at
	// most the client's Timeout and never more than a minute; requests
	// that wait on it give up when their own context ends. Introspection
	// and discovery for it run on the request's context.
	HTTPClient *http.Client
	// Logger receives fetch failures. Default slog.Default().
	Logger *slog.Logger
}

// Verifier verifies OAuth access tokens for one resource: JWTs (RFC 9068)
// against their issuer's published keys, opaque tokens by introspection.
// Give it to mcpauth.Options.OAuth. It is safe for concurrent use and
// starts no goroutines: keys are fetched on demand.
type Verifier struct {
	resource string
	issuers  map[string]*issuer
	opaque   *issuer // the issuer that introspects, or nil
	metadata accesstoken.ResourceMetadata
	skew     time.Duration
}

var _ accesstoken.Verifier = (*Verifier)(nil)

// New returns a Verifier of tokens for resource (this MCP server's
// canonical URL, the audience tokens must name) from the given issuers.
// opts may be nil. It fails, naming the field, on a bad URL, an algorithm
// that is not asymmetric, a skew over 5 minutes, or more than one issuer
// with Introspection. Nothing is fetched until the first token.
func New(resource string, issuers []Issuer, opts *Options) (*Verifier, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if err := checkURL(resource); err != nil {
		return nil, fmt.Errorf("mcpauth/oauth: resource: %w", err)
	}
	if len(issuers) == 0 {
		return nil, errors.New("mcpauth/oauth: at least one Issuer is required")
	}
	switch {
	case o.ClockSkew == 0:
		o.ClockSkew = defaultClockSkew
	case o.ClockSkew < 0 || o.ClockSkew > maxClockSkew:
		return nil, fmt.Errorf("mcpauth/oauth: Options.ClockSkew %v: must be between 0 and %v", o.ClockSkew, maxClockSkew)
	}
	if o.KeysRefreshFloor <= 0 {
		o.KeysRefreshFloor = defaultRefreshFloor
	}
	if o.KeysMaxAge <= 0 {
		o.KeysMaxAge = defaultKeysMaxAge
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: defaultHTTPTimeout}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	v := &Verifier{resource: resource, issuers: make(map[string]*issuer, len(issuers)), skew: o.ClockSkew}
	v.metadata = accesstoken.ResourceMetadata{
		Resource:              resource,
		ScopesSupported:       slices.Clone(o.ScopesSupported),
		ResourceName:          o.ResourceName,
		ResourceDocumentation: o.ResourceDocumentation,
	}
	for i, is := range issuers {
		iss, err := newIssuer(is, resource, &o)
		if err != nil {
			return nil, fmt.Errorf("mcpauth/oauth: Issuers[%d]: %w", i, err)
		}
		if _, dup := v.issuers[is.URL]; dup {
			return nil, fmt.Errorf("mcpauth/oauth: Issuers[%d]: %q is listed twice", i, is.URL)
		}
		if iss.introspection != nil {
			if v.opaque != nil {
				return nil, fmt.Errorf("mcpauth/oauth: Issuers[%d].Introspection: only one issuer may introspect (an opaque token does not name its issuer)", i)
			}
			v.opaque = iss
		}
		v.issuers[is.URL] = iss
		v.metadata.AuthorizationServers = append(v.metadata.AuthorizationServers, is.URL)
	}
	return v, nil
}

// ResourceMetadata returns the protected resource metadata (RFC 9728) of
// the Verifier's resource: the resource, its issuers as authorization
// servers, and Options.ScopesSupported.
func (v *Verifier) ResourceMetadata() accesstoken.ResourceMetadata {
	md := v.metadata
	md.AuthorizationServers = slices.Clone(md.AuthorizationServers)
	md.ScopesSupported = slices.Clone(md.ScopesSupported)
	return md
}

// VerifyToken verifies a JWT access token (kind accesstoken.JWT) or an
// opaque one (accesstoken.Opaque) at time now. Errors wrap
// accesstoken.ErrInvalid's kinds (ErrSignature, accesstoken.ErrAudience,
// ...) for a bad token, accesstoken.ErrUnavailable when the issuer cannot be
// reached; they never contain the token.
func (v *Verifier) VerifyToken(ctx context.Context, token string, kind accesstoken.Kind, now time.Time) (accesstoken.Token, error) {
	if kind == accesstoken.JWT {
		return v.verifyJWT(ctx, token, now)
	}
	if v.opaque == nil {
		return accesstoken.Token{}, fmt.Errorf("%w: opaque token, and no issuer introspects", accesstoken.ErrInvalid)
	}
	return v.opaque.introspect(ctx, token, now)
}

// checkURL accepts absolute https URLs, and http ones on loopback hosts.
func checkURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case s == "":
		return errors.New("empty URL")
	case err != nil:
		return err
	case u.Host == "" || !(u.Scheme == "https" || u.Scheme == "http" && isLoopback(u.Hostname())):
		return fmt.Errorf("%q: need an absolute https URL (http only on a loopback host)", s)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// allowedAlgorithms checks an issuer's algorithm list.
func allowedAlgorithms(names []string) ([]jose.SignatureAlgorithm, error) {
	if len(names) == 0 {
		names = DefaultAlgorithms
	}
	out := make([]jose.SignatureAlgorithm, 0, len(names))
	for _, n := range names {
		if !slices.Contains(DefaultAlgorithms, n) {
			return nil, fmt.Errorf("algorithm %q in Algorithms is not an accepted asymmetric JWS algorithm (one of %s)", n, strings.Join(DefaultAlgorithms, ", "))
		}
		out = append(out, jose.SignatureAlgorithm(n))
	}
	return out, nil
}
