package store

import (
	"context"
	"errors"
	"time"
)

var (
	// ErrNotFound is returned when no key has the requested ID. It is the
	// only error that means "the store answered, and the answer is no".
	ErrNotFound = errors.New("mcpauth/store: key not found")
	// ErrDuplicate is returned by CreateKey when a key with the same ID exists.
	ErrDuplicate = errors.New("mcpauth/store: duplicate key id")
)

// KeyLookup finds key records by ID: all the Guard needs of a store (it
// also uses the optional interfaces below when the store implements them).
type KeyLookup interface {
	// LookupKey returns the key with the given ID, or ErrNotFound.
	LookupKey(ctx context.Context, id string) (Key, error)
}

// KeyStore keeps API key records: what the key manager needs.
// Implementations must be safe for concurrent use.
type KeyStore interface {
	KeyLookup
	// CreateKey stores a new key. It returns ErrDuplicate if the ID is taken.
	CreateKey(ctx context.Context, k Key) error
	// RevokeKey marks the key revoked at the given time. Revoking a key that
	// is already revoked keeps the earlier time and returns nil. It returns
	// ErrNotFound for an unknown ID.
	RevokeKey(ctx context.Context, id string, at time.Time) error
}

// UserChecker is the host application's answer to "is this user allowed to
// act right now?". Return false for deactivated, suspended or deleted users;
// return an error only when the answer cannot be had (the Guard then fails
// the request closed with 503).
type UserChecker interface {
	UserActive(ctx context.Context, userID string) (bool, error)
}

// UserCheckerFunc adapts a function to UserChecker.
type UserCheckerFunc func(ctx context.Context, userID string) (bool, error)

// UserActive implements UserChecker.
func (f UserCheckerFunc) UserActive(ctx context.Context, userID string) (bool, error) {
	return f(ctx, userID)
}

// KeyLister is implemented by stores that can list a user's keys.
type KeyLister interface {
	// ListKeys returns every key of the user, revoked and expired ones
	// included, oldest first. A user without keys gets an empty slice.
	ListKeys(ctx context.Context, userID string) ([]Key, error)
}

// KeyUpdater is implemented by stores that can change a key's expiry, which
// key rotation needs to give the old key a grace period.
type KeyUpdater interface {
	// SetExpiry sets the key's ExpiresAt (zero means never). It returns
	// ErrNotFound for an unknown ID.
	SetExpiry(ctx context.Context, id string, expiresAt time.Time) error
}

// Touch is one last-used record: key ID and when it was last seen.
type Touch struct {
	ID string
	At time.Time
}

// Toucher is implemented by stores that record last-used times. The
// middleware coalesces uses in memory and calls TouchKeys in batches, never
// once per request.
type Toucher interface {
	// TouchKeys moves each key's LastUsedAt forward to At; a time earlier
	// than the stored one is ignored. Unknown IDs are skipped, not errors.
	TouchKeys(ctx context.Context, touches []Touch) error
}

// RevocationLister is implemented by stores shared by several processes
// (the SQL store). A Guard over such a store polls it (every second by
// default) and drops newly revoked keys from its cache, so that a key
// revoked through any instance stops working on all of them within about a
// second instead of at cache expiry. A store that is also a ChangeLister is
// polled with that instead (it covers revocations and expiry changes).
type RevocationLister interface {
	// RevokedSince returns the IDs of keys whose RevokedAt is at or after
	// since, at most limit of them (the most recent first).
	RevokedSince(ctx context.Context, since time.Time, limit int) ([]string, error)
}

// ExpiringLister is implemented by stores that can list keys by expiry,
// which Manager.NotifyExpiring needs to warn owners before their keys stop.
type ExpiringLister interface {
	// ListExpiring returns active (not revoked) keys whose ExpiresAt is in
	// [from, to), soonest first, at most limit of them.
	ListExpiring(ctx context.Context, from, to time.Time, limit int) ([]Key, error)
}

// MaxAddressesPerKey is how many client addresses an AddressRecorder keeps
// per key. Past it, RecordAddress reports every further address as not new,
// so a key used from many addresses (a leaked key behind a botnet) cannot
// grow the store without bound; the owner has been told about the first
// MaxAddressesPerKey already.
const MaxAddressesPerKey = 64

// AddressRecorder is implemented by stores that remember the client
// addresses each key was used from, so that the key.new_ip notification
// fires once per key and address across restarts and instances. The Guard
// calls it off the request path, at most once per key and address per
// process. It is optional: without it, a Guard remembers addresses in its
// own memory only, and every restart and every other instance announces
// each key's addresses again.
type AddressRecorder interface {
	// RecordAddress records that the key was used from addr (an IP address
	// in its canonical text form) at the given time, and reports whether
	// that address is new for the key. Of concurrent callers recording the
	// same key and address, exactly one sees isNew. Once a key has
	// MaxAddressesPerKey addresses, further ones are not recorded and are
	// reported as not new. The key ID is not checked: a store may record
	// addresses of a key it does not hold, or return an error for it.
	RecordAddress(ctx context.Context, keyID, addr string, at time.Time) (isNew bool, err error)
}
