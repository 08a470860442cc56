package oidcprovider_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/accesstoken"
	"github.com/mcpauth/mcpauth/mcpauth/gosdk"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/mcpauth/oauth"
	"github.com/mcpauth/mcpauth/scope"
	"github.com/mcpauth/mcpauth/store"
)

// clock lets a test move the Guard's time (the provider keeps real time).
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time      { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Set(d time.Duration) { c.offset.Store(int64(d)) }

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

func (e *events) all() []audit.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.list)
}

// server is an MCP server (the official go-sdk's) behind one Guard that
// accepts the provider's tokens and mcpauth keys on the same endpoint.
type server struct {
	URL    string // the MCP endpoint, the resource
	guard  *mcpauth.Guard
	keys   *keyadmin.Manager
	calls  map[string]*atomic.Int32
	events *events
	clock  *clock
	who    sync.Map // tool name -> last principal
}

func newServer(t *testing.T, p *provider) *server {
	t.Helper()
	s := &server{calls: map[string]*atomic.Int32{}, events: &events{}, clock: &clock{}}
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	s.URL = srv.URL + "/mcp"

	v, err := oauth.New(s.URL, []oauth.Issuer{{
		URL:           p.URL,
		TokenTypes:    []string{"JWT"}, // zitadel's access tokens say typ JWT
		Introspection: &oauth.Introspection{ClientID: serverID, ClientSecret: serverKey},
	}}, &oauth.Options{ScopesSupported: []string{"documents:read", "documents:write"}, ResourceName: "docs"})
	require.NoError(t, err)
	policy, err := scope.NewPolicy(scope.PolicyConfig{Tools: []scope.Rule{
		{Match: "search", Scopes: []string{"documents:read"}},
		{Match: "delete", Scopes: []string{"documents:write"}},
	}})
	require.NoError(t, err)
	ks := store.NewMemory()
	s.guard, err = mcpauth.New(ks, &mcpauth.Options{OAuth: v, Policy: policy, Audit: s.events, Now: s.clock.Now})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.guard.Close(context.Background()) })
	s.keys, err = keyadmin.New(ks, &keyadmin.Options{OnChange: s.guard.Forget})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.keys.Close(context.Background()) })

	ms := mcp.NewServer(&mcp.Implementation{Name: "docs", Version: "1"}, nil)
	for _, name := range []string{"search", "delete"} {
		n := new(atomic.Int32)
		s.calls[name] = n
		mcp.AddTool(ms, &mcp.Tool{Name: name}, func(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, struct{}, error) {
			n.Add(1)
			pr, _ := gosdk.Principal(req.Extra)
			s.who.Store(name, pr)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: name + " for " + pr.UserID}}}, struct{}{}, nil
		})
	}
	ms.AddReceivingMiddleware(gosdk.Middleware(policy))
	mux := http.NewServeMux()
	mux.Handle("/mcp", s.guard.Require(gosdk.Bridge(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return ms }, nil))))
	mux.Handle(accesstoken.WellKnownPath, s.guard.ResourceMetadataHandler())
	mux.Handle(accesstoken.WellKnownPath+"/", s.guard.ResourceMetadataHandler())
	h = mux
	return s
}

// browser is the user agent of the authorization code flow: it follows
// the provider's redirects (authorize, login, callback) and stops at the
// client's redirect URI, returning its code and state.
func browser(p *provider, visits *atomic.Int32) auth.AuthorizationCodeFetcher {
	return func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
		visits.Add(1)
		u, err := url.Parse(args.URL)
		if err != nil {
			return nil, err
		}
		if q := u.Query(); q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("resource") == "" {
			return nil, errors.New("the client did not send PKCE S256 and a resource")
		}
		var final *url.URL
		c := &http.Client{CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), p.redirect) {
				final = req.URL
				return http.ErrUseLastResponse
			}
			return nil
		}}
		resp, err := c.Get(args.URL)
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		if final == nil {
			return nil, errors.New("the provider did not redirect to the client: " + resp.Status)
		}
		q := final.Query()
		return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
	}
}

func connect(t *testing.T, endpoint string, h auth.OAuthHandler, base http.RoundTripper) (*mcp.ClientSession, error) {
	t.Helper()
	hc := &http.Client{Transport: base}
	c := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, nil)
	cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: endpoint, OAuthHandler: h, HTTPClient: hc}, nil)
	if err == nil {
		t.Cleanup(func() { _ = cs.Close() })
	}
	return cs, err
}

