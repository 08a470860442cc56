package oidcprovider_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Identities the test provider knows.
const (
	userID       = "id2" // storage.NewUserStore's "test-user2"
	userName     = "test-user2"
	userPassword = "verysecure"
	agentID      = "mcp-agent"   // a public client: authorization code with PKCE
	serviceID    = "mcp-service" // a confidential client: client credentials, JWT tokens
	serviceKey   = "service-secret"
	opaqueID     = "mcp-opaque" // client credentials, opaque (introspected) tokens
	opaqueKey    = "opaque-secret"
	serverID     = "mcp-server" // the resource server itself, for introspection
	serverKey    = "server-secret"
)

// provider is an OpenID Provider built with zitadel/oidc's op package over
// its example storage, with what the tests need on top: JWT access tokens
// whose audience is the RFC 8707 resource the client asked for, signing
// keys that rotate, and a count of JWKS fetches.
type provider struct {
	*storage.Storage
	URL      string
	redirect string // the agent's registered redirect URI
	op       op.OpenIDProvider
	srv      *httptest.Server

	mu        sync.Mutex
	signing   *signingKey
	published []*signingKey
	clients   map[string]*client
	issued    map[string]issued // access token ID -> what it was issued for, for introspection

	keyFetches atomic.Int64
	resources  atomic.Int64 // token requests that named a resource
}

type signingKey struct {
	id  string
	alg jose.SignatureAlgorithm
	key any // *rsa.PrivateKey or *ecdsa.PrivateKey
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return k.alg }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

type publicKey struct{ *signingKey }

func (k publicKey) Algorithm() jose.SignatureAlgorithm { return k.alg }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any {
	switch pk := k.key.(type) {
	case *rsa.PrivateKey:
		return &pk.PublicKey
	case *ecdsa.PrivateKey:
		return &pk.PublicKey
	}
	return nil
}

// client is one of the test's OAuth clients.
type client struct {
	*storage.Client
	secret    string
	tokenType op.AccessTokenType
	grants    []oidc.GrantType
}

func (c *client) AccessTokenType() op.AccessTokenType { return c.tokenType }
func (c *client) GrantTypes() []oidc.GrantType        { return c.grants }
func (c *client) IsScopeAllowed(string) bool          { return true }
func (c *client) LoginURL(id string) string           { return "/login?authRequestID=" + url.QueryEscape(id) }

type resourceKey struct{}

// newProvider starts the provider on a loopback port.
func newProvider(t *testing.T) *provider {
	t.Helper()
	p := &provider{clients: map[string]*client{}, issued: map[string]issued{}}
	var h http.Handler
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(p.srv.Close)
	p.URL = p.srv.URL
	p.redirect = "http://127.0.0.1:9/callback" // never dialled: the test's browser stops at it
	p.Storage = storage.NewStorageWithClients(storage.NewUserStore(p.URL), map[string]*storage.Client{})
	p.rotate(t, "RS256")
	p.clients[agentID] = &client{Client: storage.NativeClient(agentID, p.redirect), tokenType: op.AccessTokenTypeJWT, grants: []oidc.GrantType{oidc.GrantTypeCode}}
	p.clients[serviceID] = &client{Client: storage.WebClient(serviceID, serviceKey), secret: serviceKey, tokenType: op.AccessTokenTypeJWT, grants: []oidc.GrantType{oidc.GrantTypeClientCredentials}}
	p.clients[opaqueID] = &client{Client: storage.WebClient(opaqueID, opaqueKey), secret: opaqueKey, tokenType: op.AccessTokenTypeBearer, grants: []oidc.GrantType{oidc.GrantTypeClientCredentials}}
	p.clients[serverID] = &client{Client: storage.WebClient(serverID, serverKey), secret: serverKey, tokenType: op.AccessTokenTypeBearer}

	cryptoKey := sha256.Sum256([]byte("test provider"))
	var err error
	p.op, err = op.NewProvider(&op.Config{CryptoKey: cryptoKey, CodeMethodS256: true, AuthMethodPost: true},
		p, op.StaticIssuer(p.URL), op.WithAllowInsecure(), op.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.HandleFunc("/login", p.login)
	mux.Handle("/", p.op)
	h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/keys" {
			p.keyFetches.Add(1)
		}
		// RFC 8707: remember the resource a token request names, for the
		// storage to put in the token's audience.
		if r.URL.Path == "/oauth/token" && r.ParseForm() == nil {
			if res := r.PostForm.Get("resource"); res != "" {
				p.resources.Add(1)
				r = r.WithContext(context.WithValue(r.Context(), resourceKey{}, res))
			}
		}
		mux.ServeHTTP(w, r)
	})
	return p
}

