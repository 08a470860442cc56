package keyadmin_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/mcpauth/notify"
	"github.com/mcpauth/mcpauth/store"
)

// recorder is a Notifier that keeps what it hears.
type recorder struct {
	mu sync.Mutex
	ns []notify.Notification
}

func (r *recorder) Notify(_ context.Context, n notify.Notification) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ns = append(r.ns, n)
	return nil
}

func (r *recorder) types() []notify.Type {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []notify.Type
	for _, n := range r.ns {
		out = append(out, n.Type)
	}
	return out
}

func newManager(t *testing.T, f *fixture, o *keyadmin.Options) *keyadmin.Manager {
	t.Helper()
	return f.manager(t, o)
}

func TestRotationTimeline(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	rec := &recorder{}
	m := newManager(t, f, &keyadmin.Options{Notifier: rec})
	old, err := m.Create(context.Background(), "alice", keyadmin.CreateOptions{Name: "ci", Scopes: []string{"read"}, ExpiresIn: 30 * 24 * time.Hour, Metadata: map[string]string{"tier": "paid"}, RateLimit: 7})
	require.NoError(t, err)
	_, err = f.auth(old.Raw)
	require.NoError(t, err) // cached with its original expiry

	f.clock.Advance(24 * time.Hour)
	fresh, err := m.Rotate(context.Background(), old.Key.ID, time.Hour)
	require.NoError(t, err)
	assert.NotEqual(t, old.Key.ID, fresh.Key.ID)
	assert.Equal(t, "alice", fresh.Key.UserID)
	assert.Equal(t, "ci", fresh.Key.Name)
	assert.Equal(t, []string{"read"}, fresh.Key.Scopes)
	assert.Equal(t, 7, fresh.Key.RateLimit)
	assert.Equal(t, map[string]string{"tier": "paid"}, fresh.Key.Metadata)
	assert.Equal(t, f.clock.Now().Add(30*24*time.Hour), fresh.Key.ExpiresAt, "same lifetime, from now")

	f.clock.Advance(time.Hour - time.Nanosecond)
	_, err = f.auth(old.Raw)
	assert.NoError(t, err, "old key works during grace")
	_, err = f.auth(fresh.Raw)
	assert.NoError(t, err)
	f.clock.Advance(time.Nanosecond)
	_, err = f.auth(old.Raw)
	assert.ErrorIs(t, err, mcpauth.ErrKeyExpired, "and not a moment after")
	_, err = f.auth(fresh.Raw)
	assert.NoError(t, err)
	f.close(t)
	assert.Equal(t, []notify.Type{notify.KeyCreated, notify.KeyRotated}, rec.types())
}

func TestRotateEdgeCases(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	m := newManager(t, f, nil)
	ctx := context.Background()

	k, err := m.Create(ctx, "alice", keyadmin.CreateOptions{})
	require.NoError(t, err)
	_, err = f.auth(k.Raw)
	require.NoError(t, err)
	_, err = m.Rotate(ctx, k.Key.ID, 0)
	require.NoError(t, err)
	_, err = f.auth(k.Raw)
	assert.ErrorIs(t, err, mcpauth.ErrKeyRevoked, "grace 0 ends the old key now")
	_, err = m.Rotate(ctx, k.Key.ID, time.Hour)
	assert.ErrorIs(t, err, keyadmin.ErrInvalidInput, "a revoked key cannot be rotated")

	short, err := m.Create(ctx, "alice", keyadmin.CreateOptions{ExpiresIn: 10 * time.Minute})
	require.NoError(t, err)
	_, err = m.Rotate(ctx, short.Key.ID, 24*time.Hour)
	require.NoError(t, err)
	info, err := m.Get(ctx, short.Key.ID)
	require.NoError(t, err)
	assert.Equal(t, short.Key.ExpiresAt, info.ExpiresAt, "grace never extends the old key past its own expiry")

	_, err = m.Rotate(ctx, "000000000000", time.Hour)
	assert.ErrorIs(t, err, keyadmin.ErrKeyNotFound)
	_, err = m.Rotate(ctx, short.Key.ID, -time.Second)
	assert.ErrorIs(t, err, keyadmin.ErrInvalidInput)
}

