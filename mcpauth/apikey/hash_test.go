package apikey

import (
	"crypto/hmac"
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHashMatchesStandardLibrary(t *testing.T) {
	t.Parallel()
	long := []byte(strings.Repeat("k", 100)) // longer than a block: hashed first
	h, err := NewHasher([]Pepper{{Version: 3, Secret: []byte("0123456789abcdef")}, {Version: 1, Secret: long}})
	require.NoError(t, err)
	for _, material := range []string{"", "abc", strings.Repeat("x", 36), strings.Repeat("y", 64), strings.Repeat("z", 200)} {
		got, version := h.Hash(material)
		assert.Equal(t, 3, version)
		mac := hmac.New(sha256.New, []byte("0123456789abcdef"))
		mac.Write([]byte(material))
		assert.Equal(t, mac.Sum(nil), got[:], "HMAC with current pepper, len %d", len(material))

		got, err = h.hashWith(1, material)
		require.NoError(t, err)
		mac = hmac.New(sha256.New, long)
		mac.Write([]byte(material))
		assert.Equal(t, mac.Sum(nil), got[:], "HMAC with long retired pepper, len %d", len(material))

		got, err = h.hashWith(0, material)
		require.NoError(t, err)
		want := sha256.Sum256([]byte(material))
		assert.Equal(t, want, got, "plain SHA-256, len %d", len(material))
	}
}

func TestHasherVerify(t *testing.T) {
	t.Parallel()
	oldPepper := Pepper{Version: 1, Secret: []byte("old-pepper-16byte")}
	newPepper := Pepper{Version: 2, Secret: []byte("new-pepper-16byte")}
	before, err := NewHasher([]Pepper{oldPepper})
	require.NoError(t, err)
	sum, v := before.Hash("material")
	require.Equal(t, 1, v)

	after, err := NewHasher([]Pepper{newPepper, oldPepper})
	require.NoError(t, err)
	ok, err := after.Verify(1, "material", sum[:])
	require.NoError(t, err)
	assert.True(t, ok, "a retired pepper still verifies the keys it hashed")
	ok, err = after.Verify(1, "materiaX", sum[:])
	require.NoError(t, err)
	assert.False(t, ok)
	ok, err = after.Verify(2, "material", sum[:])
	require.NoError(t, err)
	assert.False(t, ok, "the same material under another pepper is a different hash")

	dropped, err := NewHasher([]Pepper{newPepper})
	require.NoError(t, err)
	_, err = dropped.Verify(1, "material", sum[:])
	require.ErrorIs(t, err, ErrUnknownPepper)

	plain, err := NewHasher(nil)
	require.NoError(t, err)
	psum, v := plain.Hash("material")
	assert.Equal(t, 0, v)
	ok, err = plain.Verify(0, "material", psum[:])
	require.NoError(t, err)
	assert.True(t, ok)
	ok, err = plain.Verify(0, "material", psum[:16])
	require.NoError(t, err)
	assert.False(t, ok, "a truncated stored hash never matches")
}

func TestPepperValidation(t *testing.T) {
	t.Parallel()
	good := []byte("0123456789abcdef")
	tests := []struct {
		name    string
		peppers []Pepper
		wantErr string
	}{
		{"zero version", []Pepper{{Version: 0, Secret: good}}, "version must be positive"},
		{"short secret", []Pepper{{Version: 1, Secret: []byte("short")}}, "at least 16 bytes"},
		{"duplicate version", []Pepper{{Version: 1, Secret: good}, {Version: 1, Secret: good}}, "given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewHasher(tt.peppers)
			require.ErrorContains(t, err, tt.wantErr)
			assert.NotContains(t, err.Error(), string(good))
		})
	}
	p := Pepper{Version: 7, Secret: good}
	assert.NotContains(t, p.String(), string(good))
	assert.NotContains(t, p.GoString(), string(good))
}

func TestParsePepper(t *testing.T) {
	t.Parallel()
	p, err := ParsePepper(" 3:0123456789abcdef:with-colon ")
	require.NoError(t, err)
	assert.Equal(t, Pepper{Version: 3, Secret: []byte("0123456789abcdef:with-colon")}, p)
	for _, bad := range []string{"", "nocolon0123456789abcdef", "0:0123456789abcdef", "x:0123456789abcdef", "1:short"} {
		_, err := ParsePepper(bad)
		require.Error(t, err, bad)
		if len(bad) > 2 {
			assert.NotContains(t, err.Error(), bad[2:], "the secret is not echoed")
		}
	}
}
