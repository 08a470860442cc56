package apikey

import (
	"bytes"
	"crypto/rand"
	"hash/crc32"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGenerateParseRoundTrip(t *testing.T) {
	t.Parallel()
	for _, prefix := range []string{"", "mcp", "acme2", "abcdefghijklmnop"} {
		raw, pk, err := Generate(rand.Reader, prefix)
		require.NoError(t, err)
		want := prefix
		if want == "" {
			want = DefaultPrefix
		}
		assert.True(t, strings.HasPrefix(raw, want+"_"))
		assert.Len(t, raw, len(want)+1+bodyLen)
		got, err := ParseKey(raw, prefix)
		require.NoError(t, err)
		assert.Equal(t, pk, got)
		assert.Len(t, got.ID, keyIDLen)
		assert.Len(t, got.Secret, secretLen)
		assert.Equal(t, got.ID+got.Secret, got.material)
	}
}

func TestGenerateIsDeterministicWithInjectedReader(t *testing.T) {
	t.Parallel()
	seed := bytes.Repeat([]byte{7, 200, 61, 250, 3}, 100)
	a, _, err := Generate(bytes.NewReader(seed), "mcp")
	require.NoError(t, err)
	b, _, err := Generate(bytes.NewReader(seed), "mcp")
	require.NoError(t, err)
	assert.Equal(t, a, b)
	// 7→7, 200%62=14→E, 61→z, 250 is rejected (>= 248), 3→3.
	assert.Equal(t, "mcp_7Ez37Ez37Ez37Ez37Ez37Ez37Ez37Ez37E", a[:len("mcp_")+34])
}

func TestGenerateWithNilReaderUsesCryptoRand(t *testing.T) {
	t.Parallel()
	a, pa, err := Generate(nil, "")
	require.NoError(t, err)
	b, _, err := Generate(nil, "")
	require.NoError(t, err)
	assert.NotEqual(t, a, b)
	got, err := ParseKey(a, DefaultPrefix)
	require.NoError(t, err)
	assert.Equal(t, pa, got)
}

func TestGenerateFailsOnShortRandomness(t *testing.T) {
	t.Parallel()
	_, _, err := Generate(bytes.NewReader(make([]byte, 10)), "mcp")
	require.Error(t, err)
	_, _, err = Generate(rand.Reader, "Bad_Prefix")
	require.ErrorContains(t, err, "invalid key prefix")
}

func TestGeneratedKeysAreDistinct(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 1000 {
		_, pk, err := Generate(rand.Reader, "")
		require.NoError(t, err)
		require.False(t, seen[pk.ID])
		seen[pk.ID] = true
	}
}

// nearMisses returns mistyped and malformed variants of a valid key.
func nearMisses(raw string) map[string]string {
	body := raw[len("mcp_"):]
	flip := func(i int) string {
		b := []byte(raw)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	swapped := []byte(raw)
	i := len("mcp_") + 5
	for swapped[i] == swapped[i+1] {
		i++
	}
	swapped[i], swapped[i+1] = swapped[i+1], swapped[i]
	return map[string]string{
		"truncated":          raw[:len(raw)-1],
		"extended":           raw + "a",
		"wrong prefix":       "pcm_" + body,
		"upper-case prefix":  "MCP_" + body,
		"dash separator":     "mcp-" + body,
		"no separator":       "mcpx" + body,
		"bad alphabet":       raw[:10] + "-" + raw[11:],
		"space inside":       raw[:10] + " " + raw[11:],
		"typo in id":         flip(len("mcp_") + 2),
		"typo in secret":     flip(len("mcp_") + keyIDLen + 3),
		"typo in checksum":   flip(len(raw) - 1),
		"transposed chars":   string(swapped),
		"empty":              "",
		"prefix only":        "mcp_",
		"unicode look-alike": raw[:len(raw)-2] + "ａ",
	}
}

func TestParseRejectsNearMisses(t *testing.T) {
	t.Parallel()
	raw, _, err := Generate(rand.Reader, "mcp")
	require.NoError(t, err)
	for name, bad := range nearMisses(raw) {
		t.Run(name, func(t *testing.T) {
			_, err := ParseKey(bad, "mcp")
			require.ErrorIs(t, err, ErrMalformedKey)
			require.ErrorIs(t, err, ErrMalformedKey)
			assert.NotContains(t, err.Error(), raw[len("mcp_")+keyIDLen:len("mcp_")+keyIDLen+secretLen], "errors must not carry the secret")
		})
	}
}

func TestScannerRegexp(t *testing.T) {
	t.Parallel()
	re := regexp.MustCompile(ScannerRegexp(""))
	assert.Equal(t, `\bmcp_[0-9A-Za-z]{42}\b`, ScannerRegexp(""))
	for range 200 {
		raw, _, err := Generate(rand.Reader, "")
		require.NoError(t, err)
		text := "config:\n  MCP_KEY=" + raw + "\n"
		assert.Equal(t, raw, re.FindString(text))
		assert.Equal(t, raw, re.FindString(`"Authorization": "Bearer `+raw+`"`))
	}
	raw, _, err := Generate(rand.Reader, "")
	require.NoError(t, err)
	for _, bad := range []string{raw[:len(raw)-1], raw + "a", raw + "_x", "x" + raw, "pcm_" + raw[4:], raw[:10] + "-" + raw[11:]} {
		assert.Empty(t, re.FindString(bad), "should not match %q", bad)
	}
	custom := regexp.MustCompile(ScannerRegexp("acme"))
	raw, _, err = Generate(rand.Reader, "acme")
	require.NoError(t, err)
	assert.Equal(t, raw, custom.FindString("key "+raw))
}

func TestParsedKeyFormattingHidesSecret(t *testing.T) {
	t.Parallel()
	raw, pk, err := Generate(rand.Reader, "")
	require.NoError(t, err)
	for _, s := range []string{pk.String(), pk.GoString()} {
		assert.NotContains(t, s, pk.Secret)
		assert.NotContains(t, s, raw)
		assert.Contains(t, s, pk.ID)
	}
}

func FuzzParseKey(f *testing.F) {
	raw, _, _ := Generate(rand.Reader, "")
	f.Add(raw)
	f.Add("mcp_")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		pk, err := ParseKey(s, "")
		if err != nil {
			return
		}
		if pk.ID+pk.Secret != s[4:4+keyIDLen+secretLen] {
			t.Fatalf("parts do not match input")
		}
	})
}

