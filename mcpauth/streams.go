package mcpauth

// This file holds the registry of open event streams: the GET requests
// Require passed to the handler (serve), by key and user, so that a change
// to a key (Forget, ForgetUser, the revocation poll, Options.Changes) or
// its expiry ends them. A request is authenticated once, when it arrives;
// without this a standalone GET stream, which carries server messages for
// as long as it stays open, would outlive the credential that opened it.

import (
	"context"
	"hash/maphash"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// serveStream serves a GET: as serve does, but the handler runs with a
// context registered in g.streams, ended when the key or user is forgotten
// or the credential expires. It reads the registry's epoch before the
// request is authenticated, so that a forget during authentication ends
// the stream too. Other methods never come here: their path is serve's
// alone.
func (g *Guard) serveStream(w http.ResponseWriter, r *http.Request, next http.Handler) {
	g.serve(w, r, &streamHandler{g: g, next: next, seen: g.streams.begin()})
}

// streamHandler runs next for a GET that passed Require, as an open stream.
type streamHandler struct {
	g    *Guard
	next http.Handler
	seen uint64 // the registry's epoch before authentication
}

func (h *streamHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e := entryFrom(r.Context())
	if e == nil { // unreachable: serve calls it only with the principal
		h.next.ServeHTTP(w, r)
		return
	}
	now := h.g.opts.Now()
	ctx, s := h.g.streams.open(r.Context(), e.principal.KeyID, e.principal.UserID, streamDeadline(e, now), h.seen, now)
	defer h.g.streams.close(s)
	h.next.ServeHTTP(w, r.WithContext(ctx))
}

// markSlots is the number of slots each of streamRegistry's forget marks
// hashes IDs into.
const markSlots = 64

// streamRegistry holds the open event streams. It is safe for concurrent
// use; its zero value is not (use newStreamRegistry).
//
// A stream is authenticated before it is registered, and a forget may fall
// in between (a revocation while the store was asked): to end such a
// stream too, every forget takes a new epoch and marks it on the slot of
// the key (or user) it forgot, and open refuses, by cancelling at once, a
// stream whose key's or user's slot was marked after the epoch the request
// saw (begin) before it was authenticated. Two IDs in one slot only cost a
// stream that had to be reopened.
type streamRegistry struct {
	log  *slog.Logger
	seed maphash.Seed

	epoch atomic.Uint64 // written under mu, read by begin without it

	mu       sync.Mutex
	byKey    map[string]map[*stream]struct{}
	byUser   map[string]map[*stream]struct{}
	keyMarks [markSlots]uint64 // the epoch of the last forget of a key of each slot
	userMark [markSlots]uint64 // likewise for users
	allMark  uint64            // the epoch of the last forgetAll
}

// stream is one open event stream.
type stream struct {
	keyID, userID string
	cancel        context.CancelFunc
	timer         *time.Timer // ends it at its credential's expiry; nil without one
}

func newStreamRegistry(log *slog.Logger) *streamRegistry {
	return &streamRegistry{log: log, seed: maphash.MakeSeed(),
		byKey: make(map[string]map[*stream]struct{}), byUser: make(map[string]map[*stream]struct{})}
}

// begin returns the epoch to give open for a request about to be
// authenticated.
func (r *streamRegistry) begin() uint64 { return r.epoch.Load() }

// open registers a stream of keyID and userID authenticated after begin
// returned seen, and returns the context to serve it with and the stream to
// hand to close when the handler returns. The context is cancelled when
// the key or user is forgotten, at expires (measured from now, both by the
// Guard's clock; zero: never), and at once if a forget that may concern it
// came after seen.
func (r *streamRegistry) open(ctx context.Context, keyID, userID string, expires time.Time, seen uint64, now time.Time) (context.Context, *stream) {
	ctx, cancel := context.WithCancel(ctx)
	s := &stream{keyID: keyID, userID: userID, cancel: cancel}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.allMark > seen || r.keyMarks[r.slot(keyID)] > seen || r.userMark[r.slot(userID)] > seen {
		cancel()
		return ctx, s
	}
	addStream(r.byKey, keyID, s)
	addStream(r.byUser, userID, s)
	if !expires.IsZero() {
		s.timer = time.AfterFunc(expires.Sub(now), func() { r.expire(s) })
	}
	return ctx, s
}

// close unregisters s and stops its timer; its handler has returned. Its
// context is left to end with the request's, as net/http's does when the
// handler returns (a handler's context does not end earlier with Require
// than without).
func (r *streamRegistry) close(s *stream) {
	if s.timer != nil {
		s.timer.Stop()
	}
	r.mu.Lock()
	r.remove(s)
	r.mu.Unlock()
}

// expire ends s, whose credential expired.
func (r *streamRegistry) expire(s *stream) {
	r.mu.Lock()
	open := r.remove(s)
	r.mu.Unlock()
	if open {
		s.cancel()
		r.log.LogAttrs(context.Background(), slog.LevelInfo, "mcpauth: credential expired; ended its event stream", slog.String("key_id", s.keyID))
	}
}

// forgetKey ends every stream of keyID, and any being opened with it.
func (r *streamRegistry) forgetKey(keyID string) {
	r.mu.Lock()
	e := r.mark()
	r.keyMarks[r.slot(keyID)] = e
	n := r.end(r.byKey[keyID])
	r.mu.Unlock()
	if n > 0 {
		r.log.LogAttrs(context.Background(), slog.LevelInfo, "mcpauth: key changed; ended its event streams", slog.String("key_id", keyID), slog.Int("streams", n))
	}
}

// forgetUser ends every stream of userID, and any being opened for it.
func (r *streamRegistry) forgetUser(userID string) {
	r.mu.Lock()
	e := r.mark()
	r.userMark[r.slot(userID)] = e
	n := r.end(r.byUser[userID])
	r.mu.Unlock()
	if n > 0 {
		r.log.LogAttrs(context.Background(), slog.LevelInfo, "mcpauth: user changed; ended the event streams of their keys", slog.String("user_id", userID), slog.Int("streams", n))
	}
}

// forgetAll ends every stream, and every one being opened.
func (r *streamRegistry) forgetAll() {
	r.mu.Lock()
	r.allMark = r.mark()
	n := 0
	for _, set := range r.byKey {
		n += r.end(set)
	}
	r.mu.Unlock()
	if n > 0 {
		r.log.LogAttrs(context.Background(), slog.LevelInfo, "mcpauth: key changes may have been missed; ended every event stream", slog.Int("streams", n))
	}
}

// count returns the number of open streams of keyID.
func (r *streamRegistry) count(keyID string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.byKey[keyID])
}

