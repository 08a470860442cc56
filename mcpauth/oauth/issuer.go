package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcpauth/mcpauth/mcpauth/accesstoken"
)

// issuer is one trusted authorization server: what tokens from it must
// satisfy, its discovery document and its published keys.
type issuer struct {
	url        string
	audiences  []string
	algs       []jose.SignatureAlgorithm
	types      []string
	userClaim  string
	client     *http.Client
	logger     *slog.Logger
	floor      time.Duration
	maxAge     time.Duration
	skew       time.Duration
	configured struct{ jwks, introspection string } // from the Issuer; "" = discover

	// mu guards fetching and lastFetch: one keys fetch in flight per
	// issuer; others wait for it (or for their own context) and then use
	// its result. No I/O happens under mu.
	mu        sync.Mutex
	fetching  *keysFetch // the fetch in flight, or nil
	lastFetch time.Time  // last fetch attempt, successful or not
	keys      atomic.Pointer[keySet]

	// discovering is held (a one-slot semaphore, so that a waiter can give
	// up when its context ends) while meta is read or fetched.
	discovering chan struct{}
	meta        *serverMetadata

	introspection *introspector
}

// keySet is one fetched JWKS.
type keySet struct {
	keys      []jose.JSONWebKey
	fetchedAt time.Time
}

// keysFetch is one fetch of an issuer's keys; ks and err are set before
// done is closed.
type keysFetch struct {
	done chan struct{}
	ks   *keySet
	err  error
}

// serverMetadata is what the verifier reads of a discovery document.
type serverMetadata struct {
	Issuer                string `json:"issuer"`
	JWKSURI               string `json:"jwks_uri"`
	IntrospectionEndpoint string `json:"introspection_endpoint"`
}

func newIssuer(is Issuer, resource string, o *Options) (*issuer, error) {
	if err := checkURL(is.URL); err != nil {
		return nil, fmt.Errorf("URL: %w", err)
	}
	if is.JWKSURL != "" {
		if err := checkURL(is.JWKSURL); err != nil {
			return nil, fmt.Errorf("JWKSURL: %w", err)
		}
	}
	algs, err := allowedAlgorithms(is.Algorithms)
	if err != nil {
		return nil, err
	}
	iss := &issuer{
		url: is.URL, algs: algs, userClaim: is.UserClaim, client: o.HTTPClient, logger: o.Logger,
		floor: o.KeysRefreshFloor, maxAge: o.KeysMaxAge, skew: o.ClockSkew,
		discovering: make(chan struct{}, 1),
	}
	iss.configured.jwks = is.JWKSURL
	if iss.userClaim == "" {
		iss.userClaim = "sub"
	}
	iss.audiences = append([]string(nil), is.Audiences...)
	if len(iss.audiences) == 0 {
		trimmed := strings.TrimSuffix(resource, "/")
		iss.audiences = []string{resource, trimmed, trimmed + "/"}
	}
	types := is.TokenTypes
	if len(types) == 0 {
		types = DefaultTokenTypes
	}
	for _, t := range types {
		iss.types = append(iss.types, normalType(t))
	}
	if in := is.Introspection; in != nil {
		if in.ClientID == "" || in.ClientSecret == "" {
			return nil, errors.New("Introspection: ClientID and ClientSecret are required")
		}
		if in.Endpoint != "" {
			if err := checkURL(in.Endpoint); err != nil {
				return nil, fmt.Errorf("Introspection.Endpoint: %w", err)
			}
		}
		iss.configured.introspection = in.Endpoint
		iss.introspection = newIntrospector(iss, *in)
	}
	return iss, nil
}

// normalType is a typ value compared without case and without the
// "application/" prefix (RFC 7515 §4.1.9).
func normalType(t string) string {
	t = strings.ToLower(t)
	return strings.TrimPrefix(t, "application/")
}

// errNoFetch is what key reports for an unknown key ID within the
// refresh floor: the token is refused without a fetch.
var errNoFetch = errors.New("refresh floor")

// key returns the published key with the given ID for alg. An unknown
// ID, or keys older than maxAge, start a fetch unless one was tried
// within the refresh floor. An unknown key is accesstoken.ErrSignature; no keys
// at all (the issuer never answered) is ErrUnavailable.
func (is *issuer) key(ctx context.Context, kid string, alg string, now time.Time) (*jose.JSONWebKey, error) {
	ks := is.keys.Load()
	if ks != nil && now.Sub(ks.fetchedAt) < is.maxAge {
		if k := ks.find(kid, alg); k != nil {
			return k, nil
		}
	}
	ks, err := is.refresh(ctx, ks, now)
	if ks == nil {
		return nil, fmt.Errorf("%w: no keys from issuer %s", accesstoken.ErrUnavailable, is.url)
	}
	if k := ks.find(kid, alg); k != nil {
		return k, nil
	}
	if err != nil && !errors.Is(err, errNoFetch) {
		return nil, fmt.Errorf("%w: keys of issuer %s could not be refreshed", accesstoken.ErrUnavailable, is.url)
	}
	return nil, fmt.Errorf("%w: issuer publishes no key %q for %s", accesstoken.ErrSignature, kid, alg)
}

