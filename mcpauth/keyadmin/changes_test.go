package keyadmin_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/store"
)

// otherInstance is a second Guard over the fixture's store, as another
// process would have it: a long cache, no poll, and only the change feed
// (nil: none) to learn of changes made by the fixture's Manager.
func (f *fixture) otherInstance(t *testing.T, feed store.ChangeSubscriber) *mcpauth.Guard {
	t.Helper()
	g, err := mcpauth.New(f.store, &mcpauth.Options{
		Peppers: f.gopts.Peppers, Now: f.clock.Now, Logger: f.gopts.Logger,
		CacheTTL: time.Hour, RevocationPollInterval: -1, Changes: feed,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = g.Close(context.Background()) })
	return g
}

func authOn(g *mcpauth.Guard, raw string) error {
	r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	r.Header.Set("Authorization", "Bearer "+raw)
	_, err := g.Authenticate(r)
	return err
}

// TestRotationGraceEndsOnEveryInstance walks a timeline: a key cached by
// another instance is rotated with a 5 s grace; the other instance accepts
// the old key until the grace ends and refuses it from that instant, with
// the change delivered on the feed. Without the feed (the control) the
// other instance keeps its cached expiry and accepts the old key past the
// grace: what issue 13 measured (23 s past it).
func TestRotationGraceEndsOnEveryInstance(t *testing.T) {
	for _, withFeed := range []bool{true, false} {
		t.Run(map[bool]string{true: "feed", false: "no feed (control)"}[withFeed], func(t *testing.T) {
			f := newFixture(t, nil)
			var feed store.LocalFeed
			var sub store.ChangeSubscriber
			mopts := &keyadmin.Options{}
			if withFeed {
				sub, mopts.Changes = &feed, &feed
			}
			mgr := f.manager(t, mopts)
			other := f.otherInstance(t, sub)
			old, err := mgr.Create(context.Background(), "u1", keyadmin.CreateOptions{Name: "agent"})
			require.NoError(t, err)
			require.NoError(t, authOn(other, old.Raw), "cached on the other instance")

			const grace = 5 * time.Second
			fresh, err := mgr.Rotate(context.Background(), old.Key.ID, grace)
			require.NoError(t, err)
			require.NoError(t, authOn(other, fresh.Raw))

			f.clock.Advance(grace - time.Microsecond)
			require.NoError(t, authOn(other, old.Raw), "still in its grace")
			f.clock.Advance(time.Microsecond)
			err = authOn(other, old.Raw)
			if withFeed {
				require.ErrorIs(t, err, mcpauth.ErrKeyExpired, "refused the instant the grace ends")
			} else {
				require.NoError(t, err, "without the feed or a poll the cached expiry stands")
			}
			require.NoError(t, authOn(other, fresh.Raw), "the new key works throughout")
		})
	}
}

// TestRevocationReachesOtherInstanceOnFeed: a revocation through the
// Manager is refused by the other instance at once, without any clock
// movement (its cache would trust the key for an hour).
func TestRevocationReachesOtherInstanceOnFeed(t *testing.T) {
	f := newFixture(t, nil)
	var feed store.LocalFeed
	mgr := f.manager(t, &keyadmin.Options{Changes: &feed})
	other := f.otherInstance(t, &feed)
	k, err := mgr.Create(context.Background(), "u1", keyadmin.CreateOptions{})
	require.NoError(t, err)
	require.NoError(t, authOn(other, k.Raw))
	require.NoError(t, mgr.Revoke(context.Background(), k.Key.ID))
	require.ErrorIs(t, authOn(other, k.Raw), mcpauth.ErrKeyRevoked)
}

// TestUserChangeAndLostDropCachedKeys: a user change drops that user's
// cached keys, not others'; a Lost change (the channel was down) drops
// everything. Each drop shows as a store lookup on the next request.
func TestUserChangeAndLostDropCachedKeys(t *testing.T) {
	f := newFixture(t, nil)
	var feed store.LocalFeed
	other := f.otherInstance(t, &feed)
	a := f.create(t, "alice", keyadmin.CreateOptions{})
	b := f.create(t, "bob", keyadmin.CreateOptions{})
	require.NoError(t, authOn(other, a.Raw))
	require.NoError(t, authOn(other, b.Raw))
	lookups := func() int64 { return f.store.lookups.Load() }

	base := lookups()
	require.NoError(t, authOn(other, a.Raw))
	require.NoError(t, authOn(other, b.Raw))
	require.Equal(t, base, lookups(), "both cached")

	require.NoError(t, feed.PublishChange(context.Background(), store.Change{UserID: "alice"}))
	require.NoError(t, authOn(other, a.Raw))
	require.NoError(t, authOn(other, b.Raw))
	require.Equal(t, base+1, lookups(), "alice's key re-read, bob's still cached")

	feed.Deliver(store.Change{Lost: true})
	require.NoError(t, authOn(other, a.Raw))
	require.NoError(t, authOn(other, b.Raw))
	require.Equal(t, base+3, lookups(), "everything re-read after a Lost change")
}