// mark takes a new epoch; r.mu must be held.
func (r *streamRegistry) mark() uint64 {
	e := r.epoch.Load() + 1
	r.epoch.Store(e)
	return e
}

func (r *streamRegistry) slot(id string) int { return int(maphash.String(r.seed, id) % markSlots) }

// end unregisters and cancels the streams of set, and returns how many
// there were; r.mu must be held. Their timers stop when their handlers
// return (close).
func (r *streamRegistry) end(set map[*stream]struct{}) int {
	n := 0
	for s := range set {
		if r.remove(s) {
			s.cancel()
			n++
		}
	}
	return n
}

// remove unregisters s and reports whether it was registered; r.mu must be
// held.
func (r *streamRegistry) remove(s *stream) bool {
	set, ok := r.byKey[s.keyID]
	if !ok {
		return false
	}
	if _, ok := set[s]; !ok {
		return false
	}
	dropStream(r.byKey, s.keyID, s)
	dropStream(r.byUser, s.userID, s)
	return true
}

func addStream(m map[string]map[*stream]struct{}, id string, s *stream) {
	set := m[id]
	if set == nil {
		set = make(map[*stream]struct{}, 1)
		m[id] = set
	}
	set[s] = struct{}{}
}

func dropStream(m map[string]map[*stream]struct{}, id string, s *stream) {
	set := m[id]
	delete(set, s)
	if len(set) == 0 {
		delete(m, id)
	}
}

// streamDeadline is when a stream authenticated with e at now must end:
// the credential's expiry, or a revocation the record dates in the future
// (usable refuses the key from then on), whichever comes first; zero for
// neither.
func streamDeadline(e *cacheEntry, now time.Time) time.Time {
	end := e.principal.ExpiresAt
	if r := e.revokedAt; r.After(now) && (end.IsZero() || r.Before(end)) {
		end = r
	}
	return end
}
