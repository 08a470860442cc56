package mcpauth_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/store"
)

// streamSite serves a Guard over real HTTP in front of a handler that
// holds every GET open, as an MCP server's standalone event stream does,
// until its context ends; POSTs answer at once, or when released.
type streamSite struct {
	srv     *httptest.Server
	open    atomic.Int32  // GET handlers running
	hold    chan struct{} // POSTs to /slow wait for it
	entered chan struct{} // a POST to /slow is running
	postErr atomic.Value  // the context error a /slow POST saw when released
	once    sync.Once
}

func newStreamSite(t *testing.T, g *mcpauth.Guard) *streamSite {
	t.Helper()
	s := &streamSite{hold: make(chan struct{}), entered: make(chan struct{}, 1)}
	s.srv = httptest.NewServer(g.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			if r.URL.Path == "/slow" {
				s.entered <- struct{}{}
				<-s.hold
				s.postErr.Store(errString(r.Context().Err()))
			}
			return
		}
		s.open.Add(1)
		defer s.open.Add(-1)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, ": ok\n\n")
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
	})))
	t.Cleanup(s.srv.Close)
	t.Cleanup(s.release) // before Close, which waits for the POST
	return s
}

// release lets held POSTs finish; more calls do nothing.
func (s *streamSite) release() { s.once.Do(func() { close(s.hold) }) }

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// eventStream is a GET the site answered.
type eventStream struct {
	status int
	ended  chan struct{} // closed when the response body ended
}

// get opens an event stream with raw; when it is refused, its status says
// why and ended is closed.
func (s *streamSite) get(t *testing.T, raw string) *eventStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.srv.URL, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+raw)
	req.Header.Set("Accept", "text/event-stream")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	es := &eventStream{status: res.StatusCode, ended: make(chan struct{})}
	go func() {
		defer close(es.ended)
		defer res.Body.Close()
		_, _ = io.Copy(io.Discard, res.Body)
	}()
	return es
}

// endsWithin reports whether the stream ended within d.
func (e *eventStream) endsWithin(d time.Duration) bool {
	select {
	case <-e.ended:
		return true
	case <-time.After(d):
		return false
	}
}

func (s *streamSite) post(t *testing.T, raw, path string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.srv.URL+path, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+raw)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// waitOpen waits until n GET handlers run.
func (s *streamSite) waitOpen(t *testing.T, n int32) {
	t.Helper()
	require.Eventually(t, func() bool { return s.open.Load() == n }, 10*time.Second, 5*time.Millisecond, "GET handlers running: want %d", n)
}

// pollStore is a memory store that lists changed keys (store.ChangeLister)
// as the test tells it, so that the Guard's revocation poll reports them.
type pollStore struct {
	*store.Memory
	mu      sync.Mutex
	changed []string
}

func (s *pollStore) ChangedSince(context.Context, time.Time, int) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.changed), nil
}

func (s *pollStore) report(id string) {
	s.mu.Lock()
	s.changed = append(s.changed, id)
	s.mu.Unlock()
}

// streamWorld is a Guard (with a change feed and a fast revocation poll), its
// Manager, a streamSite in front of it, and three keys: a and b of alice,
// c of bob.
type streamWorld struct {
	guard   *mcpauth.Guard
	mgr     *keyadmin.Manager
	store   *pollStore
	feed    *store.LocalFeed
	site    *streamSite
	a, b, c keyadmin.CreatedKey
	logs    *lockedWriter
}

// String returns what was written so far.
func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}

// lockedLogger returns a logger writing into the returned writer.
func lockedLogger() (*slog.Logger, *lockedWriter) {
	w := &lockedWriter{w: &bytes.Buffer{}}
	return slog.New(slog.NewTextHandler(w, nil)), w
}

