package apikey

import (
	"crypto/rand"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"regexp"
	"unsafe"
)

// Key layout. A raw key is
//
//	<prefix>_<key ID: 12><secret: 24><checksum: 6>
//
// where the last 42 characters are base62 (0-9, A-Z, a-z). The key ID is
// public (it is how the store finds the record, and what logs and UIs show);
// the secret carries 24 × log2(62) ≈ 142 bits of entropy from crypto/rand;
// the checksum is CRC32 (IEEE) of everything before it, so a mistyped or
// truncated key is rejected without touching the store.
const (
	// DefaultPrefix is the key prefix used when none is configured.
	DefaultPrefix = "mcp"

	keyIDLen    = 12
	secretLen   = 24
	checksumLen = 6
	bodyLen     = keyIDLen + secretLen + checksumLen
	maxPrefix   = 16
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// base62Index maps a byte to its base62 value, or 0xff if it is not a base62 digit.
var base62Index = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i := range len(base62) {
		t[base62[i]] = byte(i)
	}
	return t
}()

var prefixPattern = regexp.MustCompile(`^[a-z][a-z0-9]{1,15}$`)

// ScannerRegexp returns the regular expression a secret scanner (gitleaks,
// GitHub secret scanning, trufflehog) can use to find keys with the given
// prefix; an empty prefix means DefaultPrefix. For the default prefix it is
//
//	\bmcp_[0-9A-Za-z]{42}\b
//
// The checksum lets a scanner confirm a match offline: see ParseKey.
func ScannerRegexp(prefix string) string {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return `\b` + regexp.QuoteMeta(prefix) + `_[0-9A-Za-z]{` + fmt.Sprint(bodyLen) + `}\b`
}

// ParsedKey is a raw key split into its parts. Secret is sensitive: never log
// it. ParsedKey's String method hides it.
type ParsedKey struct {
	// ID is the public key ID.
	ID string
	// Secret is the secret part of the key.
	Secret string
	// material is ID+Secret, the bytes that are hashed.
	material string
}

// String returns the key ID with the secret elided, safe to log.
func (p ParsedKey) String() string { return p.ID + "…" }

// GoString keeps the secret out of %#v output.
func (p ParsedKey) GoString() string {
	return "apikey.ParsedKey{ID:" + fmt.Sprintf("%q", p.ID) + ", Secret:<redacted>}"
}

// ParseKey checks a raw key's prefix, length, alphabet and checksum and
// splits it. It touches no store and allocates nothing. Every failure
// wraps ErrMalformedKey, and no error includes the key itself.
func ParseKey(raw, prefix string) (ParsedKey, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	n := len(prefix) + 1 + bodyLen
	switch {
	case len(raw) != n:
		return ParsedKey{}, errMalformed("wrong length")
	case raw[:len(prefix)] != prefix || raw[len(prefix)] != '_':
		return ParsedKey{}, errMalformed("wrong prefix")
	}
	body := raw[len(prefix)+1:]
	for i := range len(body) {
		if base62Index[body[i]] == 0xff {
			return ParsedKey{}, errMalformed("character outside the base62 alphabet")
		}
	}
	want := checksum(raw[:n-checksumLen])
	var got uint64
	for i := range checksumLen {
		got = got*62 + uint64(base62Index[body[keyIDLen+secretLen+i]])
	}
	if got != uint64(want) {
		return ParsedKey{}, errMalformed("bad checksum")
	}
	return ParsedKey{
		ID:       body[:keyIDLen],
		Secret:   body[keyIDLen : keyIDLen+secretLen],
		material: body[:keyIDLen+secretLen],
	}, nil
}

// KeyIDOf returns the key ID of raw when raw has the shape of a key with
// this prefix ("" means DefaultPrefix): its length, prefix and separator.
// It checks neither the alphabet nor the checksum, so the ID is only fit
// for finding what a full ParseKey of the same raw key decided earlier
// (the Guard's cache of verified keys); anything else must use ParseKey.
func KeyIDOf(raw, prefix string) (string, bool) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if len(raw) != len(prefix)+1+bodyLen || raw[:len(prefix)] != prefix || raw[len(prefix)] != '_' {
		return "", false
	}
	return raw[len(prefix)+1 : len(prefix)+1+keyIDLen], true
}

// errMalformed returns a preallocated ErrMalformedKey variant, so that
// rejecting attacker input allocates nothing.
func errMalformed(why string) error {
	if e, ok := malformedErrors[why]; ok {
		return e
	}
	return &malformedError{msg: "mcpauth: malformed key: " + why}
}

var malformedErrors = func() map[string]error {
	m := map[string]error{}
	for _, why := range []string{"wrong length", "wrong prefix", "character outside the base62 alphabet", "bad checksum", "credential too long"} {
		m[why] = &malformedError{msg: "mcpauth: malformed key: " + why}
	}
	return m
}()

