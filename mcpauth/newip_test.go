package mcpauth_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/mcpauth/notify"
	"github.com/mcpauth/mcpauth/store"
)

// addrStore is a memory store that counts RecordAddress calls and can fail
// them.
type addrStore struct {
	*store.Memory
	records atomic.Int64
	fail    atomic.Bool
}

func (s *addrStore) RecordAddress(ctx context.Context, keyID, addr string, at time.Time) (bool, error) {
	s.records.Add(1)
	if s.fail.Load() {
		return false, errors.New("dial tcp 10.1.2.3:5432: connection refused")
	}
	return s.Memory.RecordAddress(ctx, keyID, addr, at)
}

// instance is one Guard over a shared store, as one process would have.
func instance(t *testing.T, s store.KeyStore, n notify.Notifier, logs *lockedWriter) *mcpauth.Guard {
	t.Helper()
	o := &mcpauth.Options{Peppers: []apikey.Pepper{testPepper}, Notifier: n, Now: newClock().Now}
	if logs != nil {
		o.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}
	g, err := mcpauth.New(s, o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = g.Close(context.Background()) })
	return g
}

func authOn(t *testing.T, g *mcpauth.Guard, raw, remote string) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	r.RemoteAddr = remote
	r.Header.Set("Authorization", "Bearer "+raw)
	_, err := g.Authenticate(r)
	require.NoError(t, err)
}

func newIPs(r *recorder) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ips []string
	for _, n := range r.ns {
		if n.Type == notify.KeyNewIP {
			ips = append(ips, n.IP)
		}
	}
	return ips
}

// TestNewIPOnceAcrossInstancesAndRestarts: two Guards over one store that
// implements store.AddressRecorder announce an address once between them,
// and a restarted Guard does not announce it again. The store is asked once
// per address and process, never per request.
func TestNewIPOnceAcrossInstancesAndRestarts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := &addrStore{Memory: store.NewMemory()}
	rec := &recorder{}
	a, b := instance(t, s, rec, nil), instance(t, s, rec, nil)
	k, err := managerFor(t, a, s, nil).Create(ctx, "alice", keyadmin.CreateOptions{})
	require.NoError(t, err)

	for range 5 {
		authOn(t, a, k.Raw, "203.0.113.1:1000")
		authOn(t, b, k.Raw, "203.0.113.1:2000")
	}
	require.NoError(t, a.Close(ctx))
	require.NoError(t, b.Close(ctx))
	assert.Equal(t, []string{"203.0.113.1"}, newIPs(rec), "one announcement for two instances")
	assert.Equal(t, int64(2), s.records.Load(), "one store call per process and address, none per request")

	restarted := instance(t, s, rec, nil)
	authOn(t, restarted, k.Raw, "203.0.113.1:3000")
	authOn(t, restarted, k.Raw, "198.51.100.7:3000")
	require.NoError(t, restarted.Close(ctx))
	assert.Equal(t, []string{"203.0.113.1", "198.51.100.7"}, newIPs(rec), "a restart announces only the address new to the store")
}

// TestNewIPStoreFailureStillNotifies: when the store cannot record the
// address, the notification is sent anyway and the failure is logged once
// within the rate-limit interval.
func TestNewIPStoreFailureStillNotifies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := &addrStore{Memory: store.NewMemory()}
	s.fail.Store(true)
	rec := &recorder{}
	logs := &lockedWriter{w: &bytes.Buffer{}}
	g := instance(t, s, rec, logs)
	k, err := managerFor(t, g, s, nil).Create(ctx, "alice", keyadmin.CreateOptions{})
	require.NoError(t, err)
	authOn(t, g, k.Raw, "203.0.113.1:1")
	authOn(t, g, k.Raw, "203.0.113.2:1")
	require.NoError(t, g.Close(ctx))
	assert.Equal(t, []string{"203.0.113.1", "203.0.113.2"}, newIPs(rec), "a missed security notice is worse than a duplicate")
	logs.mu.Lock()
	defer logs.mu.Unlock()
	assert.Equal(t, 1, bytes.Count(logs.w.Bytes(), []byte("recording a key's address failed")), "logged once per interval:\n%s", logs.w)
}

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