func newStreamWorld(t *testing.T) *streamWorld {
	t.Helper()
	w := &streamWorld{store: &pollStore{Memory: store.NewMemory()}, feed: &store.LocalFeed{}}
	log, logs := lockedLogger()
	w.logs = logs
	g, err := mcpauth.New(w.store, &mcpauth.Options{
		Peppers: []apikey.Pepper{testPepper}, Changes: w.feed, RevocationPollInterval: 20 * time.Millisecond, Logger: log,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = g.Close(context.Background()) })
	w.guard, w.mgr = g, managerFor(t, g, w.store, nil)
	w.site = newStreamSite(t, g)
	for _, k := range []struct {
		to   *keyadmin.CreatedKey
		user string
	}{{&w.a, "alice"}, {&w.b, "alice"}, {&w.c, "bob"}} {
		*k.to, err = w.mgr.Create(context.Background(), k.user, keyadmin.CreateOptions{})
		require.NoError(t, err)
	}
	return w
}

// Every path by which a Guard forgets a key or user ends that key's (or
// user's) open event streams, and only those: the streams of other keys
// stay open. POSTs are never ended: one in flight during the change
// completes with a live context.
func TestGuardEndsEventStreams(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cases := []struct {
		name   string
		change func(t *testing.T, w *streamWorld)
		ends   string // which of a (two streams), b, c end: "ab" = a's and b's
		// reopen is the status a new stream with key a gets afterwards.
		reopen int
	}{
		{"Forget", func(_ *testing.T, w *streamWorld) { w.guard.Forget(w.a.Key.ID) }, "a", http.StatusOK},
		{"Manager.Revoke (OnChange)", func(t *testing.T, w *streamWorld) { require.NoError(t, w.mgr.Revoke(ctx, w.a.Key.ID)) }, "a", http.StatusUnauthorized},
		{"Manager.Rotate with grace (any change ends streams)", func(t *testing.T, w *streamWorld) {
			_, err := w.mgr.Rotate(ctx, w.a.Key.ID, time.Hour)
			require.NoError(t, err)
		}, "a", http.StatusOK},
		{"ForgetUser", func(_ *testing.T, w *streamWorld) { w.guard.ForgetUser("alice") }, "ab", http.StatusOK},
		{"Changes: a key", func(t *testing.T, w *streamWorld) {
			require.NoError(t, w.feed.PublishChange(ctx, store.Change{KeyID: w.a.Key.ID}))
		}, "a", http.StatusOK},
		{"Changes: a user", func(t *testing.T, w *streamWorld) {
			require.NoError(t, w.feed.PublishChange(ctx, store.Change{UserID: "bob"}))
		}, "c", http.StatusOK},
		{"Changes: lost (any key may have changed)", func(_ *testing.T, w *streamWorld) { w.feed.Deliver(store.Change{Lost: true}) }, "abc", http.StatusOK},
		{"revocation poll", func(t *testing.T, w *streamWorld) {
			// Revoked behind the Guard's back, as another instance would.
			require.NoError(t, w.store.RevokeKey(ctx, w.a.Key.ID, time.Now()))
			w.store.report(w.a.Key.ID)
		}, "a", http.StatusUnauthorized},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newStreamWorld(t)
			streams := map[string][]*eventStream{
				"a": {w.site.get(t, w.a.Raw), w.site.get(t, w.a.Raw)},
				"b": {w.site.get(t, w.b.Raw)},
				"c": {w.site.get(t, w.c.Raw)},
			}
			for _, ss := range streams {
				for _, s := range ss {
					require.Equal(t, http.StatusOK, s.status)
				}
			}
			w.site.waitOpen(t, 4)
			slow := make(chan int, 1)
			go func() { slow <- w.site.post(t, w.a.Raw, "/slow") }()
			<-w.site.entered

			tc.change(t, w)

			ending := 0
			for name, ss := range streams {
				if strings.Contains(tc.ends, name) {
					ending += len(ss)
					for i, s := range ss {
						assert.True(t, s.endsWithin(10*time.Second), "stream %d of key %s outlived the change", i, name)
					}
				}
			}
			w.site.waitOpen(t, int32(4-ending))
			for name, ss := range streams {
				if !strings.Contains(tc.ends, name) {
					for i, s := range ss {
						assert.False(t, s.endsWithin(200*time.Millisecond), "stream %d of key %s ended: collateral", i, name)
					}
				}
			}
			w.site.release()
			assert.Equal(t, http.StatusOK, <-slow)
			assert.Equal(t, "", w.site.postErr.Load(), "a POST in flight is not ended")

			re := w.site.get(t, w.a.Raw)
			assert.Equal(t, tc.reopen, re.status, "a new stream with key a")
			if tc.reopen == http.StatusOK {
				assert.Equal(t, http.StatusOK, w.site.post(t, w.a.Raw, "/"), "key a still works for POSTs")
			}
			assert.Eventually(t, func() bool { return strings.Contains(w.logs.String(), "ended") }, 10*time.Second, 5*time.Millisecond, "the end is logged")
			assert.NotContains(t, w.logs.String(), w.a.Raw)
		})
	}
}