// TestRotateWhileVerifying: 8 goroutines use the old key while it is
// rotated; every request succeeds until grace ends and none after.
func TestRotateWhileVerifying(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	m := newManager(t, f, nil)
	old, err := m.Create(context.Background(), "alice", keyadmin.CreateOptions{})
	require.NoError(t, err)

	var failures atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := f.auth(old.Raw); err != nil {
					failures.Add(1)
				}
			}
		}()
	}
	time.Sleep(5 * time.Millisecond)
	fresh, err := m.Rotate(context.Background(), old.Key.ID, time.Minute)
	require.NoError(t, err)
	time.Sleep(5 * time.Millisecond)
	close(stop)
	wg.Wait()
	assert.Zero(t, failures.Load(), "no request fails during grace")

	f.clock.Advance(time.Minute)
	var after atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if _, err := f.auth(old.Raw); errors.Is(err, mcpauth.ErrKeyExpired) {
					after.Add(1)
				}
				if _, err := f.auth(fresh.Raw); err != nil {
					t.Errorf("new key failed: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, int64(400), after.Load(), "every request with the old key fails after grace")
}

func TestCreateLimitsAndValidation(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ceilings := map[string][]string{"member": {"documents:read", "documents:write"}, "owner": {"admin"}}
	m := newManager(t, f, &keyadmin.Options{
		MaxActiveKeys: 2,
		MaxLifetime:   365 * 24 * time.Hour,
		AllowedScopes: []string{"documents:read", "documents:write", "documents:delete", "admin"},
		ScopeCeiling: func(_ context.Context, userID string) ([]string, error) {
			if userID == "broken" {
				return nil, errors.New("directory down")
			}
			return ceilings[userID], nil
		},
	})
	ctx := context.Background()

	tests := []struct {
		name    string
		user    string
		o       keyadmin.CreateOptions
		wantErr error
		field   string
	}{
		{"empty user", "", keyadmin.CreateOptions{}, keyadmin.ErrInvalidInput, "user_id"},
		{"unknown scope", "member", keyadmin.CreateOptions{Scopes: []string{"documents:read", "billing:read"}}, keyadmin.ErrInvalidInput, "scopes[1]"},
		{"bad scope characters", "member", keyadmin.CreateOptions{Scopes: []string{"read everything"}}, keyadmin.ErrInvalidInput, "scopes[0]"},
		{"beyond ceiling", "member", keyadmin.CreateOptions{Scopes: []string{"documents:delete"}}, keyadmin.ErrScopeNotAllowed, ""},
		{"admin beyond ceiling", "member", keyadmin.CreateOptions{Scopes: []string{"admin"}}, keyadmin.ErrScopeNotAllowed, ""},
		{"lifetime too long", "member", keyadmin.CreateOptions{ExpiresIn: 400 * 24 * time.Hour}, keyadmin.ErrInvalidInput, "expires_in"},
		{"negative lifetime", "member", keyadmin.CreateOptions{ExpiresIn: -time.Hour}, keyadmin.ErrInvalidInput, "expires_in"},
		{"bad cidr", "member", keyadmin.CreateOptions{AllowedCIDRs: []string{"10.0.0.0/33"}}, keyadmin.ErrInvalidInput, "allowed_cidrs[0]"},
		{"negative rate", "member", keyadmin.CreateOptions{RateLimit: -1}, keyadmin.ErrInvalidInput, "rate_limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := m.Create(ctx, tt.user, tt.o)
			require.ErrorIs(t, err, tt.wantErr)
			if tt.field != "" {
				var ve *keyadmin.ValidationError
				require.ErrorAs(t, err, &ve)
				assert.Equal(t, tt.field, ve.Field)
			}
		})
	}
	_, err := m.Create(ctx, "broken", keyadmin.CreateOptions{Scopes: []string{"documents:read"}})
	require.Error(t, err)

	owner, err := m.Create(ctx, "owner", keyadmin.CreateOptions{Scopes: []string{"admin", "documents:delete"}})
	require.NoError(t, err, "admin ceiling covers everything")
	assert.Equal(t, f.clock.Now().Add(keyadmin.DefaultKeyLifetime), owner.Key.ExpiresAt)

	_, err = m.Create(ctx, "member", keyadmin.CreateOptions{Scopes: []string{"documents:read"}, AllowedCIDRs: []string{"10.0.0.1", "2001:db8::/32"}})
	require.NoError(t, err)
	second, err := m.Create(ctx, "member", keyadmin.CreateOptions{})
	require.NoError(t, err)
	_, err = m.Create(ctx, "member", keyadmin.CreateOptions{})
	require.ErrorIs(t, err, keyadmin.ErrTooManyKeys)
	require.NoError(t, m.Revoke(ctx, second.Key.ID))
	_, err = m.Create(ctx, "member", keyadmin.CreateOptions{})
	require.NoError(t, err, "revoked keys do not count")
}

