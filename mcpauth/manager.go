package mcpauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/mcpauth/mcpauth/store"
)

// Manager issues and revokes keys. It shares the key format and peppers of
// the Guard it came from (Guard.Manager), so keys it creates verify there,
// and revocations through it reach that Guard's cache at once. It is safe
// for concurrent use.
type Manager struct {
	keys   store.KeyStore
	prefix string
	hasher *hasher
	rand   io.Reader
	now    func() time.Time
	forget func(keyID string)
}

// Manager returns the key manager bound to g.
func (g *Guard) Manager() *Manager {
	return &Manager{
		keys:   g.keys,
		prefix: g.opts.Prefix,
		hasher: g.hasher,
		rand:   g.opts.Rand,
		now:    g.opts.Now,
		forget: g.Forget,
	}
}

// CreateOptions describes a new key.
type CreateOptions struct {
	// Name is the user's label for the key.
	Name string
	// Scopes the key grants. Default none: the key authenticates but passes
	// no scope check.
	Scopes []string
	// ExpiresIn is the key's lifetime from now; 0 means it never expires.
	ExpiresIn time.Duration
	// RateLimit overrides the rate policy for this key (requests per minute); 0 = policy.
	RateLimit int
	// Metadata is free-form host data stored with the key.
	Metadata map[string]string
	// AllowedCIDRs restricts the client addresses the key works from.
	AllowedCIDRs []string
}

// CreatedKey is a new key: Raw is the only copy of the secret key and is
// never stored; show it to the user once.
type CreatedKey struct {
	Raw string
	Key store.Key
}

// String hides the raw key, so that printing a CreatedKey by mistake does
// not leak it.
func (c CreatedKey) String() string { return "mcpauth.CreatedKey{ID:" + c.Key.ID + "}" }

// GoString hides the raw key from %#v.
func (c CreatedKey) GoString() string { return c.String() }

// Create issues a key for userID. The raw key is in the result and nowhere
// else: the store keeps its hash.
func (m *Manager) Create(ctx context.Context, userID string, o CreateOptions) (CreatedKey, error) {
	if userID == "" {
		return CreatedKey{}, errors.New("mcpauth: create key: empty user ID")
	}
	if o.ExpiresIn < 0 {
		return CreatedKey{}, errors.New("mcpauth: create key: negative ExpiresIn")
	}
	now := m.now()
	for attempt := 0; ; attempt++ {
		raw, pk, err := generateKey(m.rand, m.prefix)
		if err != nil {
			return CreatedKey{}, err
		}
		sum, version := m.hasher.hash(pk.material)
		k := store.Key{
			ID:            pk.ID,
			UserID:        userID,
			Name:          o.Name,
			Hash:          sum[:],
			PepperVersion: version,
			Scopes:        append([]string{}, o.Scopes...),
			CreatedAt:     now,
			RateLimit:     o.RateLimit,
			AllowedCIDRs:  o.AllowedCIDRs,
			Metadata:      o.Metadata,
		}
		if o.ExpiresIn > 0 {
			k.ExpiresAt = now.Add(o.ExpiresIn)
		}
		err = m.keys.CreateKey(ctx, k)
		if errors.Is(err, store.ErrDuplicate) && attempt < 3 {
			continue // a 71-bit ID collided; draw again
		}
		if err != nil {
			return CreatedKey{}, fmt.Errorf("mcpauth: create key: %w", err)
		}
		if m.forget != nil {
			m.forget(k.ID) // drop a negative cache entry for this ID, if any
		}
		return CreatedKey{Raw: raw, Key: k}, nil
	}
}

// Revoke revokes a key now. The bound Guard stops accepting it at once;
// other processes stop within their cache TTL.
func (m *Manager) Revoke(ctx context.Context, keyID string) error {
	if err := m.keys.RevokeKey(ctx, keyID, m.now()); err != nil {
		return fmt.Errorf("mcpauth: revoke key %s: %w", keyID, err)
	}
	if m.forget != nil {
		m.forget(keyID)
	}
	return nil
}
