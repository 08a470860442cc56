package oauth_test

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/accesstoken"
	"github.com/mcpauth/mcpauth/mcpauth/oauth"
	"github.com/mcpauth/mcpauth/store"
)

const resource = "https://mcp.example.test/mcp"

// clock is a test timeline shared by the Guard and the assertions.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// events records audit events.
type events struct {
	mu   sync.Mutex
	list []audit.Event
}

func (e *events) Record(_ context.Context, ev audit.Event) error {
	e.mu.Lock()
	e.list = append(e.list, ev)
	e.mu.Unlock()
	return nil
}

func (e *events) last(t *testing.T) audit.Event {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	require.NotEmpty(t, e.list)
	return e.list[len(e.list)-1]
}

type rig struct {
	iss    *testIssuer
	clock  *clock
	guard  *mcpauth.Guard
	h      http.Handler
	runs   atomic.Int64 // times the protected handler ran
	events *events
}

func newRig(t *testing.T, issuer func(*oauth.Issuer), opts *oauth.Options) *rig {
	t.Helper()
	r := &rig{iss: newTestIssuer(t), clock: &clock{now: time.Now().Truncate(time.Second)}, events: &events{}}
	r.iss.addKey(t, "k1", "RS256", true)
	is := oauth.Issuer{URL: r.iss.URL()}
	if issuer != nil {
		issuer(&is)
	}
	v, err := oauth.New(resource, []oauth.Issuer{is}, opts)
	require.NoError(t, err)
	r.guard, err = mcpauth.New(store.NewMemory(), &mcpauth.Options{OAuth: v, Now: r.clock.Now, Audit: r.events})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.guard.Close(context.Background()) })
	r.h = r.guard.Require(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.runs.Add(1)
		p, _ := mcpauth.PrincipalFrom(req.Context())
		_ = json.NewEncoder(w).Encode(p)
	}))
	return r
}

func (r *rig) do(token string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, "/mcp", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	r.h.ServeHTTP(w, req)
	return w
}

func TestValidJWTBecomesAPrincipal(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{"RS256", "PS256", "ES256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, nil, nil)
			kid := r.iss.addKey(t, "k-"+alg, alg, true)
			c := r.iss.claims(resource, r.clock.Now())
			w := r.do(r.iss.mint(t, kid, alg, "at+jwt", c))
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			var p mcpauth.Principal
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &p))
			assert.Equal(t, "user-1", p.UserID)
			assert.Equal(t, []string{"documents:read"}, p.Scopes)
			assert.Equal(t, string(accesstoken.JWT), p.Kind)
			assert.Equal(t, r.iss.URL(), p.Issuer)
			assert.Equal(t, "agent-1", p.ClientID)
			assert.True(t, strings.HasPrefix(p.KeyID, "oauth_"), p.KeyID)
			assert.Equal(t, time.Unix(c["exp"].(int64), 0), p.ExpiresAt.Local())
			ev := r.events.last(t)
			assert.Equal(t, "jwt", ev.Credential)
			assert.Equal(t, p.KeyID, ev.KeyID)
			assert.Equal(t, audit.OutcomeAllowed, ev.Outcome)
		})
	}
}

