package mcpauth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/mcpauth/accesstoken"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/store"
)

// FuzzCredentialRouting sends arbitrary bearer credentials through Require
// on a Guard with OAuth and checks where each one went: a credential shaped
// like a key (whatever its checksum) never reaches the OAuth verifier (so
// it is never sent to an introspection endpoint); the verifier is asked
// with the kind the shape names (three dot-separated parts, the first two
// non-empty: a JWT; anything else: opaque), never for a token longer than
// maxTokenLen; and the handler runs only for the one valid key and the one
// valid token, with the principal of the right kind.
func FuzzCredentialRouting(f *testing.F) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	const validJWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"
	ks := store.NewMemory()
	pepper := apikey.Pepper{Version: 1, Secret: []byte("fuzz pepper, at least 32 bytes long")}
	h, err := apikey.NewHasher([]apikey.Pepper{pepper})
	if err != nil {
		f.Fatal(err)
	}
	raw, pk, err := apikey.Generate(nil, "")
	if err != nil {
		f.Fatal(err)
	}
	sum, version := h.Hash(pk.ID + pk.Secret)
	if err := ks.CreateKey(context.Background(), store.Key{ID: pk.ID, UserID: "u-key", Hash: sum[:], PepperVersion: version, CreatedAt: now}); err != nil {
		f.Fatal(err)
	}
	tokens := &fakeTokens{tokens: map[string]accesstoken.Token{
		validJWT: {Subject: "u-jwt", Issuer: "https://issuer.example", ExpiresAt: now.Add(time.Hour), CacheUntil: now.Add(time.Hour)},
	}}
	g, err := New(ks, &Options{OAuth: tokens, Peppers: []apikey.Pepper{pepper}, Now: func() time.Time { return now }})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = g.Close(context.Background()) })
	var ran bool
	var got Principal
	handler := g.Require(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		ran = true
		got, _ = PrincipalFrom(r.Context())
	}))

	// The setup works: the valid key and the valid token reach the handler.
	for _, cred := range []string{raw, validJWT} {
		ran = false
		r := httptest.NewRequest(http.MethodGet, "/mcp", nil)
		r.Header.Set("Authorization", "Bearer "+cred)
		handler.ServeHTTP(httptest.NewRecorder(), r)
		if !ran {
			f.Fatalf("the handler did not run for the valid %s", g.kindOf(cred))
		}
	}

	for _, s := range []string{
		raw, raw[:len(raw)-1] + "x", validJWT, validJWT + ".", "a.b.", ".b.c", "a..c", "a.b.c.d",
		"eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", "opaque-token", "mcp_" + strings.Repeat("a", 40),
		"a." + strings.Repeat("b", maxTokenLen) + ".c", raw + "." + raw + ".x", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cred string) {
		ran, got = false, Principal{}
		tokens.calls.Store(0)
		tokens.kinds = tokens.kinds[:0]
		r := httptest.NewRequest(http.MethodGet, "/mcp", nil)
		r.Header["Authorization"] = []string{"Bearer " + cred}
		handler.ServeHTTP(httptest.NewRecorder(), r)

		cred = strings.TrimSpace(cred) // what the Guard reads from the header
		keyShaped := apikey.HasKeyShape(cred, "")
		parts := strings.Split(cred, ".")
		jwtShaped := len(parts) == 3 && parts[0] != "" && parts[1] != ""
		want := accesstoken.Opaque
		switch {
		case keyShaped:
			want = kindAPIKey
		case jwtShaped:
			want = accesstoken.JWT
		}
		if k := g.kindOf(cred); k != want {
			t.Fatalf("kindOf = %q, want %q", k, want)
		}
		calls := tokens.calls.Load()
		if calls > 0 && (keyShaped || len(cred) > maxTokenLen) {
			t.Fatalf("the OAuth verifier was asked about a key-shaped or oversized credential (key shape %v, %d bytes)", keyShaped, len(cred))
		}
		for _, k := range tokens.kinds {
			if k != want {
				t.Fatalf("the verifier was asked for a %q, the shape is %q", k, want)
			}
		}
		if ran {
			switch {
			case cred == raw && got.Kind == string(kindAPIKey) && got.UserID == "u-key":
			case cred == validJWT && got.Kind == string(accesstoken.JWT) && got.UserID == "u-jwt":
			default:
				t.Fatalf("the handler ran for %q as %+v", cred, got)
			}
		}
	})
}
