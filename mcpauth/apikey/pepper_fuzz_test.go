package apikey_test

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/store"
)

// pepperErrors are the only messages ParsePepper may return: none of them
// can carry the secret.
var pepperErrors = regexp.MustCompile(`^mcpauth: (pepper must be written "<version>:<secret>"|pepper version must be a positive integer|pepper version [1-9][0-9]*: secret must be at least 16 bytes)$`)

// FuzzParsePepper checks that ParsePepper never panics, never puts the
// secret in an error or in the Pepper's printed forms, and only returns
// peppers that New accepts and that survive a round trip.
func FuzzParsePepper(f *testing.F) {
	for _, s := range []string{
		"1:0123456789abcdef", "42:" + strings.Repeat("s", 64), " 7:secret-with-:colon-inside \n",
		"0:0123456789abcdef", "-1:0123456789abcdef", "+1:0123456789abcdef", "01:0123456789abcdef",
		"1:short", "1:", ":0123456789abcdef", "0123456789abcdef", "", "x:0123456789abcdef",
		"99999999999999999999:0123456789abcdef", "1: leading-space-secret", "1:\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f",
		"1:ſecretſecretſecret",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := apikey.ParsePepper(s)
		if err != nil {
			if !pepperErrors.MatchString(err.Error()) {
				t.Fatalf("unexpected error text %q", err)
			}
			return
		}
		if p.Version <= 0 || len(p.Secret) < 16 {
			t.Fatalf("accepted version %d with a %d-byte secret", p.Version, len(p.Secret))
		}
		printed := "apikey.Pepper{Version:" + strconv.Itoa(p.Version) + "}"
		for _, out := range []string{fmt.Sprint(p), fmt.Sprintf("%v %+v %#v %s", p, p, p, p)} {
			if strings.Contains(out, string(p.Secret)) && !strings.Contains(printed, string(p.Secret)) {
				t.Fatalf("printed form %q shows the secret", out)
			}
		}
		again, err := apikey.ParsePepper(fmt.Sprintf("%d:%s", p.Version, p.Secret))
		if err != nil || again.Version != p.Version || string(again.Secret) != string(p.Secret) {
			t.Fatalf("round trip of version %d: %v, %v", p.Version, again, err)
		}
		g, err := mcpauth.New(store.NewMemory(), &mcpauth.Options{Peppers: []apikey.Pepper{p}, RevocationPollInterval: -1})
		if err != nil {
			t.Fatalf("New refuses what ParsePepper accepted: %v", err)
		}
		_ = g.Close(context.Background())
	})
}
