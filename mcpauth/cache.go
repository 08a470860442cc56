package mcpauth

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpauth/mcpauth/ratelimit"
	"github.com/mcpauth/mcpauth/scope"
)

// cacheEntry is what the key cache holds for one key ID: either a verified
// key's record (hash, status times, and the Principal handed to handlers) or
// a negative entry for an ID the store does not know.
type cacheEntry struct {
	notFound      bool
	hash          []byte
	pepperVersion int
	revokedAt     time.Time
	principal     *Principal
	scopes        scope.Set
	// bucket and limit are the key's rate-limit bucket and limit, resolved
	// once per cache fill.
	bucket string
	limit  ratelimit.Limit
	// allowed is the key's client address allowlist; empty means any. An
	// invalid (zero) prefix in it matches nothing.
	allowed []netip.Prefix
	// validUntil is when the entry must be fetched again. It never passes the
	// key's own expiry.
	validUntil time.Time
	// lastTouch is the unix-nano time a use of this key was last queued for
	// the last-used flush; it keeps the hot path off the shared touch map.
	lastTouch atomic.Int64
}

const cacheShards = 32

// keyCache is a bounded, sharded TTL map from key ID to cacheEntry. When a
// shard is full, expired entries go first, then an arbitrary one. It is safe
// for concurrent use.
type keyCache struct {
	seed     maphash.Seed
	perShard int
	shards   [cacheShards]cacheShard
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[string]*cacheEntry
	_  [40]byte // keep shards on separate cache lines
}

func newKeyCache(size int) *keyCache {
	c := &keyCache{seed: maphash.MakeSeed(), perShard: max(1, size/cacheShards)}
	for i := range c.shards {
		c.shards[i].m = make(map[string]*cacheEntry)
	}
	return c
}

func (c *keyCache) shard(id string) *cacheShard {
	return &c.shards[maphash.String(c.seed, id)%cacheShards]
}

// get returns the live entry for id, or nil.
func (c *keyCache) get(id string, now time.Time) *cacheEntry {
	s := c.shard(id)
	s.mu.RLock()
	e := s.m[id]
	s.mu.RUnlock()
	if e == nil || !now.Before(e.validUntil) {
		return nil
	}
	return e
}

func (c *keyCache) put(id string, e *cacheEntry, now time.Time) {
	s := c.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[id]; !ok && len(s.m) >= c.perShard {
		evicted := 0
		for k, old := range s.m {
			if !now.Before(old.validUntil) {
				delete(s.m, k)
				evicted++
			}
		}
		if evicted == 0 {
			for k := range s.m {
				delete(s.m, k)
				break
			}
		}
	}
	s.m[id] = e
}

func (c *keyCache) delete(id string) {
	s := c.shard(id)
	s.mu.Lock()
	delete(s.m, id)
	s.mu.Unlock()
}