// TestBadJWTsAreRefused: every forged, misdirected or stale token is 401
// invalid_token, the handler never runs, audit names the precise reason,
// and none of them costs more than the one JWKS fetch the first token made.
func TestBadJWTsAreRefused(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil, nil)
	r.iss.addKey(t, "hidden", "RS256", false) // a key the issuer does not publish
	now := r.clock.Now()
	valid := func(edit func(map[string]any)) map[string]any {
		c := r.iss.claims(resource, now)
		if edit != nil {
			edit(c)
		}
		return c
	}
	good := r.iss.mint(t, "k1", "RS256", "at+jwt", valid(nil))
	require.Equal(t, http.StatusOK, r.do(good).Code) // warms the keys: one fetch
	require.EqualValues(t, 1, r.iss.jwks.Load())
	r.runs.Store(0)

	b64 := base64.RawURLEncoding.EncodeToString
	parts := strings.Split(good, ".")
	pub := r.iss.published[0].Key.(*rsa.PublicKey)
	pubDER := x509.MarshalPKCS1PublicKey(pub)
	otherIssuer := newTestIssuer(t)
	otherIssuer.addKey(t, "k1", "RS256", true)

	attacks := []struct {
		name   string
		token  string
		reason string
	}{
		{"wrong audience", r.iss.mint(t, "k1", "RS256", "at+jwt", valid(func(c map[string]any) { c["aud"] = "https://other.example/mcp" })), "token_audience"},
		{"no audience", r.iss.mint(t, "k1", "RS256", "at+jwt", valid(func(c map[string]any) { delete(c, "aud") })), "token_audience"},
		{"unknown issuer", r.iss.mint(t, "k1", "RS256", "at+jwt", valid(func(c map[string]any) { c["iss"] = "https://evil.example" })), "token_issuer"},
		{"another issuer's real token", otherIssuer.mint(t, "k1", "RS256", "at+jwt", otherIssuer.claims(resource, now)), "token_issuer"},
		{"expired", r.iss.mint(t, "k1", "RS256", "at+jwt", valid(func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() })), "token_expired"},
		{"no exp", r.iss.mint(t, "k1", "RS256", "at+jwt", valid(func(c map[string]any) { delete(c, "exp") })), "invalid_token"},
		{"not yet valid", r.iss.mint(t, "k1", "RS256", "at+jwt", valid(func(c map[string]any) { c["nbf"] = now.Add(2 * time.Minute).Unix() })), "token_not_yet_valid"},
		{"issued in the future", r.iss.mint(t, "k1", "RS256", "at+jwt", valid(func(c map[string]any) { c["iat"] = now.Add(2 * time.Minute).Unix() })), "token_not_yet_valid"},
		{"alg none", b64([]byte(`{"alg":"none","typ":"at+jwt","kid":"k1"}`)) + "." + parts[1] + ".", "token_signature"},
		{"HS256 keyed with the public key", mintWith(t, pubDER, "k1", "HS256", "at+jwt", valid(nil)), "token_signature"},
		{"tampered signature", parts[0] + "." + parts[1] + "." + flip(parts[2]), "token_signature"},
		{"tampered claims", parts[0] + "." + b64(mustJSON(t, valid(func(c map[string]any) { c["scope"] = "admin" }))) + "." + parts[2], "token_signature"},
		{"signed by an unpublished key", r.iss.mint(t, "hidden", "RS256", "at+jwt", valid(nil)), "token_signature"},
		{"unpublished key claiming a published kid", func() string {
			r.iss.mu.Lock()
			s := r.iss.signers["hidden"]
			r.iss.mu.Unlock()
			return mintWith(t, s, "k1", "RS256", "at+jwt", valid(nil))
		}(), "token_signature"},
		{"ID token (typ JWT)", r.iss.mint(t, "k1", "RS256", "JWT", valid(nil)), "token_type"},
		{"no typ", r.iss.mint(t, "k1", "RS256", "", valid(nil)), "token_type"},
		{"no subject", r.iss.mint(t, "k1", "RS256", "at+jwt", valid(func(c map[string]any) { delete(c, "sub") })), "invalid_token"},
		{"not JSON claims", parts[0] + "." + b64([]byte("not json")) + "." + parts[2], "invalid_token"},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			w := r.do(a.token)
			assert.Equal(t, http.StatusUnauthorized, w.Code)
			assert.Contains(t, w.Header().Get("WWW-Authenticate"), `error="invalid_token"`)
			assert.Contains(t, w.Header().Get("WWW-Authenticate"), `resource_metadata="https://mcp.example.test/.well-known/oauth-protected-resource/mcp"`)
			assert.EqualValues(t, 0, r.runs.Load(), "the handler ran")
			ev := r.events.last(t)
			assert.Equal(t, a.reason, ev.Reason)
			assert.Equal(t, "jwt", ev.Credential)
			assert.Equal(t, audit.OutcomeUnauthenticated, ev.Outcome)
		})
	}
	// The unpublished-key cases came within the refresh floor of the first
	// fetch, so they fetched nothing; the rest never needed the issuer.
	assert.EqualValues(t, 1, r.iss.jwks.Load(), "JWKS fetches")
	assert.EqualValues(t, 0, otherIssuer.jwks.Load()+otherIssuer.discovery.Load(), "an unconfigured issuer was contacted")
	assert.EqualValues(t, 0, r.runs.Load())
}

