package mcpauth_test

import (
	"context"
	"encoding/hex"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
)

// legacyShape is the documented legacy key shape (Options.LegacyKeyPattern's
// godoc), written independently of the implementation.
var legacyShape = regexp.MustCompile(`^[A-Za-z0-9._~+/-]+=*$`)

// FuzzLegacyKey drives the legacy-key path of a Guard that accepts legacy
// keys, with caching off so that every lookup is visible: a credential
// reaches the store if and only if it is a current-format key or has the
// documented legacy shape, and only the exact imported or issued keys
// authenticate (a legacy record never matches a current key, nor back).
func FuzzLegacyKey(f *testing.F) {
	s := newCountingStore()
	g, c, _ := guardOn(f, s, &mcpauth.Options{AcceptLegacyKeys: true, CacheTTL: -1, NegativeCacheTTL: -1})
	legacy := "sk_live_3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c"
	sum := apikey.LegacyKeyHash(legacy)
	if _, err := managerFor(f, g, s, c.Now).ImportLegacy(context.Background(), "alice", hex.EncodeToString(sum[:]), keyadmin.CreateOptions{}); err != nil {
		f.Fatal(err)
	}
	current, err := managerFor(f, g, s, c.Now).Create(context.Background(), "bob", keyadmin.CreateOptions{ExpiresIn: 1000 * time.Hour})
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		legacy, legacy + "x", strings.ToUpper(legacy), legacy[:16], legacy[:15], " " + legacy + " ",
		current.Raw, badChecksum(current.Raw), current.Raw[:len(current.Raw)-1], "lg" + current.Raw[4:],
		"mcp_" + strings.Repeat("0123456789abcdef", 4), "dGhpcyBpcyBhIGtleQ==", "abc=def=ghijklmnop",
		strings.Repeat("a", 256), strings.Repeat("a", 257), "sk_live ſecret ſecret", "",
	} {
		f.Add(seed)
	}
	prefixed := regexp.MustCompile(`^mcp_[0-9A-Za-z]{42}$`)
	f.Fuzz(func(t *testing.T, raw string) {
		before := s.lookups.Load()
		p, err := authWith(g, raw)
		looked := s.lookups.Load() != before
		tok := strings.TrimSpace(raw)
		if err == nil && tok != legacy && tok != current.Raw {
			t.Fatalf("%q authenticated as %s", raw, p.KeyID)
		}
		if (tok == legacy || tok == current.Raw) && err != nil {
			t.Fatalf("the real key failed: %v", err)
		}
		_, perr := apikey.ParseKey(tok, "")
		want := perr == nil || len(tok) >= 16 && len(tok) <= 256 && legacyShape.MatchString(tok) && !prefixed.MatchString(tok)
		if looked != want {
			t.Fatalf("%q: store lookup %v, want %v", raw, looked, want)
		}
	})
}