// failingPublisher refuses every publish.
type failingPublisher struct{ calls int }

func (p *failingPublisher) PublishChange(context.Context, store.Change) error {
	p.calls++
	return errors.New("redis: connection refused")
}

// TestPublishFailureKeepsTheChange: the channel being down never undoes or
// blocks a key change; it is logged.
func TestPublishFailureKeepsTheChange(t *testing.T) {
	f := newFixture(t, nil)
	pub := &failingPublisher{}
	mgr := f.manager(t, &keyadmin.Options{Changes: pub})
	k, err := mgr.Create(context.Background(), "u1", keyadmin.CreateOptions{})
	require.NoError(t, err)
	require.NoError(t, mgr.Revoke(context.Background(), k.Key.ID))
	assert.Equal(t, 2, pub.calls, "create and revoke published")
	got, err := f.store.LookupKey(context.Background(), k.Key.ID)
	require.NoError(t, err)
	assert.False(t, got.RevokedAt.IsZero(), "the revocation stands")
	assert.Contains(t, f.logs.String(), "publishing a key change failed")
}

// TestEveryKeyChangeAudited: create, rotate, revoke, revoke-all and import
// each produce an event with the actor and the instance; WithActor names
// the actor; the keys API names the signed-in user.
func TestEveryKeyChangeAudited(t *testing.T) {
	sink := &memSink{}
	f := newFixture(t, &mcpauth.Options{Audit: sink})
	mgr := f.manager(t, &keyadmin.Options{Instance: "api-1", Actor: "cli:ops"})
	ctx := context.Background()

	k1, err := mgr.Create(ctx, "u1", keyadmin.CreateOptions{})
	require.NoError(t, err)
	k2, err := mgr.Rotate(keyadmin.WithActor(ctx, "admin:alice"), k1.Key.ID, time.Minute)
	require.NoError(t, err)
	require.NoError(t, mgr.Revoke(ctx, k1.Key.ID))
	n, err := mgr.RevokeAllForUser(ctx, "u1")
	require.NoError(t, err)
	require.Equal(t, 1, n)
	legacy, err := mgr.ImportLegacy(ctx, "u2", strings.Repeat("ab", 32), keyadmin.CreateOptions{})
	require.NoError(t, err)

	type row struct {
		action          audit.Action
		key, actor, ins string
	}
	var got []row
	for _, e := range sink.all() {
		got = append(got, row{e.Action, e.KeyID, e.Actor, e.Instance})
	}
	assert.Equal(t, []row{
		{audit.ActionCreated, k1.Key.ID, "cli:ops", "api-1"},
		{audit.ActionRotated, k1.Key.ID, "admin:alice", "api-1"},
		{audit.ActionRevoked, k1.Key.ID, "cli:ops", "api-1"},
		{audit.ActionRevoked, k2.Key.ID, "cli:ops", "api-1"},
		{audit.ActionCreated, legacy.ID, "cli:ops", "api-1"},
	}, got)
	assert.Equal(t, k2.Key.ID, sink.all()[1].Attributes["mcpauth.key.new_id"], "the rotation names the new key")
	assert.Equal(t, "true", sink.all()[4].Attributes["mcpauth.key.legacy"])

	// The keys API: the signed-in user is the actor.
	h, err := mgr.Handler(func(*http.Request) (string, error) { return "u3", nil }, nil)
	require.NoError(t, err)
	r := httptest.NewRequest(http.MethodPost, "/keys", bytes.NewBufferString(`{"name":"x"}`))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	last := sink.all()[len(sink.all())-1]
	assert.Equal(t, "user:u3", last.Actor)
	assert.Equal(t, "u3", last.UserID)
	assert.Equal(t, "api-1", last.Instance)

	// Defaults: "host", and the host name and process ID.
	def := f.manager(t, &keyadmin.Options{Audit: sink})
	_, err = def.Create(ctx, "u4", keyadmin.CreateOptions{})
	require.NoError(t, err)
	last = sink.all()[len(sink.all())-1]
	assert.Equal(t, "host", last.Actor)
	assert.Equal(t, audit.DefaultInstance(), last.Instance)
	assert.Contains(t, last.Instance, ":")
}