// refresh fetches the keys unless another fetch replaced seen meanwhile
// or one was tried within the floor; it returns the keys to use (possibly
// older ones, when the fetch fails) and why it did not fetch.
//
// The request that starts a fetch runs it on a context detached from its
// own, bounded by fetchTimeout: a client that hangs up must not fail the
// fetch for every request waiting on it, nor spend the refresh floor on
// a fetch that never finished (which would keep a rotated-in key out for
// the floor). Requests that find a fetch in flight wait for it within
// their own context.
func (is *issuer) refresh(ctx context.Context, seen *keySet, now time.Time) (*keySet, error) {
	is.mu.Lock()
	if cur := is.keys.Load(); cur != seen {
		is.mu.Unlock()
		return cur, nil // a fetch finished while this one waited
	}
	if f := is.fetching; f != nil {
		is.mu.Unlock()
		select {
		case <-f.done:
			if f.err != nil {
				return seen, f.err
			}
			return f.ks, nil
		case <-ctx.Done():
			return seen, ctx.Err()
		}
	}
	if d := now.Sub(is.lastFetch); !is.lastFetch.IsZero() && d < is.floor && d > -is.floor {
		is.mu.Unlock()
		return seen, errNoFetch
	}
	is.lastFetch = now
	f := &keysFetch{done: make(chan struct{})}
	is.fetching = f
	is.mu.Unlock()

	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
	f.ks, f.err = is.fetchKeys(fctx, now)
	cancel()
	is.mu.Lock()
	if f.err == nil {
		is.keys.Store(f.ks)
	}
	is.fetching = nil
	is.mu.Unlock()
	close(f.done)
	if f.err != nil {
		is.logger.LogAttrs(ctx, slog.LevelError, "mcpauth/oauth: cannot fetch the issuer's keys", slog.String("issuer", is.url), slog.String("error", f.err.Error()))
		return seen, f.err
	}
	return f.ks, nil
}

// fetchKeys discovers the JWKS URL if needed and fetches the keys.
func (is *issuer) fetchKeys(ctx context.Context, now time.Time) (*keySet, error) {
	u := is.configured.jwks
	if u == "" {
		m, err := is.discover(ctx)
		if err != nil {
			return nil, err
		}
		if u = m.JWKSURI; u == "" {
			return nil, errors.New("discovery document has no jwks_uri")
		}
	}
	var set jose.JSONWebKeySet
	if err := is.getJSON(ctx, u, &set); err != nil {
		return nil, err
	}
	ks := &keySet{fetchedAt: now}
	for _, k := range set.Keys {
		// Only public signing keys: a symmetric key in a JWKS would let
		// anyone who fetched it sign tokens.
		if k.Valid() && k.IsPublic() && (k.Use == "" || k.Use == "sig") {
			ks.keys = append(ks.keys, k)
		}
	}
	return ks, nil
}

// discover returns the issuer's metadata, fetching it once: OpenID Connect
// Discovery, else RFC 8414 (whose well-known path goes before the
// issuer's path). The document must name this issuer exactly. A failed
// discovery is tried again on the next call. It waits for another
// discovery in flight within ctx.
func (is *issuer) discover(ctx context.Context) (*serverMetadata, error) {
	select {
	case is.discovering <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-is.discovering }()
	if is.meta != nil {
		return is.meta, nil
	}
	u, _ := url.Parse(is.url)
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	var m serverMetadata
	err := is.getJSON(ctx, strings.TrimSuffix(is.url, "/")+"/.well-known/openid-configuration", &m)
	if err != nil {
		var m2 serverMetadata
		if err2 := is.getJSON(ctx, u.Scheme+"://"+u.Host+"/.well-known/oauth-authorization-server"+path, &m2); err2 != nil {
			return nil, fmt.Errorf("discovery: %w", errors.Join(err, err2))
		}
		m = m2
	}
	if m.Issuer != is.url {
		return nil, fmt.Errorf("discovery document names issuer %q, not %q", m.Issuer, is.url)
	}
	for _, e := range []string{m.JWKSURI, m.IntrospectionEndpoint} {
		if e != "" {
			if err := checkURL(e); err != nil {
				return nil, fmt.Errorf("discovery document: %w", err)
			}
		}
	}
	is.meta = &m
	return is.meta, nil
}

// introspectionEndpoint returns the configured or discovered endpoint.
func (is *issuer) introspectionEndpoint(ctx context.Context) (string, error) {
	if is.configured.introspection != "" {
		return is.configured.introspection, nil
	}
	m, err := is.discover(ctx)
	if err != nil {
		return "", err
	}
	if m.IntrospectionEndpoint == "" {
		return "", errors.New("discovery document has no introspection_endpoint")
	}
	return m.IntrospectionEndpoint, nil
}

func (is *issuer) getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := is.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDocumentBytes))
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxDocumentBytes)).Decode(v); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	return nil
}

// find returns the key with ID kid usable with alg: an empty kid matches
// only when the set has exactly one key usable with alg, never by trying
// each key in turn.
func (ks *keySet) find(kid, alg string) *jose.JSONWebKey {
	var found *jose.JSONWebKey
	for i := range ks.keys {
		k := &ks.keys[i]
		if kid != "" && k.KeyID != kid || k.Algorithm != "" && k.Algorithm != alg || !keyFits(k, alg) {
			continue
		}
		if kid != "" {
			return k
		}
		if found != nil {
			return nil // ambiguous
		}
		found = k
	}
	return found
}
