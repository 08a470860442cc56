// Package apikey is the mcpauth key format and its hashing, shared by the
// request path (package mcpauth) and key administration (package
// keyadmin), so that neither copies it.
//
// A raw key is
//
//	<prefix>_<key ID: 12><secret: 24><checksum: 6>
//
// with the last 42 characters base62 (0-9, A-Z, a-z), so that a double
// click selects the whole key. The key ID is public: it is how a store
// finds the record and what logs and UIs show. The secret carries about 142
// bits from crypto/rand. The checksum (CRC32) lets ParseKey reject a
// mistyped or truncated key, and a secret scanner confirm a match offline
// (ScannerRegexp), without a store lookup.
//
// Stores keep the HMAC-SHA256 of the key ID and secret under a server-side
// Pepper (or plain SHA-256 without one), never the key. A Hasher verifies a
// record with whichever pepper version it names, so peppers can be rotated.
//
// It imports only the standard library.
package apikey