// rotate makes a new signing key current (RS256 or ES256); the old keys
// stay published, as an issuer rotating keys does. It returns the new kid.
func (p *provider) rotate(t *testing.T, alg string) string {
	t.Helper()
	var k any
	var err error
	switch alg {
	case "RS256":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	require.NoError(t, err)
	p.mu.Lock()
	defer p.mu.Unlock()
	sk := &signingKey{id: alg + "-" + rand.Text()[:8], alg: jose.SignatureAlgorithm(alg), key: k}
	p.signing = sk
	p.published = append(p.published, sk)
	return sk.id
}

// login is the provider's login page, filled in by the test's "user".
func (p *provider) login(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("authRequestID")
	if err := p.CheckUsernamePassword(userName, userPassword, id); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	http.Redirect(w, r, p.op.AuthorizationEndpoint().Absolute(p.URL)+"/callback?id="+url.QueryEscape(id), http.StatusFound)
}

// audience is the token's audience: the resource the token request named
// (RFC 8707), else the client, as the provider does without one.
func audience(ctx context.Context, clientID string) []string {
	if res, ok := ctx.Value(resourceKey{}).(string); ok {
		return []string{res, serverID}
	}
	return []string{clientID}
}

func (p *provider) SigningKey(context.Context) (op.SigningKey, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.signing, nil
}

func (p *provider) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return []jose.SignatureAlgorithm{p.signing.alg}, nil
}

func (p *provider) KeySet(context.Context) ([]op.Key, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	keys := make([]op.Key, len(p.published))
	for i, k := range p.published {
		keys[i] = publicKey{k}
	}
	return keys, nil
}

func (p *provider) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	if c, ok := p.clients[id]; ok {
		return c, nil
	}
	return nil, errors.New("no such client")
}

func (p *provider) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	if c, ok := p.clients[id]; ok && c.secret != "" && c.secret == secret {
		return nil
	}
	return errors.New("wrong client credentials")
}

func (p *provider) ClientCredentials(_ context.Context, id, secret string) (op.Client, error) {
	if c, ok := p.clients[id]; ok && c.secret != "" && c.secret == secret {
		return c, nil
	}
	return nil, errors.New("wrong client credentials")
}

func (p *provider) ClientCredentialsTokenRequest(ctx context.Context, id string, scopes []string) (op.TokenRequest, error) {
	return &oidc.JWTTokenRequest{Subject: id, Audience: audience(ctx, id), Scopes: scopes}, nil
}

// audienced is an authorization request whose token goes to the resource
// named in the token request.
type audienced struct {
	op.AuthRequest
	aud []string
}

func (a audienced) GetAudience() []string { return a.aud }

func (p *provider) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	ar, err := p.Storage.AuthRequestByCode(ctx, code)
	if err != nil {
		return nil, err
	}
	return audienced{ar, audience(ctx, ar.GetClientID())}, nil
}

// issued is what the provider remembers of an access token.
type issued struct {
	aud, scopes []string
	subject     string
	exp         time.Time
}

func (p *provider) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	id, exp, err := p.Storage.CreateAccessToken(ctx, req)
	if err == nil {
		p.mu.Lock()
		p.issued[id] = issued{aud: req.GetAudience(), scopes: req.GetScopes(), subject: req.GetSubject(), exp: exp}
		p.mu.Unlock()
	}
	return id, exp, err
}

// GetPrivateClaimsFromScopes puts the granted scopes in JWT access tokens
// (RFC 9068 "scope"), which zitadel's op leaves to the storage.
func (p *provider) GetPrivateClaimsFromScopes(_ context.Context, _, _ string, scopes []string) (map[string]any, error) {
	return map[string]any{"scope": strings.Join(scopes, " ")}, nil
}

// SetIntrospectionFromToken answers for a token this provider issued, to
// a resource server in its audience (as the example storage does), with
// its audience, scopes, subject, client, issuer and expiry.
func (p *provider) SetIntrospectionFromToken(_ context.Context, in *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	tok, ok := p.issued[tokenID]
	if !ok || time.Now().After(tok.exp) || !slices.Contains(tok.aud, clientID) {
		return errors.New("token not active for this client")
	}
	in.Audience, in.Scope, in.Subject, in.Issuer = tok.aud, tok.scopes, subject, p.URL
	in.ClientID, in.Expiration = tok.subject, oidc.FromTime(tok.exp)
	return nil
}

// clientCredentials gets an access token for a confidential client by the
// client credentials grant, asking for resource (none if empty).
func (p *provider) clientCredentials(t *testing.T, id, secret, resource, scope string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}
	if resource != "" {
		form.Set("resource", resource)
	}
	req, err := http.NewRequest(http.MethodPost, p.URL+"/oauth/token", strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	require.NoError(t, json.Unmarshal(body, &tr))
	require.NotEmpty(t, tr.AccessToken)
	return tr.AccessToken
}
