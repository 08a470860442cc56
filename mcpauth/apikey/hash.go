package apikey

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Pepper is a server-side secret mixed into every key hash with
// HMAC-SHA256. Keep it outside the database (an environment variable, a
// secret manager), so that a leaked database alone cannot be used to test
// guessed keys. Version identifies it in key records; it must be positive
// and never reused for a different secret.
type Pepper struct {
	Version int
	Secret  []byte
}

// String hides the secret.
func (p Pepper) String() string { return fmt.Sprintf("apikey.Pepper{Version:%d}", p.Version) }

// GoString hides the secret from %#v.
func (p Pepper) GoString() string { return p.String() }

// minPepperLen is the shortest pepper accepted: 128 bits.
const minPepperLen = 16

// Hasher hashes key material with the current pepper and verifies it with
// whichever pepper a record names. It is immutable and safe for concurrent
// use. The Guard and the key manager each build one from the same peppers.
type Hasher struct {
	current int // version of the pepper new keys get; 0 = plain SHA-256
	peppers map[int]*hmacKey
}

// hmacKey holds a pepper's precomputed HMAC pads.
type hmacKey struct {
	ipad, opad [sha256.BlockSize]byte
}

// NewHasher builds a Hasher from peppers, the first of which is current.
// No peppers means plain SHA-256 (records with PepperVersion 0). It fails
// for a version that is not positive or is given twice, and for a secret
// shorter than 16 bytes.
func NewHasher(peppers []Pepper) (*Hasher, error) {
	h := &Hasher{peppers: make(map[int]*hmacKey, len(peppers))}
	for i, p := range peppers {
		switch {
		case p.Version <= 0:
			return nil, fmt.Errorf("mcpauth: pepper %d: version must be positive, got %d", i, p.Version)
		case len(p.Secret) < minPepperLen:
			return nil, fmt.Errorf("mcpauth: pepper version %d: secret must be at least %d bytes", p.Version, minPepperLen)
		case h.peppers[p.Version] != nil:
			return nil, fmt.Errorf("mcpauth: pepper version %d given twice", p.Version)
		}
		h.peppers[p.Version] = newHMACKey(p.Secret)
		if i == 0 {
			h.current = p.Version
		}
	}
	return h, nil
}

func newHMACKey(secret []byte) *hmacKey {
	k := secret
	if len(k) > sha256.BlockSize {
		sum := sha256.Sum256(k)
		k = sum[:]
	}
	var hk hmacKey
	copy(hk.ipad[:], k)
	copy(hk.opad[:], k)
	for i := range hk.ipad {
		hk.ipad[i] ^= 0x36
		hk.opad[i] ^= 0x5c
	}
	return &hk
}

// ErrUnknownPepper means a record was hashed with a pepper that is no longer
// configured: the operator dropped a retired pepper too early.
var ErrUnknownPepper = errors.New("mcpauth: key record names a pepper version that is not configured")

// Hash returns the hash of material (ParsedKey.Material) under the current
// pepper, and the pepper's version.
func (h *Hasher) Hash(material string) ([sha256.Size]byte, int) {
	sum, _ := h.hashWith(h.current, material)
	return sum, h.current
}

// hashWith hashes material with the given pepper version (0 = SHA-256).
// It allocates nothing for material up to 64 bytes.
func (h *Hasher) hashWith(version int, material string) ([sha256.Size]byte, error) {
	if version == 0 || version == LegacyPepperVersion {
		var buf [64]byte
		if len(material) <= len(buf) {
			n := copy(buf[:], material)
			return sha256.Sum256(buf[:n]), nil
		}
		return sha256.Sum256([]byte(material)), nil
	}
	k := h.peppers[version]
	if k == nil {
		return [sha256.Size]byte{}, ErrUnknownPepper
	}
	// HMAC-SHA256 (RFC 2104) over precomputed pads, on the stack.
	var inner [sha256.BlockSize + 64]byte
	copy(inner[:], k.ipad[:])
	var innerSum [sha256.Size]byte
	if len(material) <= 64 {
		n := copy(inner[sha256.BlockSize:], material)
		innerSum = sha256.Sum256(inner[:sha256.BlockSize+n])
	} else {
		innerSum = sha256.Sum256(append(inner[:sha256.BlockSize:sha256.BlockSize], material...))
	}
	var outer [sha256.BlockSize + sha256.Size]byte
	copy(outer[:], k.opad[:])
	copy(outer[sha256.BlockSize:], innerSum[:])
	return sha256.Sum256(outer[:]), nil
}

// Verify reports whether material hashes to want under the given pepper
// version (0: plain SHA-256; LegacyPepperVersion: SHA-256 of the whole raw
// legacy key), comparing in constant time. It fails with ErrUnknownPepper
// for a version that is not configured.
func (h *Hasher) Verify(version int, material string, want []byte) (bool, error) {
	got, err := h.hashWith(version, material)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(got[:], want) == 1, nil
}

// ParsePepper reads a pepper written as "<version>:<secret>" (for example
// from an environment variable: MCPAUTH_PEPPER=1:4f1c...), the form the
// mcpauth CLI and examples use. The error never contains the secret.
func ParsePepper(s string) (Pepper, error) {
	v, secret, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return Pepper{}, errors.New(`mcpauth: pepper must be written "<version>:<secret>"`)
	}
	version, err := strconv.Atoi(v)
	if err != nil || version <= 0 {
		return Pepper{}, errors.New("mcpauth: pepper version must be a positive integer")
	}
	if len(secret) < minPepperLen {
		return Pepper{}, fmt.Errorf("mcpauth: pepper version %d: secret must be at least %d bytes", version, minPepperLen)
	}
	return Pepper{Version: version, Secret: []byte(secret)}, nil
}