func TestMaxActiveKeysUnderConcurrency(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	m := newManager(t, f, &keyadmin.Options{MaxActiveKeys: 5})
	var ok atomic.Int64
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := m.Create(context.Background(), "alice", keyadmin.CreateOptions{}); err == nil {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, int64(5), ok.Load())
}

func TestListGetRevokeAll(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	rec := &recorder{}
	m := newManager(t, f, &keyadmin.Options{Notifier: rec})
	ctx := context.Background()
	var ids []string
	for i := range 3 {
		k, err := m.Create(ctx, "alice", keyadmin.CreateOptions{Name: fmt.Sprint("k", i)})
		require.NoError(t, err)
		ids = append(ids, k.Key.ID)
		f.clock.Advance(time.Second)
	}
	_, err := m.Create(ctx, "bob", keyadmin.CreateOptions{})
	require.NoError(t, err)
	require.NoError(t, m.Revoke(ctx, ids[0]))
	require.NoError(t, m.Revoke(ctx, ids[0]), "revoking twice is fine")

	list, err := m.List(ctx, "alice")
	require.NoError(t, err)
	require.Len(t, list, 3)
	assert.Equal(t, store.StatusRevoked, list[0].Status)
	assert.Equal(t, store.StatusActive, list[1].Status)
	assert.Equal(t, "k2", list[2].Name)

	n, err := m.RevokeAllForUser(ctx, "alice")
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	for _, id := range ids {
		info, err := m.Get(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, store.StatusRevoked, info.Status)
	}
	bob, err := m.List(ctx, "bob")
	require.NoError(t, err)
	assert.Equal(t, store.StatusActive, bob[0].Status, "other users untouched")
	_, err = m.Get(ctx, "000000000000")
	assert.ErrorIs(t, err, keyadmin.ErrKeyNotFound)
	assert.ErrorIs(t, err, store.ErrNotFound)
	f.close(t)
	assert.Equal(t, 3, countType(rec, notify.KeyRevoked), "one notification per key actually revoked")
}

func countType(r *recorder, typ notify.Type) int {
	n := 0
	for _, t := range r.types() {
		if t == typ {
			n++
		}
	}
	return n
}

func TestLegacyImport(t *testing.T) {
	t.Parallel()
	legacyRaw := "sk_live_3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c" // a hand-rolled key, seed style
	sum := apikey.LegacyKeyHash(legacyRaw)

	for _, accept := range []bool{false, true} {
		t.Run(fmt.Sprint("accept=", accept), func(t *testing.T) {
			f := newFixture(t, &mcpauth.Options{AcceptLegacyKeys: accept})
			m := newManager(t, f, nil)
			info, err := m.ImportLegacy(context.Background(), "alice", hex.EncodeToString(sum[:]), keyadmin.CreateOptions{Name: "old agent", Scopes: []string{"read"}})
			require.NoError(t, err)
			assert.Len(t, info.ID, 12)
			p, err := f.auth(legacyRaw)
			if !accept {
				assert.ErrorIs(t, err, apikey.ErrMalformedKey)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "alice", p.UserID)
			_, err = f.auth(legacyRaw + "x")
			assert.ErrorIs(t, err, mcpauth.ErrInvalidKey)
			require.NoError(t, m.Revoke(context.Background(), info.ID))
			_, err = f.auth(legacyRaw)
			assert.ErrorIs(t, err, mcpauth.ErrKeyRevoked)
		})
	}
	f := newFixture(t, nil)
	_, err := newManager(t, f, nil).ImportLegacy(context.Background(), "alice", "nothex", keyadmin.CreateOptions{})
	var ve *keyadmin.ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "hash", ve.Field)
}

func authFrom(f *fixture, raw, remote string, headers map[string]string) (mcpauth.Principal, error) {
	r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	r.RemoteAddr = remote
	r.Header.Set("Authorization", "Bearer "+raw)
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	return f.guard.Authenticate(r)
}