func flip(s string) string {
	b := []byte(s)
	if b[3] == 'A' {
		b[3] = 'B'
	} else {
		b[3] = 'A'
	}
	return string(b)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// TestUnknownKidFloodFetchesOncePerFloor: a flood of tokens with made-up
// key IDs is refused, and the issuer's keys are fetched at most once per
// refresh floor, not once per request.
func TestUnknownKidFloodFetchesOncePerFloor(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil, &oauth.Options{KeysRefreshFloor: 30 * time.Second})
	now := r.clock.Now()
	require.Equal(t, http.StatusOK, r.do(r.iss.mint(t, "k1", "RS256", "at+jwt", r.iss.claims(resource, now))).Code)
	r.iss.addKey(t, "forger", "RS256", false)
	r.iss.mu.Lock()
	forger := r.iss.signers["forger"]
	r.iss.mu.Unlock()
	var wg sync.WaitGroup
	var refused atomic.Int64
	for i := range 400 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := mintWith(t, forger, fmt.Sprintf("kid-%d", i), "RS256", "at+jwt", r.iss.claims(resource, now))
			if r.do(tok).Code == http.StatusUnauthorized {
				refused.Add(1)
			}
		}()
		if i == 199 {
			wg.Wait()
			r.clock.Add(31 * time.Second) // past the floor: one more fetch allowed
		}
	}
	wg.Wait()
	assert.EqualValues(t, 400, refused.Load())
	assert.EqualValues(t, 0, r.runs.Load()-1, "a forged token reached the handler")
	// The first token's fetch; none for the first 200 (within its floor);
	// one for the next 200, past it.
	assert.EqualValues(t, 2, r.iss.jwks.Load(), "JWKS fetches: the first token, then one per floor")
	assert.EqualValues(t, 1, r.iss.discovery.Load())
}

// TestRotationIsPickedUpWithoutRestart: the issuer starts signing with a
// new key; the first token with its kid triggers one fetch, and it works.
func TestRotationIsPickedUpWithoutRestart(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil, nil)
	now := r.clock.Now()
	require.Equal(t, http.StatusOK, r.do(r.iss.mint(t, "k1", "RS256", "at+jwt", r.iss.claims(resource, now))).Code)
	r.clock.Add(time.Minute) // past the default floor
	r.iss.addKey(t, "k2", "ES256", true)
	w := r.do(r.iss.mint(t, "k2", "ES256", "at+jwt", r.iss.claims(resource, r.clock.Now())))
	assert.Equal(t, http.StatusOK, w.Code, w.Body.String())
	assert.EqualValues(t, 2, r.iss.jwks.Load())
	// The old key still verifies (both published).
	assert.Equal(t, http.StatusOK, r.do(r.iss.mint(t, "k1", "RS256", "at+jwt", r.iss.claims(resource, r.clock.Now()))).Code)
	assert.EqualValues(t, 2, r.iss.jwks.Load())
}

// TestAClientThatHangsUpDoesNotFailTheKeysFetch: the request that starts
// a keys fetch hangs up while the issuer is slow. Its fetch goes on, so
// the request waiting on it is verified and the refresh floor is not spent
// on a fetch that never finished (else a client could keep a rotated-in
// key, or on a cold start every key, out for the floor by hanging up); a
// waiter whose own context ends gives up without waiting for the issuer.
func TestAClientThatHangsUpDoesNotFailTheKeysFetch(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil, nil) // cold: no keys fetched yet
	gate := make(chan struct{})
	r.iss.keysGate.Store(&gate)
	release := sync.OnceFunc(func() { close(gate) })
	t.Cleanup(release)
	tok := r.iss.mint(t, "k1", "RS256", "at+jwt", r.iss.claims(resource, r.clock.Now()))
	serve := func(ctx context.Context) <-chan int {
		code := make(chan int, 1)
		go func() {
			req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/mcp", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			w := httptest.NewRecorder()
			r.h.ServeHTTP(w, req)
			code <- w.Code
		}()
		return code
	}
	wait := func(c <-chan int, what string) int {
		t.Helper()
		select {
		case code := <-c:
			return code
		case <-time.After(10 * time.Second):
			t.Fatalf("%s did not return", what)
			return 0
		}
	}

	starter, hangUp := context.WithCancel(context.Background())
	first := serve(starter)
	select {
	case <-r.iss.keysHeld: // the first request's fetch reached the issuer
	case <-time.After(10 * time.Second):
		t.Fatal("no JWKS request")
	}
	waiter := serve(context.Background())
	impatient, giveUp := context.WithCancel(context.Background())
	third := serve(impatient)
	hangUp()
	giveUp()
	assert.Equal(t, http.StatusServiceUnavailable, wait(third, "a waiter whose context ended"), "while the issuer still holds the fetch")
	release()
	assert.Equal(t, http.StatusOK, wait(waiter, "the waiting request"))
	wait(first, "the request that hung up")
	assert.EqualValues(t, 0, r.iss.keysCancelled.Load(), "the fetch was cancelled with the request that started it")
	assert.EqualValues(t, 1, r.iss.jwks.Load(), "JWKS fetches")
	assert.Equal(t, http.StatusOK, r.do(tok).Code, "within the floor, with the keys of that fetch")
	assert.EqualValues(t, 1, r.iss.jwks.Load(), "JWKS fetches")
	assert.GreaterOrEqual(t, r.runs.Load(), int64(2))
}