// TestGoSDKClientWithAuthorizationCodeAndPKCE: the official client finds
// the provider through the protected resource metadata, gets a JWT by the
// authorization code flow with PKCE and the resource indicator, lists and
// calls tools behind Require; calling a tool that needs more scope makes it
// step up (403 insufficient_scope) and the call then goes through. An
// mcpauth key works on the same endpoint; audit names both kinds.
func TestGoSDKClientWithAuthorizationCodeAndPKCE(t *testing.T) {
	p := newProvider(t)
	s := newServer(t, p)
	var visits atomic.Int32
	h, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		PreregisteredClient:      &oauthex.ClientCredentials{ClientID: agentID},
		RedirectURL:              p.redirect,
		AuthorizationCodeFetcher: browser(p, &visits),
		// Ask for least privilege first: read only. Step-up asks for more.
		ScopeFilter: func(discovered []string) []string {
			if slices.Equal(discovered, []string{"documents:read", "documents:write"}) {
				return []string{"documents:read"}
			}
			return discovered
		},
	})
	require.NoError(t, err)
	cs, err := connect(t, s.URL, h, http.DefaultTransport)
	require.NoError(t, err)
	require.EqualValues(t, 1, visits.Load())

	tools, err := cs.ListTools(context.Background(), nil)
	require.NoError(t, err)
	require.Len(t, tools.Tools, 1, "the list shows what the token's scopes allow")
	assert.Equal(t, "search", tools.Tools[0].Name)
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "search", Arguments: map[string]any{}})
	require.NoError(t, err)
	assert.False(t, res.IsError)
	assert.Equal(t, "search for "+userID, res.Content[0].(*mcp.TextContent).Text)
	v, _ := s.who.Load("search")
	pr := v.(mcpauth.Principal)
	assert.Equal(t, string(accesstoken.JWT), pr.Kind)
	assert.Equal(t, p.URL, pr.Issuer)
	assert.Equal(t, agentID, pr.ClientID)
	assert.Equal(t, []string{"documents:read"}, pr.Scopes)

	// Step-up: delete needs documents:write; the client is told so (403
	// insufficient_scope, scope="documents:write"), authorizes again with
	// the union of scopes, and retries.
	res, err = cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "delete", Arguments: map[string]any{}})
	require.NoError(t, err)
	assert.False(t, res.IsError, "%v", res.Content)
	assert.EqualValues(t, 2, visits.Load(), "the client stepped up once")
	assert.EqualValues(t, 1, s.calls["delete"].Load())
	v, _ = s.who.Load("delete")
	assert.ElementsMatch(t, []string{"documents:read", "documents:write"}, v.(mcpauth.Principal).Scopes)
	tools, err = cs.ListTools(context.Background(), nil)
	require.NoError(t, err)
	assert.Len(t, tools.Tools, 2)
	// The refusal that led to the step-up named the scope and the metadata.
	var refused []audit.Event
	for _, ev := range s.events.all() {
		if ev.Reason == "insufficient_scope" {
			refused = append(refused, ev)
		}
	}
	require.Len(t, refused, 1)
	assert.Equal(t, "jwt", refused[0].Credential)

	// An mcpauth key on the same endpoint, same user.
	k, err := s.keys.Create(context.Background(), userID, keyadmin.CreateOptions{Scopes: []string{"documents:read"}})
	require.NoError(t, err)
	ks, err := connect(t, s.URL, nil, withHeader{"Authorization", "Bearer " + k.Raw, http.DefaultTransport})
	require.NoError(t, err)
	res, err = ks.CallTool(context.Background(), &mcp.CallToolParams{Name: "search", Arguments: map[string]any{}})
	require.NoError(t, err)
	assert.Equal(t, "search for "+userID, res.Content[0].(*mcp.TextContent).Text)
	v, _ = s.who.Load("search")
	assert.Equal(t, "api_key", v.(mcpauth.Principal).Kind)

	// Events are recorded after the response is written.
	assert.EventuallyWithT(t, func(c *assert.CollectT) {
		kinds := map[string]int{}
		for _, ev := range s.events.all() {
			if ev.Tool == "search" && ev.Outcome == audit.OutcomeAllowed {
				kinds[ev.Credential]++
			}
		}
		assert.Equal(c, map[string]int{"jwt": 1, "api_key": 1}, kinds)
	}, 5*time.Second, 10*time.Millisecond)
}

type withHeader struct {
	name, value string
	base        http.RoundTripper
}

func (h withHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(h.name, h.value)
	return h.base.RoundTrip(r)
}

// staticToken is an OAuthHandler with a token obtained beforehand.
type staticToken string

func (s staticToken) TokenSource(context.Context) (oauth2.TokenSource, error) {
	return oauth2.StaticTokenSource(&oauth2.Token{AccessToken: string(s), TokenType: "Bearer"}), nil
}
func (staticToken) Authorize(context.Context, *http.Request, *http.Response) error {
	return errors.New("no more authorization")
}

// TestClientCredentialsJWTAndOpaque: a confidential client's tokens by
// the client credentials grant, as a JWT and as an opaque token the
// server introspects, both call tools through the go-sdk client.
func TestClientCredentialsJWTAndOpaque(t *testing.T) {
	p := newProvider(t)
	s := newServer(t, p)
	for _, tc := range []struct {
		name, id, secret string
		kind             accesstoken.Kind
	}{
		{"jwt", serviceID, serviceKey, accesstoken.JWT},
		{"opaque", opaqueID, opaqueKey, accesstoken.Opaque},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := p.clientCredentials(t, tc.id, tc.secret, s.URL, "documents:read")
			cs, err := connect(t, s.URL, staticToken(tok), http.DefaultTransport)
			require.NoError(t, err)
			res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "search", Arguments: map[string]any{}})
			require.NoError(t, err)
			assert.Equal(t, "search for "+tc.id, res.Content[0].(*mcp.TextContent).Text)
			v, _ := s.who.Load("search")
			pr := v.(mcpauth.Principal)
			assert.Equal(t, string(tc.kind), pr.Kind)
			assert.Equal(t, []string{"documents:read"}, pr.Scopes)
			assert.Equal(t, tc.id, pr.ClientID)
		})
	}
}