// A stream ends when its key expires, by the Guard's clock (Options.Now):
// the clock here is months from the system's, and the stream lives its
// full two seconds. A reopened stream is refused once the key expired; a
// stream of a key without expiry stays open.
func TestGuardEndsEventStreamAtExpiry(t *testing.T) {
	t.Parallel()
	c := newClock()
	log, logs := lockedLogger()
	keys := store.NewMemory()
	g, err := mcpauth.New(keys, &mcpauth.Options{Peppers: []apikey.Pepper{testPepper}, Now: c.Now, Logger: log})
	require.NoError(t, err)
	t.Cleanup(func() { _ = g.Close(context.Background()) })
	mgr := managerFor(t, g, keys, c.Now)
	site := newStreamSite(t, g)
	short, err := mgr.Create(context.Background(), "alice", keyadmin.CreateOptions{ExpiresIn: 2 * time.Second})
	require.NoError(t, err)
	forever, err := mgr.Create(context.Background(), "alice", keyadmin.CreateOptions{})
	require.NoError(t, err)

	s, other := site.get(t, short.Raw), site.get(t, forever.Raw)
	require.Equal(t, http.StatusOK, s.status)
	site.waitOpen(t, 2)
	assert.False(t, s.endsWithin(500*time.Millisecond), "ended before its key expired")
	assert.True(t, s.endsWithin(10*time.Second), "the stream outlived its key")
	site.waitOpen(t, 1)
	assert.False(t, other.endsWithin(100*time.Millisecond), "the other key's stream ended")
	assert.Eventually(t, func() bool { return strings.Contains(logs.String(), "credential expired; ended its event stream") }, 10*time.Second, 5*time.Millisecond)

	c.Advance(2 * time.Second)
	assert.Equal(t, http.StatusUnauthorized, site.get(t, short.Raw).status)
}

// A revocation while a GET is being authenticated (its lookup read the
// record before the revocation) ends the stream as soon as it opens: the
// Forget came too late for the lookup, not for the stream.
func TestGuardEndsEventStreamRevokedWhileAuthenticating(t *testing.T) {
	t.Parallel()
	s := newHookStore()
	g, c, _ := guardOn(t, s, &mcpauth.Options{CacheTTL: time.Hour})
	mgr := managerFor(t, g, s, c.Now)
	k, err := mgr.Create(context.Background(), "alice", keyadmin.CreateOptions{})
	require.NoError(t, err)
	site := newStreamSite(t, g)

	s.armed.Store(true)
	opened := make(chan *eventStream, 1)
	go func() { opened <- site.get(t, k.Raw) }()
	<-s.entered
	require.NoError(t, mgr.Revoke(context.Background(), k.Key.ID))
	close(s.release)
	es := <-opened
	assert.Equal(t, http.StatusOK, es.status, "authenticated before the revocation")
	assert.True(t, es.endsWithin(10*time.Second), "the stream outlived the revocation")
	site.waitOpen(t, 0)
}