// TestVerdictCacheNeverOutlivesTheToken: a cached token stops at its exp.
func TestVerdictCacheNeverOutlivesTheToken(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil, &oauth.Options{ClockSkew: time.Second})
	c := r.iss.claims(resource, r.clock.Now())
	c["exp"] = r.clock.Now().Add(10 * time.Second).Unix()
	tok := r.iss.mint(t, "k1", "RS256", "at+jwt", c)
	require.Equal(t, http.StatusOK, r.do(tok).Code)
	require.Equal(t, http.StatusOK, r.do(tok).Code)
	r.clock.Add(10 * time.Second)
	assert.Equal(t, http.StatusUnauthorized, r.do(tok).Code)
	assert.EqualValues(t, 2, r.runs.Load())
}

// TestIssuerDownFailsClosed: no keys ever fetched is 503, not a pass.
func TestIssuerDownFailsClosed(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil, nil)
	r.iss.down.Store(true)
	w := r.do(r.iss.mint(t, "k1", "RS256", "at+jwt", r.iss.claims(resource, r.clock.Now())))
	assert.Equal(t, http.StatusServiceUnavailable, w.Code)
	assert.EqualValues(t, 0, r.runs.Load())
	// Recovery after the floor.
	r.iss.down.Store(false)
	r.clock.Add(time.Minute)
	assert.Equal(t, http.StatusOK, r.do(r.iss.mint(t, "k1", "RS256", "at+jwt", r.iss.claims(resource, r.clock.Now()))).Code)
}

func TestAcceptedTokenTypesAndUserClaim(t *testing.T) {
	t.Parallel()
	r := newRig(t, func(is *oauth.Issuer) {
		is.TokenTypes = []string{"JWT"}
		is.UserClaim = "email"
		is.Audiences = []string{"api://mcp"}
	}, nil)
	c := r.iss.claims("api://mcp", r.clock.Now())
	c["email"] = "ada@example.com"
	delete(c, "scope")
	c["scp"] = []string{"documents:read", "documents:write"}
	w := r.do(r.iss.mint(t, "k1", "RS256", "application/JWT", c))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var p mcpauth.Principal
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &p))
	assert.Equal(t, "ada@example.com", p.UserID)
	assert.Equal(t, []string{"documents:read", "documents:write"}, p.Scopes)
	// at+jwt is not accepted when only JWT is configured.
	assert.Equal(t, http.StatusUnauthorized, r.do(r.iss.mint(t, "k1", "RS256", "at+jwt", c)).Code)
}

func TestNewRefusesUnsafeConfiguration(t *testing.T) {
	t.Parallel()
	good := oauth.Issuer{URL: "https://issuer.example"}
	intro := &oauth.Introspection{ClientID: "rs", ClientSecret: "s"}
	tests := []struct {
		name     string
		resource string
		issuers  []oauth.Issuer
		opts     *oauth.Options
		want     string
	}{
		{"no resource", "", []oauth.Issuer{good}, nil, "resource"},
		{"http resource", "http://mcp.example/mcp", []oauth.Issuer{good}, nil, "resource"},
		{"no issuer", resource, nil, nil, "at least one Issuer"},
		{"http issuer", resource, []oauth.Issuer{{URL: "http://issuer.example"}}, nil, "Issuers[0]: URL"},
		{"HMAC", resource, []oauth.Issuer{{URL: good.URL, Algorithms: []string{"HS256"}}}, nil, "Algorithms"},
		{"none", resource, []oauth.Issuer{{URL: good.URL, Algorithms: []string{"none"}}}, nil, "Algorithms"},
		{"skew", resource, []oauth.Issuer{good}, &oauth.Options{ClockSkew: time.Hour}, "ClockSkew"},
		{"duplicate issuer", resource, []oauth.Issuer{good, good}, nil, "twice"},
		{"two introspecting issuers", resource, []oauth.Issuer{{URL: "https://a.example", Introspection: intro}, {URL: "https://b.example", Introspection: intro}}, nil, "only one issuer"},
		{"introspection without credentials", resource, []oauth.Issuer{{URL: good.URL, Introspection: &oauth.Introspection{}}}, nil, "ClientID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := oauth.New(tt.resource, tt.issuers, tt.opts)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

var _ = errors.Is
var _ = jose.RS256