// TestProviderTokensRefused: real tokens of the provider that must not
// work here are 401 and reach no tool; the provider's keys are fetched
// once, however many bad tokens arrive.
func TestProviderTokensRefused(t *testing.T) {
	p := newProvider(t)
	s := newServer(t, p)
	good := p.clientCredentials(t, serviceID, serviceKey, s.URL, "documents:read")
	call := func(tok string) int {
		body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","arguments":{}}}`
		req, _ := http.NewRequest(http.MethodPost, s.URL, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized {
			assert.Contains(t, resp.Header.Get("WWW-Authenticate"), `resource_metadata="`)
		}
		return resp.StatusCode
	}
	// The good token is accepted (session-less: the call is refused by
	// the SDK for want of initialize, but it got past the Guard).
	require.NotEqual(t, http.StatusUnauthorized, call(good))
	require.EqualValues(t, 1, p.keyFetches.Load())

	parts := strings.Split(good, ".")
	attacks := []struct {
		name  string
		token func() string
		at    time.Duration // the Guard's clock offset
	}{
		{"no resource: audience is the client", func() string { return p.clientCredentials(t, serviceID, serviceKey, "", "documents:read") }, 0},
		{"another resource", func() string {
			return p.clientCredentials(t, serviceID, serviceKey, "https://other.example/mcp", "documents:read")
		}, 0},
		{"expired", func() string { return good }, 6 * time.Minute},
		{"not yet valid", func() string { return p.clientCredentials(t, serviceID, serviceKey, s.URL, "documents:read") }, -5 * time.Minute},
		{"tampered signature", func() string {
			// The first character's six bits are all signature bits (the
			// last one's may be padding); upper-casing could leave it as it was.
			first := "A"
			if parts[2][0] == 'A' {
				first = "B"
			}
			return parts[0] + "." + parts[1] + "." + first + parts[2][1:]
		}, 0},
		{"alg none", func() string { return "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + parts[1] + "." }, 0},
		{"opaque token for another resource", func() string {
			return p.clientCredentials(t, opaqueID, opaqueKey, "https://other.example/mcp", "documents:read")
		}, 0},
		{"made-up opaque token", func() string { return "not-a-token-the-provider-issued" }, 0},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			tok := a.token()
			s.clock.Set(a.at)
			defer s.clock.Set(0)
			assert.Equal(t, http.StatusUnauthorized, call(tok))
		})
	}
	// An unknown-kid flood: the same claims, headers naming kids the
	// provider never published.
	for i := range 100 {
		hdr := `{"alg":"RS256","kid":"flood-` + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + `","typ":"JWT"}`
		assert.Equal(t, http.StatusUnauthorized, call(b64(hdr)+"."+parts[1]+"."+parts[2]))
	}
	assert.EqualValues(t, 0, s.calls["search"].Load(), "a refused token reached the tool")
	assert.EqualValues(t, 1, p.keyFetches.Load(), "JWKS fetches")
}

// TestRotationAtTheProvider: the provider rotates to a new key (and
// algorithm); tokens signed with it work at once (one fetch, past the
// refresh floor), without restarting the server.
func TestRotationAtTheProvider(t *testing.T) {
	p := newProvider(t)
	s := newServer(t, p)
	use := func() {
		tok := p.clientCredentials(t, serviceID, serviceKey, s.URL, "documents:read")
		cs, err := connect(t, s.URL, staticToken(tok), http.DefaultTransport)
		require.NoError(t, err)
		_, err = cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "search", Arguments: map[string]any{}})
		require.NoError(t, err)
	}
	use()
	require.EqualValues(t, 1, p.keyFetches.Load())
	p.rotate(t, "ES256")
	s.clock.Set(time.Minute) // past the refresh floor of the first fetch
	use()
	assert.EqualValues(t, 2, p.keyFetches.Load())
	assert.EqualValues(t, 2, s.calls["search"].Load())
}

// TestResourceMetadata: what the go-sdk client read, checked directly.
func TestResourceMetadata(t *testing.T) {
	p := newProvider(t)
	s := newServer(t, p)
	prm, err := oauthex.GetProtectedResourceMetadata(context.Background(), s.guard.ResourceMetadataURL(), s.URL, http.DefaultClient)
	require.NoError(t, err)
	assert.Equal(t, s.URL, prm.Resource)
	assert.Equal(t, []string{p.URL}, prm.AuthorizationServers)
	assert.Equal(t, []string{"documents:read", "documents:write"}, prm.ScopesSupported)
	assert.Equal(t, []string{"header"}, prm.BearerMethodsSupported)
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
