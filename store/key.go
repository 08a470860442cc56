package store

import (
	"maps"
	"net/netip"
	"slices"
	"time"
)

// Key is the stored record of one API key. It never holds the raw key: only
// its public ID and the hash of the key material.
type Key struct {
	// ID is the public key ID embedded in the raw key. It is safe to log and
	// to show in user interfaces.
	ID string
	// UserID is the host application's user the key acts for.
	UserID string
	// Name is a label chosen by the user ("claude desktop on laptop").
	Name string
	// Hash is HMAC-SHA256(pepper, key material), or SHA-256 of it when
	// PepperVersion is 0.
	Hash []byte
	// PepperVersion says which server-side pepper produced Hash; 0 means none.
	PepperVersion int
	// Scopes the key grants, in their canonical string form.
	Scopes []string
	// CreatedAt is when the key was issued.
	CreatedAt time.Time
	// ExpiresAt is when the key stops working; zero means never.
	ExpiresAt time.Time
	// RevokedAt is when the key was revoked; zero means not revoked.
	RevokedAt time.Time
	// LastUsedAt is the last time the key authenticated a request, as last
	// flushed; zero means never.
	LastUsedAt time.Time
	// RateLimit is a per-key override in requests per minute; 0 means the
	// configured policy applies.
	RateLimit int
	// AllowedCIDRs, when not empty, restricts the client addresses the key
	// may be used from.
	AllowedCIDRs []string
	// Metadata holds free-form host data (a tier, a team ID).
	Metadata map[string]string
}

// Status is a key's state at a given time.
type Status string

// Key statuses.
const (
	StatusActive  Status = "active"
	StatusRevoked Status = "revoked"
	StatusExpired Status = "expired"
)

// StatusAt reports whether k is active, revoked or expired at now.
// Revocation wins over expiry.
func (k *Key) StatusAt(now time.Time) Status {
	switch {
	case !k.RevokedAt.IsZero() && !now.Before(k.RevokedAt):
		return StatusRevoked
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return StatusExpired
	default:
		return StatusActive
	}
}

// Clone returns a deep copy of k, so that callers can keep or change it
// without touching a store's own copy.
func (k Key) Clone() Key {
	k.Hash = slices.Clone(k.Hash)
	k.Scopes = slices.Clone(k.Scopes)
	k.AllowedCIDRs = slices.Clone(k.AllowedCIDRs)
	k.Metadata = maps.Clone(k.Metadata)
	return k
}

// ParseCIDR parses one entry of Key.AllowedCIDRs: a CIDR prefix
// ("203.0.113.0/24", "2001:db8::/32"), masked, or a single address, as a
// prefix of its full length. IPv4-mapped IPv6 addresses are unmapped.
func ParseCIDR(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}