func TestIPAllowlist(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &mcpauth.Options{TrustedProxies: []string{"10.0.0.0/8", "::1"}})
	k := f.create(t, "alice", keyadmin.CreateOptions{AllowedCIDRs: []string{"203.0.113.0/24", "2001:db8::/32"}})
	open := f.create(t, "alice", keyadmin.CreateOptions{})
	tests := []struct {
		name    string
		remote  string
		headers map[string]string
		ok      bool
	}{
		{"direct, allowed v4", "203.0.113.9:5555", nil, true},
		{"direct, allowed v6", "[2001:db8::7]:443", nil, true},
		{"direct, v4-mapped v6", "[::ffff:203.0.113.9]:443", nil, true},
		{"direct, denied", "198.51.100.1:5555", nil, false},
		{"untrusted peer cannot spoof XFF", "198.51.100.1:5555", map[string]string{"X-Forwarded-For": "203.0.113.9"}, false},
		{"trusted proxy, XFF allowed", "10.1.2.3:80", map[string]string{"X-Forwarded-For": "203.0.113.9"}, true},
		{"trusted proxy, XFF denied", "10.1.2.3:80", map[string]string{"X-Forwarded-For": "198.51.100.1"}, false},
		{"client-forged left entry ignored", "10.1.2.3:80", map[string]string{"X-Forwarded-For": "203.0.113.9, 198.51.100.1"}, false},
		{"two trusted hops", "10.1.2.3:80", map[string]string{"X-Forwarded-For": "203.0.113.9, 10.9.9.9"}, true},
		{"Forwarded ignored by default (X-Forwarded-For is the trusted header)", "[::1]:80", map[string]string{"Forwarded": `for="[2001:db8::1]:4711";proto=https`}, false},
		{"garbage hop stops the walk", "10.1.2.3:80", map[string]string{"X-Forwarded-For": "203.0.113.9, nonsense"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := authFrom(f, k.Raw, tt.remote, tt.headers)
			if tt.ok {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, mcpauth.ErrAddressNotAllowed)
			}
			_, err = authFrom(f, open.Raw, tt.remote, tt.headers)
			assert.NoError(t, err, "a key without allowlist works from anywhere")
		})
	}
	assert.Equal(t, 403, mcpauth.ResponseFor(mcpauth.ErrAddressNotAllowed, "").Status)
	_, err := mcpauth.New(store.NewMemory(), &mcpauth.Options{TrustedProxies: []string{"not-an-ip"}})
	require.ErrorContains(t, err, "TrustedProxies[0]")
}

func TestNewIPNotifications(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	f := newFixture(t, &mcpauth.Options{Notifier: rec})
	k := f.create(t, "alice", keyadmin.CreateOptions{Name: "laptop"})
	for range 3 {
		for _, remote := range []string{"203.0.113.1:1", "203.0.113.1:2", "198.51.100.7:3"} {
			_, err := authFrom(f, k.Raw, remote, nil)
			require.NoError(t, err)
		}
	}
	f.close(t)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	require.Len(t, rec.ns, 3, "key.created and one key.new_ip per new address, ports ignored")
	var newIPs []notify.Notification
	created := 0
	for _, n := range rec.ns { // the Guard and the Manager each send from a goroutine of their own
		switch n.Type {
		case notify.KeyCreated:
			created++
		case notify.KeyNewIP:
			newIPs = append(newIPs, n)
		}
	}
	assert.Equal(t, 1, created, "one Notifier, given to both, hears the Manager's notifications too")
	require.Len(t, newIPs, 2)
	assert.Equal(t, notify.Notification{Type: notify.KeyNewIP, At: f.clock.Now(), UserID: "alice", KeyID: k.Key.ID, KeyName: "laptop", IP: "203.0.113.1"}, newIPs[0])
	assert.Equal(t, "198.51.100.7", newIPs[1].IP)
	_, err := authFrom(f, k.Raw, "192.0.2.1:1", nil)
	require.NoError(t, err, "uses after Close still authenticate")
}

