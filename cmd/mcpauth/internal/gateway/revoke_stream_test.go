package gateway

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
)

// A revoked key's event stream through the gateway ends, upstream too:
// the Guard cancels the GET's context, and the proxy ends the upstream
// request with it. Another user's stream stays open, and the revoked key
// cannot reopen one.
func TestGatewayEndsEventStreamOfRevokedKey(t *testing.T) {
	var open atomic.Int32 // GETs the upstream is serving
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "only streams here", http.StatusMethodNotAllowed)
			return
		}
		open.Add(1)
		defer open.Add(-1)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, ": ok\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	t.Cleanup(upstream.Close) // last: after the streams and the gateway
	g := startGateway(t, httpConfig(upstream.URL))
	create := func(user string) keyadmin.CreatedKey {
		k, err := g.mgr.Create(context.Background(), user, keyadmin.CreateOptions{Scopes: []string{"tools:basic"}, ExpiresIn: time.Hour})
		require.NoError(t, err)
		return k
	}
	alice, bob := create("alice"), create("bob")

	stream := func(raw string) (int, chan struct{}) {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.url, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+raw)
		req.Header.Set("Accept", "text/event-stream")
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		ended := make(chan struct{})
		go func() {
			defer close(ended)
			defer res.Body.Close()
			_, _ = io.Copy(io.Discard, res.Body)
		}()
		return res.StatusCode, ended
	}
	status, aliceEnded := stream(alice.Raw)
	require.Equal(t, http.StatusOK, status)
	status, bobEnded := stream(bob.Raw)
	require.Equal(t, http.StatusOK, status)
	require.Eventually(t, func() bool { return open.Load() == 2 }, 10*time.Second, 5*time.Millisecond, "both streams reached the upstream")

	// Revoked behind the Guard's back, then forgotten, as the revocation
	// poll does for a key revoked by the CLI on the gateway's database.
	require.NoError(t, g.mgr.Revoke(context.Background(), alice.Key.ID))
	g.srv.gen.Load().guard.Forget(alice.Key.ID)

	select {
	case <-aliceEnded:
	case <-time.After(10 * time.Second):
		t.Fatal("the revoked key's stream is still open")
	}
	require.Eventually(t, func() bool { return open.Load() == 1 }, 10*time.Second, 5*time.Millisecond, "the upstream request outlived the revocation")
	select {
	case <-bobEnded:
		t.Fatal("another key's stream ended")
	case <-time.After(200 * time.Millisecond):
	}
	status, _ = stream(alice.Raw)
	assert.Equal(t, http.StatusUnauthorized, status, "reopening with the revoked key")
	assert.Equal(t, int32(1), open.Load())
}