// checksum is CRC32-IEEE of s, computed over the string's bytes in place
// (crc32's table-sliced or CLMUL code, not a byte-at-a-time loop) so that
// parsing allocates nothing.
func checksum(s string) uint32 {
	return crc32.ChecksumIEEE(unsafe.Slice(unsafe.StringData(s), len(s)))
}

// encodeChecksum writes sum as 6 base62 digits, most significant first.
func encodeChecksum(sum uint32) [checksumLen]byte {
	var cs [checksumLen]byte
	for i := checksumLen - 1; i >= 0; i-- {
		cs[i] = base62[sum%62]
		sum /= 62
	}
	return cs
}

// Generate returns a new raw key with the given prefix (empty means
// DefaultPrefix), and its parts. Randomness comes from r; nil means
// crypto/rand. It fails if r fails or the prefix is invalid.
func Generate(r io.Reader, prefix string) (string, ParsedKey, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if r == nil {
		r = rand.Reader
	}
	if err := CheckPrefix(prefix); err != nil {
		return "", ParsedKey{}, err
	}
	buf := make([]byte, 0, len(prefix)+1+bodyLen)
	buf = append(buf, prefix...)
	buf = append(buf, '_')
	var err error
	if buf, err = appendRandomBase62(buf, r, keyIDLen+secretLen); err != nil {
		return "", ParsedKey{}, err
	}
	cs := encodeChecksum(checksum(string(buf)))
	buf = append(buf, cs[:]...)
	raw := string(buf)
	p, err := ParseKey(raw, prefix)
	if err != nil { // cannot happen: we just built it
		return "", ParsedKey{}, fmt.Errorf("mcpauth: generated key does not parse: %w", err)
	}
	return raw, p, nil
}

// appendRandomBase62 appends n uniformly random base62 digits read from r.
// Bytes >= 248 are rejected so that every digit is equally likely.
func appendRandomBase62(dst []byte, r io.Reader, n int) ([]byte, error) {
	var chunk [64]byte
	for n > 0 {
		if _, err := io.ReadFull(r, chunk[:]); err != nil {
			return nil, fmt.Errorf("mcpauth: read randomness: %w", err)
		}
		for _, b := range chunk {
			if b >= 248 {
				continue
			}
			dst = append(dst, base62[b%62])
			if n--; n == 0 {
				break
			}
		}
	}
	return dst, nil
}

// ErrMalformedKey wraps every ParseKey failure. The Guard reports it as
// mcpauth.ErrInvalidKey (a 401 like any other bad key).
var ErrMalformedKey = errors.New("mcpauth: malformed key")

// malformedError is one reason a key does not parse; it wraps ErrMalformedKey.
type malformedError struct{ msg string }

func (e *malformedError) Error() string { return e.msg }
func (e *malformedError) Unwrap() error { return ErrMalformedKey }

// CheckPrefix reports whether prefix is a valid key prefix: 2-16 lower-case
// letters and digits, starting with a letter.
func CheckPrefix(prefix string) error {
	if !prefixPattern.MatchString(prefix) {
		return fmt.Errorf("mcpauth: invalid key prefix %q: want 2-16 lower-case letters and digits, starting with a letter", prefix)
	}
	return nil
}

// Material is the part of the key that is hashed (key ID and secret). It
// is as sensitive as the secret.
func (p ParsedKey) Material() string { return p.material }

// HasKeyShape reports whether raw has the layout of a key with the given
// prefix (empty means DefaultPrefix): the prefix, "_" and 42 base62
// characters, whatever its checksum. A credential of this shape that fails
// ParseKey is a typo or a forgery, never a key of another scheme.
func HasKeyShape(raw, prefix string) bool {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if len(raw) != len(prefix)+1+bodyLen || raw[:len(prefix)] != prefix || raw[len(prefix)] != '_' {
		return false
	}
	for i := len(prefix) + 1; i < len(raw); i++ {
		if base62Index[raw[i]] == 0xff {
			return false
		}
	}
	return true
}

// Build assembles a raw key from chosen parts (a 12-character key ID and a
// 24-character secret, both base62) and appends their checksum. It is for
// tools and tests that need a well-formed key with a known ID; Generate is
// the way to make a real one.
func Build(prefix, id, secret string) (string, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if err := CheckPrefix(prefix); err != nil {
		return "", err
	}
	if len(id) != keyIDLen || len(secret) != secretLen {
		return "", fmt.Errorf("mcpauth: a key ID has %d characters and a secret %d", keyIDLen, secretLen)
	}
	for _, s := range [...]string{id, secret} {
		for i := range len(s) {
			if base62Index[s[i]] == 0xff {
				return "", errors.New("mcpauth: a key ID and a secret are base62 (0-9, A-Z, a-z)")
			}
		}
	}
	head := prefix + "_" + id + secret
	cs := encodeChecksum(checksum(head))
	return head + string(cs[:]), nil
}
