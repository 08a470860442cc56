package oauth_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"
)

// testIssuer is an authorization server's publishing side: a discovery
// document and a JWKS over real HTTP, counting fetches, with keys that can
// be rotated. Tokens are minted with go-jose, as an issuer would.
type testIssuer struct {
	srv       *httptest.Server
	mu        sync.Mutex
	published []jose.JSONWebKey
	signers   map[string]crypto.Signer // by kid
	jwks      atomic.Int64             // JWKS fetches
	discovery atomic.Int64             // discovery fetches
	down      atomic.Bool              // answer 503

	// While keysGate is set, a JWKS request sends on keysHeld and waits
	// for the gate to close; keysCancelled counts those whose request
	// ended first.
	keysGate      atomic.Pointer[chan struct{}]
	keysHeld      chan struct{}
	keysCancelled atomic.Int64
}

func newTestIssuer(t testing.TB) *testIssuer {
	t.Helper()
	is := &testIssuer{signers: map[string]crypto.Signer{}, keysHeld: make(chan struct{}, 64)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		is.discovery.Add(1)
		if is.down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": is.URL(), "jwks_uri": is.URL() + "/keys"})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		is.jwks.Add(1)
		if g := is.keysGate.Load(); g != nil {
			is.keysHeld <- struct{}{}
			select {
			case <-*g:
			case <-r.Context().Done():
				is.keysCancelled.Add(1)
				return
			}
		}
		if is.down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		is.mu.Lock()
		defer is.mu.Unlock()
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: is.published})
	})
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	return is
}

func (is *testIssuer) URL() string { return is.srv.URL }

// addKey creates a key for alg ("RS256", "ES256", "EdDSA"), publishes it
// unless hidden, and returns its kid.
func (is *testIssuer) addKey(t testing.TB, kid, alg string, publish bool) string {
	t.Helper()
	var s crypto.Signer
	var err error
	switch alg {
	case "RS256", "PS256":
		s, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		s, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "EdDSA":
		_, s, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("no key type for %s", alg)
	}
	require.NoError(t, err)
	is.mu.Lock()
	defer is.mu.Unlock()
	is.signers[kid] = s
	if publish {
		is.published = append(is.published, jose.JSONWebKey{Key: s.Public(), KeyID: kid, Algorithm: alg, Use: "sig"})
	}
	return kid
}

// mint signs claims with the key kid, alg and typ header ("" for none).
func (is *testIssuer) mint(t testing.TB, kid, alg, typ string, claims map[string]any) string {
	t.Helper()
	is.mu.Lock()
	s := is.signers[kid]
	is.mu.Unlock()
	require.NotNil(t, s, "no key %s", kid)
	return mintWith(t, s, kid, alg, typ, claims)
}

func mintWith(t testing.TB, key any, kid, alg, typ string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithHeader(jose.HeaderKey("kid"), kid)
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: key}, opts)
	require.NoError(t, err)
	payload, err := json.Marshal(claims)
	require.NoError(t, err)
	jws, err := signer.Sign(payload)
	require.NoError(t, err)
	out, err := jws.CompactSerialize()
	require.NoError(t, err)
	return out
}

// claims are a valid access token's claims at now for resource.
func (is *testIssuer) claims(resource string, now time.Time) map[string]any {
	return map[string]any{
		"iss": is.URL(), "sub": "user-1", "aud": resource, "client_id": "agent-1",
		"exp": now.Add(5 * time.Minute).Unix(), "iat": now.Add(-time.Second).Unix(), "nbf": now.Add(-time.Second).Unix(),
		"jti": "t-1", "scope": "documents:read",
	}
}

var _ = context.Background
