package sqltest

import (
	"context"
	"database/sql"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/mcpauth/notify"
	"github.com/mcpauth/mcpauth/store/sqlstore"
)

// ipRecorder keeps the addresses of key.new_ip notifications.
type ipRecorder struct {
	mu  sync.Mutex
	ips []string
}

func (r *ipRecorder) Notify(_ context.Context, n notify.Notification) error {
	if n.Type == notify.KeyNewIP {
		r.mu.Lock()
		r.ips = append(r.ips, n.IP)
		r.mu.Unlock()
	}
	return nil
}

func (r *ipRecorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ips...)
}

// TestNewIPOnceOnSharedSQLite runs two Guards, as two processes would, on
// one SQLite file, then a third as a restart: each address of a key is
// announced once in all, and recorded once in the key_addresses table.
func TestNewIPOnceOnSharedSQLite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := t.TempDir() + "/keys.db"
	var db *sql.DB
	open := func() *sqlstore.Store {
		d, err := sql.Open("sqlite", sqliteDSN(path))
		require.NoError(t, err)
		t.Cleanup(func() { d.Close() })
		db = d
		s, err := sqlstore.New(d, &sqlstore.Options{Dialect: sqlstore.SQLite})
		require.NoError(t, err)
		require.NoError(t, s.Migrate(ctx))
		return s
	}
	rec := &ipRecorder{}
	guard := func() *mcpauth.Guard {
		g, err := mcpauth.New(open(), &mcpauth.Options{Peppers: []apikey.Pepper{revocationPepper}, Notifier: rec})
		require.NoError(t, err)
		t.Cleanup(func() { _ = g.Close(ctx) })
		return g
	}
	auth := func(g *mcpauth.Guard, raw, remote string) {
		t.Helper()
		r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
		r.RemoteAddr = remote
		r.Header.Set("Authorization", "Bearer "+raw)
		_, err := g.Authenticate(r)
		require.NoError(t, err)
	}
	a, b := guard(), guard()
	k, err := newManager(t, open(), revocationPepper, a).Create(ctx, "alice", keyadmin.CreateOptions{})
	require.NoError(t, err)
	for range 3 {
		auth(a, k.Raw, "203.0.113.1:1")
		auth(b, k.Raw, "203.0.113.1:2")
	}
	require.NoError(t, a.Close(ctx))
	require.NoError(t, b.Close(ctx))
	assert.Equal(t, []string{"203.0.113.1"}, rec.got(), "two instances, one announcement")

	restarted := guard()
	auth(restarted, k.Raw, "203.0.113.1:3")
	auth(restarted, k.Raw, "[2001:db8::1]:3")
	require.NoError(t, restarted.Close(ctx))
	assert.Equal(t, []string{"203.0.113.1", "2001:db8::1"}, rec.got(), "a restart announces only the new address")
	assert.Equal(t, 2, countRows(t, db, "mcpauth_key_addresses"))
}