func TestChecksumMatchesCRC32(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "a", "mcp_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", strings.Repeat("z", 300)} {
		assert.Equal(t, crc32.ChecksumIEEE([]byte(s)), checksum(s))
	}
}

func TestParseKeyAllocatesNothing(t *testing.T) {
	raw, _, err := Generate(rand.Reader, "")
	require.NoError(t, err)
	bad := raw[:len(raw)-1] + "x"
	allocs := testing.AllocsPerRun(100, func() {
		_, _ = ParseKey(raw, "")
		_, _ = ParseKey(bad, "")
		_, _ = ParseKey("short", "")
	})
	assert.Zero(t, allocs)
}

func TestKeyIDOf(t *testing.T) {
	raw, err := Build("mcp", "ABCDEFGHIJKL", "012345678901234567890123")
	require.NoError(t, err)
	for _, tt := range []struct {
		raw, prefix, want string
		ok                bool
	}{
		{raw, "", "ABCDEFGHIJKL", true},
		{raw, "mcp", "ABCDEFGHIJKL", true},
		{raw[:len(raw)-1] + "!", "", "ABCDEFGHIJKL", true}, // shape only: ParseKey judges the rest
		{raw, "mcq", "", false},
		{raw[:len(raw)-1], "", "", false},
		{"mcp-" + raw[4:], "", "", false},
		{"", "", "", false},
	} {
		id, ok := KeyIDOf(tt.raw, tt.prefix)
		assert.Equal(t, tt.ok, ok, "%q", tt.raw)
		assert.Equal(t, tt.want, id, "%q", tt.raw)
	}
}
