package rpcpeek

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
)

// foldingRunes returns every non-ASCII rune whose simple case-folding orbit
// holds an ASCII letter, with that letter: encoding/json (and
// bytes.EqualFold) match such a rune to the letter in a key.
func foldingRunes() map[rune]rune {
	out := map[rune]rune{}
	for c := 'A'; c <= 'z'; c++ {
		if !unicode.IsLetter(c) {
			continue
		}
		for r := unicode.SimpleFold(c); r != c; r = unicode.SimpleFold(r) {
			if r >= utf8.RuneSelf {
				out[r] = c
			}
		}
	}
	return out
}

func TestFoldingRunes(t *testing.T) {
	t.Parallel()
	got := foldingRunes()
	assert.Equal(t, 's', unicode.ToLower(got['\u017f']), "ſ folds to s")
	assert.Equal(t, 'k', unicode.ToLower(got['\u212a']), "the Kelvin sign folds to k")
	assert.Len(t, got, 2, "Unicode 15: ſ and K are the only non-ASCII runes folding to ASCII letters; a new one must be added to the fuzz seeds")
}

// foldedKeys returns every spelling of key in which one ASCII letter is
// replaced by a non-ASCII rune that folds to it, raw and \u-escaped.
func foldedKeys(key string) []string {
	var out []string
	for r, c := range foldingRunes() {
		for i := range len(key) {
			if unicode.ToLower(rune(key[i])) != unicode.ToLower(c) {
				continue
			}
			out = append(out, key[:i]+string(r)+key[i+1:], key[:i]+fmt.Sprintf(`\u%04x`, r)+key[i+1:])
		}
	}
	return out
}

// TestPeekFoldingAttacks is the regression test for finding 1 of the
// security issue: a key that a decoder folds onto a watched key must be
// refused, whether it is raw UTF-8 or escaped, at every level Peek reads.
func TestPeekFoldingAttacks(t *testing.T) {
	t.Parallel()
	attacks := []struct{ name, body string }{
		{"the reported body", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_documents","arguments":{}},"param\u017f":{"name":"delete_document","arguments":{}}}`},
		{"raw long s", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_documents"},"paramſ":{"name":"delete_document"}}`},
	}
	// Every watched key, with every folding spelling, at its level.
	wrap := map[string]func(k string) string{
		"method": func(k string) string {
			return `{"jsonrpc":"2.0","id":1,"method":"tools/list","` + k + `":"tools/call"}`
		},
		"params": func(k string) string {
			return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"},"` + k + `":{"name":"b"}}`
		},
		"name": func(k string) string {
			return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","` + k + `":"b"}}`
		},
		"uri": func(k string) string {
			return `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"a","` + k + `":"b"}}`
		},
		"arguments": func(k string) string {
			return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{},"` + k + `":{"q":"x"}}}`
		},
		"protocolVersion": func(k string) string {
			return `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"a","` + k + `":"b"}}`
		},
		"ref type": func(k string) string {
			return `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"a","` + k + `":"b"}}}`
		},
	}
	keyOf := map[string]string{"ref type": "type"}
	for level, mk := range wrap {
		key := level
		if k, ok := keyOf[level]; ok {
			key = k
		}
		for _, k := range foldedKeys(key) {
			attacks = append(attacks, struct{ name, body string }{level + " as " + k, mk(k)})
		}
	}
	// "id" has no letter that folds from outside ASCII; a case variant is
	// the attack there.
	attacks = append(attacks, struct{ name, body string }{"ID", `{"jsonrpc":"2.0","id":1,"ID":2,"method":"ping"}`})
	for _, tc := range attacks {
		t.Run(tc.name, func(t *testing.T) {
			var buf [2]Message
			_, _, err := Peek([]byte(tc.body), buf[:])
			assert.True(t, errors.Is(err, ErrInvalidRequest), "want ErrInvalidRequest, got %v for %s", err, tc.body)
		})
	}
	// Unwatched keys with folding runes are fine (they carry nothing the
	// policy reads).
	var buf [2]Message
	msgs, _, err := Peek([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"\u017f":1,"paramſ":2}},"extra\u212a":1}`), buf[:])
	assert.NoError(t, err)
	assert.Equal(t, "a", msgs[0].Name)
	assert.True(t, strings.Contains(string(msgs[0].Arguments), `paramſ`))
}
