package oauth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/accesstoken"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/mcpauth/oauth"
	"github.com/mcpauth/mcpauth/store"
)

// BenchmarkWarmPath compares the Guard's warm path for an mcpauth key (cached
// record, HMAC, constant-time compare) with that for a JWT (cached verdict
// keyed by the token's SHA-256), on one Guard that accepts both.
//
//	go test ./mcpauth/oauth -run '^$' -bench 'WarmPath|ColdJWT' -count 6
func BenchmarkWarmPath(b *testing.B) {
	iss := newTestIssuer(b)
	iss.addKey(b, "k1", "RS256", true)
	v, err := oauth.New(resource, []oauth.Issuer{{URL: iss.URL()}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	ks := store.NewMemory()
	pepper, _ := apikey.ParsePepper("1:" + "0123456789abcdef0123456789abcdef")
	g, err := mcpauth.New(ks, &mcpauth.Options{OAuth: v, Peppers: []apikey.Pepper{pepper}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = g.Close(context.Background()) })
	m, err := keyadmin.New(ks, &keyadmin.Options{Peppers: []apikey.Pepper{pepper}, OnChange: g.Forget})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Close(context.Background()) })
	k, err := m.Create(context.Background(), "user-1", keyadmin.CreateOptions{Scopes: []string{"documents:read"}})
	if err != nil {
		b.Fatal(err)
	}
	tok := iss.mint(b, "k1", "RS256", "at+jwt", iss.claims(resource, time.Now()))
	for _, c := range []struct{ name, cred string }{{"api_key", k.Raw}, {"jwt", tok}} {
		b.Run(c.name, func(b *testing.B) {
			r := httptest.NewRequest(http.MethodGet, "/mcp", nil)
			r.Header.Set("Authorization", "Bearer "+c.cred)
			if _, err := g.Authenticate(r); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ReportMetric(float64(len(c.cred)), "credential-bytes")
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := g.Authenticate(r); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkColdJWT is a full verification (parse, issuer, typ, cached key,
// signature, claims) with no cached verdict, per algorithm.
func BenchmarkColdJWT(b *testing.B) {
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		b.Run(alg, func(b *testing.B) {
			iss := newTestIssuer(b)
			iss.addKey(b, "k", alg, true)
			v, err := oauth.New(resource, []oauth.Issuer{{URL: iss.URL()}}, nil)
			if err != nil {
				b.Fatal(err)
			}
			now := time.Now()
			tok := iss.mint(b, "k", alg, "at+jwt", iss.claims(resource, now))
			ctx := context.Background()
			if _, err := v.VerifyToken(ctx, tok, accesstoken.JWT, now); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.VerifyToken(ctx, tok, accesstoken.JWT, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
