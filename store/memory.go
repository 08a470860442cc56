package store

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"
)

// Memory is an in-memory KeyStore. It is safe for concurrent use. Its keys
// are lost when the process exits, so it suits tests, demos and single-process
// tools; use package sqlstore for anything that must survive a restart.
type Memory struct {
	mu    sync.RWMutex
	keys  map[string]Key
	addrs map[string]map[string]time.Time // key ID → address → first seen
}

var (
	_ KeyStore   = (*Memory)(nil)
	_ KeyLister  = (*Memory)(nil)
	_ KeyUpdater = (*Memory)(nil)
	_ Toucher    = (*Memory)(nil)

	_ ExpiringLister  = (*Memory)(nil)
	_ AddressRecorder = (*Memory)(nil)
)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{keys: make(map[string]Key), addrs: make(map[string]map[string]time.Time)}
}

// LookupKey implements KeyStore.
func (m *Memory) LookupKey(ctx context.Context, id string) (Key, error) {
	if err := ctx.Err(); err != nil {
		return Key{}, err
	}
	m.mu.RLock()
	k, ok := m.keys[id]
	m.mu.RUnlock()
	if !ok {
		return Key{}, ErrNotFound
	}
	return k.Clone(), nil
}

// CreateKey implements KeyStore.
func (m *Memory) CreateKey(ctx context.Context, k Key) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.keys[k.ID]; ok {
		return ErrDuplicate
	}
	m.keys[k.ID] = k.Clone()
	return nil
}

// RevokeKey implements KeyStore.
func (m *Memory) RevokeKey(ctx context.Context, id string, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[id]
	if !ok {
		return ErrNotFound
	}
	if k.RevokedAt.IsZero() {
		k.RevokedAt = at
		m.keys[id] = k
	}
	return nil
}

// ListKeys implements KeyLister.
func (m *Memory) ListKeys(ctx context.Context, userID string) ([]Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	out := []Key{}
	for _, k := range m.keys {
		if k.UserID == userID {
			out = append(out, k.Clone())
		}
	}
	m.mu.RUnlock()
	slices.SortFunc(out, func(a, b Key) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, nil
}

// SetExpiry implements KeyUpdater.
func (m *Memory) SetExpiry(ctx context.Context, id string, expiresAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[id]
	if !ok {
		return ErrNotFound
	}
	k.ExpiresAt = expiresAt
	m.keys[id] = k
	return nil
}

// TouchKeys implements Toucher.
func (m *Memory) TouchKeys(ctx context.Context, touches []Touch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, t := range touches {
		k, ok := m.keys[t.ID]
		if !ok || !t.At.After(k.LastUsedAt) {
			continue
		}
		k.LastUsedAt = t.At
		m.keys[t.ID] = k
	}
	return nil
}

// ListExpiring implements ExpiringLister. It scans every key.
func (m *Memory) ListExpiring(ctx context.Context, from, to time.Time, limit int) ([]Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	var out []Key
	for _, k := range m.keys {
		if k.RevokedAt.IsZero() && !k.ExpiresAt.IsZero() && !k.ExpiresAt.Before(from) && k.ExpiresAt.Before(to) {
			out = append(out, k.Clone())
		}
	}
	m.mu.RUnlock()
	slices.SortFunc(out, func(a, b Key) int {
		if c := a.ExpiresAt.Compare(b.ExpiresAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	if len(out) > limit {
		out = out[:max(limit, 0)]
	}
	return out, nil
}

// RecordAddress implements AddressRecorder. It keeps at most
// MaxAddressesPerKey addresses per key, for as long as the store lives.
func (m *Memory) RecordAddress(ctx context.Context, keyID, addr string, at time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := m.addrs[keyID]
	if _, ok := seen[addr]; ok || len(seen) >= MaxAddressesPerKey {
		return false, nil
	}
	if seen == nil {
		seen = make(map[string]time.Time)
		m.addrs[keyID] = seen
	}
	seen[addr] = at
	return true, nil
}
