package mcpauth

import (
	"hash/maphash"
	"iter"
	"maps"
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
	guard         *Guard // the Guard that verified the key; answers refusals (WriteError)
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
	// verified is the cache's keyed digest (keyCache.digest) of the raw
	// key that last passed the format, checksum and hash checks against
	// this entry, nil until one did. A request whose raw key has the same
	// digest skips those checks; any other runs them. See SECURITY.md, "The
	// key cache".
	verified atomic.Pointer[keyDigest]
}

// keyDigest is a 128-bit keyed digest of a raw key.
type keyDigest [2]uint64

// matches reports whether the entry's verified digest is d, comparing in
// constant time (no early exit on the first differing bit).
func (e *cacheEntry) matches(d keyDigest) bool {
	v := e.verified.Load()
	if v == nil {
		return false
	}
	// Every bit of both words is folded into one word before the single
	// comparison: its time does not depend on where the digests differ.
	return (v[0]^d[0])|(v[1]^d[1]) == 0
}

// remember records d as the digest of a raw key that passed the checks.
func (e *cacheEntry) remember(d keyDigest) {
	if v := e.verified.Load(); v == nil || *v != d {
		e.verified.Store(&d)
	}
}

const cacheShards = 32

// keyCache is a bounded, sharded TTL map from key ID to cacheEntry. It is
// safe for concurrent use.
//
// Verified keys and negative entries (IDs the store does not know) live in
// separate maps with separate bounds, so that a flood of made-up IDs only
// evicts other negative entries, never a verified key. When a map of a shard
// is full, dead entries go first, then an arbitrary one of that map.
//
// Every shard has a generation, bumped by forget. A fill (put) names the
// generation it saw before asking the store and is dropped if a forget came
// in between, so a lookup that raced a revocation cannot write the old
// record back.
type keyCache struct {
	seed maphash.Seed
	// digestSeeds are digest's keys: two independent random seeds, not the
	// sharding seed, never exported or logged.
	digestSeeds [2]maphash.Seed
	perShard    int
	// stale is how long past validUntil a verified entry is kept for
	// Options.StaleIfError.
	stale  time.Duration
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	// pos holds the verified keys (string to *cacheEntry). It is read
	// without a lock, so that requests with the same key on several cores
	// do not contend on a reader count; it is written under mu, which
	// also counts it in nPos.
	pos  sync.Map
	nPos int
	mu   sync.RWMutex
	neg  map[string]*cacheEntry // unknown IDs
	gen  uint64
	_    [16]byte // keep shards on separate cache lines
}

func (s *cacheShard) loadPos(id string) *cacheEntry {
	if v, ok := s.pos.Load(id); ok {
		return v.(*cacheEntry)
	}
	return nil
}

// posEntries ranges over pos.
func (s *cacheShard) posEntries(yield func(string, *cacheEntry) bool) {
	s.pos.Range(func(k, v any) bool { return yield(k.(string), v.(*cacheEntry)) })
}

// deletePos removes id from pos; s.mu must be held.
func (s *cacheShard) deletePos(id string) {
	if _, ok := s.pos.LoadAndDelete(id); ok {
		s.nPos--
	}
}

// newKeyCache returns a cache of about size verified keys and as many
// negative entries; verified entries are kept up to stale past their TTL.
func newKeyCache(size int, stale time.Duration) *keyCache {
	c := &keyCache{
		seed: maphash.MakeSeed(), digestSeeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		perShard: max(1, size/cacheShards), stale: max(0, stale),
	}
	for i := range c.shards {
		c.shards[i].neg = make(map[string]*cacheEntry)
	}
	return c
}

// digest returns the 128-bit keyed digest of a raw key: two maphash values under
// the cache's secret random seeds. It allocates nothing and takes the same
// time for every key of a length.
func (c *keyCache) digest(raw string) keyDigest {
	return keyDigest{maphash.String(c.digestSeeds[0], raw), maphash.String(c.digestSeeds[1], raw)}
}

func (c *keyCache) shard(id string) *cacheShard {
	return &c.shards[maphash.String(c.seed, id)%cacheShards]
}

// get returns the live entry for id, or nil.
func (c *keyCache) get(id string, now time.Time) *cacheEntry {
	s := c.shard(id)
	e := s.loadPos(id)
	if e == nil {
		s.mu.RLock()
		e = s.neg[id]
		s.mu.RUnlock()
	}
	if e == nil || !now.Before(e.validUntil) {
		return nil
	}
	return e
}

// staleEntry returns the verified entry for id whose TTL passed less than
// c.stale ago, or nil. It is for serving while the store fails.
func (c *keyCache) staleEntry(id string, now time.Time) *cacheEntry {
	e := c.shard(id).loadPos(id)
	if e == nil || !now.Before(e.validUntil.Add(c.stale)) {
		return nil
	}
	return e
}

// generation returns id's shard generation, to hand to put after the
// store answered.
func (c *keyCache) generation(id string) uint64 {
	s := c.shard(id)
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.gen
}

// put caches e for id unless the shard was forgotten since gen was read.
// It reports whether e was stored.
func (c *keyCache) put(id string, e *cacheEntry, gen uint64, now time.Time) bool {
	s := c.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen {
		return false // a forget raced this fill: the store may have changed
	}
	if e.notFound {
		s.deletePos(id)
		if _, ok := s.neg[id]; !ok && len(s.neg) >= c.perShard {
			makeRoom(maps.All(s.neg), func(k string) { delete(s.neg, k) }, now, 0)
		}
		s.neg[id] = e
		return true
	}
	delete(s.neg, id)
	if s.loadPos(id) == nil && s.nPos >= c.perShard {
		makeRoom(s.posEntries, s.deletePos, now, c.stale)
	}
	if _, loaded := s.pos.Swap(id, e); !loaded {
		s.nPos++
	}
	return true
}

// makeRoom frees a slot in a full set of entries: it drops every entry that
// expired keep ago or more, or, if none did, one entry. It runs under the
// shard's lock, only when the set is full.
func makeRoom(entries iter.Seq2[string, *cacheEntry], drop func(id string), now time.Time, keep time.Duration) {
	dropped := false
	for id, e := range entries {
		if !now.Before(e.validUntil.Add(keep)) {
			drop(id)
			dropped = true
		}
	}
	if !dropped {
		for id := range entries {
			drop(id)
			break
		}
	}
}

// forget drops id and invalidates fills of its shard in flight.
func (c *keyCache) forget(id string) {
	s := c.shard(id)
	s.mu.Lock()
	s.deletePos(id)
	delete(s.neg, id)
	s.gen++
	s.mu.Unlock()
}

// forgetUser drops every verified entry of userID and invalidates fills in
// flight of the shards it touched.
func (c *keyCache) forgetUser(userID string) {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		s.pos.Range(func(id, v any) bool {
			if e := v.(*cacheEntry); e.principal != nil && e.principal.UserID == userID {
				s.deletePos(id.(string))
				s.gen++
			}
			return true
		})
		s.mu.Unlock()
	}
}

// forgetAll empties the cache and invalidates every fill in flight.
func (c *keyCache) forgetAll() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		s.pos.Clear()
		s.nPos = 0
		clear(s.neg)
		s.gen++
		s.mu.Unlock()
	}
}
