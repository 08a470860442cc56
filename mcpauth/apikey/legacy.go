package apikey

import (
	"crypto/sha256"
	"encoding/binary"
)

// LegacyPepperVersion marks a key record imported with the key manager's
// ImportLegacy: its Hash is the SHA-256 of the whole raw key, as hand-rolled
// setups (the seed's) stored it.
const LegacyPepperVersion = -1

// LegacyKeyID derives the public key ID of a legacy key from its SHA-256:
// "lg" and ten base62 digits of the hash's first 8 bytes.
func LegacyKeyID(sum []byte) string {
	v := binary.BigEndian.Uint64(sum[:8])
	var id [keyIDLen]byte
	id[0], id[1] = 'l', 'g'
	for i := keyIDLen - 1; i >= 2; i-- {
		id[i] = base62[v%62]
		v /= 62
	}
	return string(id[:])
}

// LegacyKeyHash returns what ImportLegacy expects for a raw legacy key: the
// SHA-256 the seed's scheme stored. It is for migration tools and tests; a
// running server never needs it.
func LegacyKeyHash(raw string) [sha256.Size]byte { return sha256.Sum256([]byte(raw)) }