func TestLifecycleIsAudited(t *testing.T) {
	t.Parallel()
	sink := &memSink{}
	f := newFixture(t, &mcpauth.Options{Audit: sink})
	m := f.mgr
	k, err := m.Create(context.Background(), "alice", keyadmin.CreateOptions{})
	require.NoError(t, err)
	fresh, err := m.Rotate(context.Background(), k.Key.ID, time.Minute)
	require.NoError(t, err)
	require.NoError(t, m.Revoke(context.Background(), fresh.Key.ID))
	evs := sink.all()
	require.Len(t, evs, 3)
	assert.Equal(t, audit.ActionCreated, evs[0].Action)
	assert.Equal(t, audit.ActionRotated, evs[1].Action)
	assert.Equal(t, fresh.Key.ID, evs[1].Attributes["mcpauth.key.new_id"])
	assert.Equal(t, audit.ActionRevoked, evs[2].Action)
	for _, e := range evs {
		assert.Equal(t, "alice", e.UserID)
	}
}

func TestNotifyExpiring(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	rec := &recorder{}
	m := newManager(t, f, &keyadmin.Options{Notifier: rec})
	ctx := context.Background()
	soon, err := m.Create(ctx, "alice", keyadmin.CreateOptions{Name: "ci", ExpiresIn: 6 * 24 * time.Hour})
	require.NoError(t, err)
	_, err = m.Create(ctx, "alice", keyadmin.CreateOptions{ExpiresIn: 30 * 24 * time.Hour})
	require.NoError(t, err)
	gone, err := m.Create(ctx, "bob", keyadmin.CreateOptions{ExpiresIn: 5 * 24 * time.Hour})
	require.NoError(t, err)
	require.NoError(t, m.Revoke(ctx, gone.Key.ID))

	now := f.clock.Now()
	n, err := m.NotifyExpiring(ctx, now, now.Add(7*24*time.Hour))
	require.NoError(t, err)
	assert.Equal(t, 1, n, "only the active key expiring within the window")
	f.close(t)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var got []notify.Notification
	for _, note := range rec.ns {
		if note.Type == notify.KeyExpiringSoon {
			got = append(got, note)
		}
	}
	require.Len(t, got, 1)
	assert.Equal(t, notify.Notification{Type: notify.KeyExpiringSoon, At: now, UserID: "alice", KeyID: soon.Key.ID, KeyName: "ci", ExpiresAt: soon.Key.ExpiresAt}, got[0])

	_, err = f.mgr.NotifyExpiring(ctx, now, now.Add(time.Hour))
	assert.Error(t, err, "no notifier configured")
}

// TestMaxActiveKeysExactUnderConcurrency: a Manager serialises the key
// changes of one user, so 40 concurrent creates (and rotations) never take
// a user past MaxActiveKeys. Before the split, each Guard.NewManager had
// its own locks and the bound was not exact even in one process.
func TestMaxActiveKeysExactUnderConcurrency(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	m := newManager(t, f, &keyadmin.Options{MaxActiveKeys: 3})
	var wg sync.WaitGroup
	var created atomic.Int32
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := m.Create(context.Background(), "bob", keyadmin.CreateOptions{}); err == nil {
				created.Add(1)
			} else {
				assert.ErrorIs(t, err, keyadmin.ErrTooManyKeys)
			}
		}()
	}
	wg.Wait()
	assert.EqualValues(t, 3, created.Load(), "exactly MaxActiveKeys keys")
	keys, err := f.mgr.List(context.Background(), "bob")
	require.NoError(t, err)
	assert.Len(t, keys, 3)
}

// TestNoNewIPNotificationForRefusedUse: a key of an inactive user (or one
// whose user check fails) is refused, and its address is not announced.
func TestNoNewIPNotificationForRefusedUse(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	var inactive atomic.Bool
	inactive.Store(true)
	f := newFixture(t, &mcpauth.Options{Notifier: rec, Users: store.UserCheckerFunc(func(context.Context, string) (bool, error) { return !inactive.Load(), nil })})
	k := f.create(t, "alice", keyadmin.CreateOptions{})
	_, err := authFrom(f, k.Raw, "203.0.113.9:1", nil)
	require.ErrorIs(t, err, mcpauth.ErrUserInactive)
	inactive.Store(false)
	_, err = authFrom(f, k.Raw, "198.51.100.1:1", nil)
	require.NoError(t, err)
	f.close(t)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var ips []string
	for _, n := range rec.ns {
		if n.Type == notify.KeyNewIP {
			ips = append(ips, n.IP)
		}
	}
	assert.Equal(t, []string{"198.51.100.1"}, ips, "the refused use from 203.0.113.9 is not announced")
}
