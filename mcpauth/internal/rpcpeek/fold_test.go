package rpcpeek

import (
	"fmt"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// watchedByLevel lists, for each object rpcpeek reads, the keys the policy
// or the audit depends on, and a JSON value an attacker would hide under a
// variant of each. It is written out here rather than taken from the
// package's tables, so that dropping a key from them fails the tests.
var watchedByLevel = []struct {
	level string
	keys  map[string]string // key -> hidden value
	body  func(extra string) string
}{
	{"message", map[string]string{
		"method": `"tools/call"`,
		"id":     `2`,
		"params": `{"name":"delete_document","arguments":{}}`,
	}, func(extra string) string {
		return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_documents","arguments":{}}` + extra + `}`
	}},
	{"params", map[string]string{
		"name":            `"delete_document"`,
		"uri":             `"docs://users/alice/api_keys"`,
		"ref":             `{"type":"ref/prompt","name":"admin_report"}`,
		"protocolVersion": `"2024-11-05"`,
		"arguments":       `{"q":"DROP TABLE documents"}`,
	}, func(extra string) string {
		return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_documents","uri":"docs://documents/1",` +
			`"ref":{"type":"ref/prompt","name":"summarize"},"protocolVersion":"2025-06-18","arguments":{"q":"harmless"}` + extra + `}}`
	}},
	{"params.ref", map[string]string{
		"type": `"ref/resource"`,
		"name": `"admin_report"`,
		"uri":  `"docs://users/alice/api_keys"`,
	}, func(extra string) string {
		return `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"summarize","uri":"docs://documents/1"` + extra + `}}}`
	}},
}

// foldOrbit returns the runes other than r that unicode.SimpleFold puts in
// r's orbit: what bytes.EqualFold, encoding/json and segmentio's
// case-insensitive mode treat as the same letter.
func foldOrbit(r rune) []rune {
	var out []rune
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		out = append(out, f)
	}
	return out
}

// nonASCIIFolds returns every non-ASCII rune whose SimpleFold orbit holds an
// ASCII letter (U+017F ſ and U+212A Kelvin sign K, as of Unicode 15), found
// by scanning every rune so that a new Unicode version cannot add one
// unnoticed.
func nonASCIIFolds() []rune {
	var out []rune
	for r := rune(utf8.RuneSelf); r <= unicode.MaxRune; r++ {
		for _, f := range foldOrbit(r) {
			if f < utf8.RuneSelf && unicode.IsLetter(f) {
				out = append(out, r)
				break
			}
		}
	}
	return out
}

// escapeRune spells r (in the BMP, as every folding rune is) as a JSON
// \u escape.
func escapeRune(r rune) string {
	return fmt.Sprintf(`\u%04X`, r)
}

// foldVariants returns spellings of key (raw and escaped) that a
// case-insensitive decoder matches to it: each letter replaced by each rune
// of its fold orbit (other ASCII case, ſ for s, K for k), the whole key in
// upper case, and the exact key with one letter escaped (which every decoder
// reads as the key itself).
func foldVariants(key string) []string {
	var out []string
	for i, c := range key {
		for _, f := range foldOrbit(c) {
			out = append(out, key[:i]+string(f)+key[i+1:], key[:i]+escapeRune(f)+key[i+1:])
		}
		out = append(out, key[:i]+escapeRune(c)+key[i+1:])
	}
	return append(out, strings.ToUpper(key))
}

func TestNonASCIIFolds(t *testing.T) {
	t.Parallel()
	require.Equal(t, []rune{'\u017f', '\u212a'}, nonASCIIFolds(), "Unicode changed: check the seeds and the package doc")
}

// TestPeekRefusesFoldVariants is the attack table of issue 10 finding 1:
// a watched key given a second time in any spelling a decoder could match
// to it (case, Unicode simple folding, escapes) must be refused, never
// resolved; otherwise the policy reads one value and the server another.
// Keys spelt only as a fold variant are refused too: encoding/json would
// read them as the watched key.
func TestPeekRefusesFoldVariants(t *testing.T) {
	t.Parallel()
	type attack struct{ name, body string }
	attacks := []attack{
		{"issue body: param\\u017f", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_documents","arguments":{}},"param\u017f":{"name":"delete_document","arguments":{}}}`},
		{"issue body, raw ſ", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_documents","arguments":{}},"paramſ":{"name":"delete_document","arguments":{}}}`},
		{"only the folded key", `{"jsonrpc":"2.0","id":1,"method":"tools/call","param\u017f":{"name":"delete_document","arguments":{}}}`},
		{"arguments and Arguments", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_documents","arguments":{"q":"harmless"},"Arguments":{"q":"DROP TABLE"}}}`},
		{"Arguments first", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_documents","Arguments":{"q":"DROP TABLE"},"arguments":{"q":"harmless"}}}`},
		{"argument\\u017f", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_documents","arguments":{"q":"harmless"},"argument\u017f":{"q":"DROP TABLE"}}}`},
		{"duplicate arguments", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_documents","arguments":{"q":"harmless"},"arguments":{"q":"DROP TABLE"}}}`},
		{"in a batch element", `[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"search_documents"},"param\u017f":{"name":"delete_document"}}]`},
	}
	for _, lv := range watchedByLevel {
		for key, hidden := range lv.keys {
			for _, v := range foldVariants(key) {
				attacks = append(attacks,
					attack{lv.level + "/" + v + " after", lv.body(`,"` + v + `":` + hidden)},
					attack{lv.level + "/" + v + " twice", lv.body(`,"` + v + `":` + hidden + `,"` + v + `":` + hidden)},
				)
			}
			attacks = append(attacks, attack{lv.level + "/" + key + " duplicate", lv.body(`,"` + key + `":` + hidden)})
		}
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			t.Parallel()
			var buf [2]Message
			msgs, _, err := Peek([]byte(a.body), buf[:])
			require.ErrorIs(t, err, ErrInvalidRequest, "accepted as %+v", msgs)
		})
	}
}

// TestPeekAcceptsLookalikesThatFoldNowhere: runes that look like a watched
// key's letters but fold to no ASCII letter are other keys to every
// decoder, so they are skipped like any unknown key.
func TestPeekAcceptsLookalikesThatFoldNowhere(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"nаme" /* Cyrillic а */, "\u0130d" /* İ */, "\u0131d" /* ı */, "param\u017f\u017f", "\u212Aey", "nam", "names", "name\\u0000"} {
		body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_documents","` + key + `":"delete_document"}}`
		var buf [1]Message
		msgs, _, err := Peek([]byte(body), buf[:])
		require.NoError(t, err, key)
		require.Equal(t, "search_documents", msgs[0].Name, key)
	}
}
