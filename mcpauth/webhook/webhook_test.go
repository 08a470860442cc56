package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/mcpauth/notify"
	"github.com/mcpauth/mcpauth/mcpauth/webhook"
	"github.com/mcpauth/mcpauth/store"
)

var (
	secret = []byte("0123456789abcdef-test-secret")
	t0     = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
)

// sleeper records the waits a Notifier asks for instead of sleeping.
type sleeper struct {
	mu    sync.Mutex
	waits []time.Duration
	hook  func()
}

func (s *sleeper) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	hook := s.hook
	s.mu.Unlock()
	if hook != nil {
		hook()
	}
	return ctx.Err()
}

func (s *sleeper) got() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waits...)
}

// received is one request as the test server saw it.
type received struct {
	header http.Header
	body   []byte
}

// recorder is an httptest server answering with a scripted list of handlers
// (the last one repeats) and keeping every request.
type recorder struct {
	mu   sync.Mutex
	reqs []received
}

func (r *recorder) serve(t *testing.T, script ...http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, received{header: req.Header.Clone(), body: body})
		n := len(r.reqs)
		r.mu.Unlock()
		script[min(n, len(script))-1](w, req)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func (r *recorder) all() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.reqs...)
}

func status(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
}

func newNotifier(t *testing.T, url string, o webhook.Options) (*webhook.Notifier, *sleeper) {
	t.Helper()
	s := &sleeper{}
	if o.Now == nil {
		o.Now = func() time.Time { return t0 }
	}
	o.Sleep = s.sleep
	n, err := webhook.New(url, secret, &o)
	require.NoError(t, err)
	return n, s
}

var note = notify.Notification{Type: notify.KeyCreated, At: t0, UserID: "user-1", KeyID: "AbCdEfGhIjKl", KeyName: "laptop"}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, url string
		secret    []byte
		opts      *webhook.Options
		want      string
	}{
		{"ftp scheme", "ftp://example.com/x", secret, nil, "scheme must be http or https"},
		{"no scheme", "example.com/hook", secret, nil, "scheme must be http or https"},
		{"no host", "https:///hook", secret, nil, "no host"},
		{"user info", "https://u:p@example.com/hook", secret, nil, "user info"},
		{"bad url", "https://exa mple.com/%zz", secret, nil, "does not parse"},
		{"short secret", "https://example.com/hook", []byte("short"), nil, "at least 16 bytes, got 5"},
		{"nil secret", "https://example.com/hook", nil, nil, "at least 16 bytes, got 0"},
		{"negative timeout", "https://example.com/hook", secret, &webhook.Options{Timeout: -1}, "negative"},
		{"negative attempts", "https://example.com/hook", secret, &webhook.Options{MaxAttempts: -1}, "negative"},
		{"short additional secret", "https://example.com/hook", secret, &webhook.Options{AdditionalSecrets: [][]byte{[]byte("0123456789abcdef"), []byte("tiny")}}, "AdditionalSecrets[1] must be at least 16 bytes, got 4"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n, err := webhook.New(tc.url, tc.secret, tc.opts)
			require.ErrorIs(t, err, webhook.ErrInvalidOption)
			assert.Nil(t, n)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), string(secret))
		})
	}
	for _, u := range []string{"http://localhost:8080/hook", "https://example.com/hooks/mcpauth?token=x"} {
		_, err := webhook.New(u, secret, nil)
		assert.NoError(t, err, u)
	}
}

func TestNotifySignsAndVerifies(t *testing.T) {
	t.Parallel()
	var rec recorder
	srv := rec.serve(t, status(http.StatusNoContent))
	n, _ := newNotifier(t, srv.URL+"/hook", webhook.Options{})
	require.NoError(t, n.Notify(context.Background(), note))

	reqs := rec.all()
	require.Len(t, reqs, 1)
	r := reqs[0]
	assert.Equal(t, "application/json", r.header.Get("Content-Type"))
	assert.Equal(t, "mcpauth-webhook/1", r.header.Get("User-Agent"))
	assert.Equal(t, strconv.FormatInt(t0.Unix(), 10), r.header.Get(webhook.HeaderTimestamp))
	assert.Equal(t, webhook.Sign(secret, t0.Unix(), r.body), r.header.Get(webhook.HeaderSignature))
	require.NoError(t, webhook.Verify(secret, r.header, r.body, t0.Add(time.Minute), 0))

	var p webhook.Payload
	require.NoError(t, json.Unmarshal(r.body, &p))
	assert.Len(t, p.ID, 32)
	assert.Equal(t, r.header.Get(webhook.HeaderDelivery), p.ID)
	assert.Equal(t, note, p.Notification)
	// The body is the flat notification plus "id".
	var flat map[string]any
	require.NoError(t, json.Unmarshal(r.body, &flat))
	assert.Equal(t, "key.created", flat["type"])
	assert.Equal(t, "user-1", flat["user_id"])
	assert.NotContains(t, flat, "Notification")
}

func TestDeliveryIDsAreUnique(t *testing.T) {
	t.Parallel()
	var rec recorder
	srv := rec.serve(t, status(http.StatusOK))
	n, _ := newNotifier(t, srv.URL, webhook.Options{})
	for range 20 {
		require.NoError(t, n.Notify(context.Background(), note))
	}
	seen := map[string]bool{}
	for _, r := range rec.all() {
		id := r.header.Get(webhook.HeaderDelivery)
		assert.False(t, seen[id], "delivery id %s repeated", id)
		seen[id] = true
	}
	assert.Len(t, seen, 20)
}

func signedHeader(ts int64, sig string) http.Header {
	h := http.Header{}
	if ts != 0 {
		h.Set(webhook.HeaderTimestamp, strconv.FormatInt(ts, 10))
	}
	if sig != "" {
		h.Set(webhook.HeaderSignature, sig)
	}
	return h
}

func TestVerify(t *testing.T) {
	t.Parallel()
	body := []byte(`{"id":"1","type":"key.revoked"}`)
	ts := t0.Unix()
	good := webhook.Sign(secret, ts, body)
	cases := []struct {
		name      string
		secret    []byte
		header    http.Header
		body      []byte
		now       time.Time
		tolerance time.Duration
		want      error
	}{
		{"valid", secret, signedHeader(ts, good), body, t0, 0, nil},
		{"valid at the edge of the window", secret, signedHeader(ts, good), body, t0.Add(5 * time.Minute), 0, nil},
		{"valid with small clock skew ahead", secret, signedHeader(ts, good), body, t0.Add(-time.Minute), 0, nil},
		{"several signatures, one valid", secret, signedHeader(ts, "v1=00ff, v0=abc,"+good), body, t0, 0, nil},
		{"tampered body", secret, signedHeader(ts, good), []byte(`{"id":"1","type":"key.created"}`), t0, 0, webhook.ErrBadSignature},
		{"body with trailing byte", secret, signedHeader(ts, good), append(append([]byte{}, body...), ' '), t0, 0, webhook.ErrBadSignature},
		{"timestamp changed", secret, signedHeader(ts+1, good), body, t0, 0, webhook.ErrBadSignature},
		{"wrong secret", []byte("another-secret-of-16+"), signedHeader(ts, good), body, t0, 0, webhook.ErrBadSignature},
		{"replayed after the window", secret, signedHeader(ts, good), body, t0.Add(5*time.Minute + time.Second), 0, webhook.ErrBadTimestamp},
		{"replay with custom tolerance", secret, signedHeader(ts, good), body, t0.Add(31 * time.Second), 30 * time.Second, webhook.ErrBadTimestamp},
		{"from the future", secret, signedHeader(ts, good), body, t0.Add(-10 * time.Minute), 0, webhook.ErrBadTimestamp},
		{"replay with fresh timestamp, old signature", secret, signedHeader(t0.Add(time.Hour).Unix(), good), body, t0.Add(time.Hour), 0, webhook.ErrBadSignature},
		{"missing timestamp", secret, signedHeader(0, good), body, t0, 0, webhook.ErrMissingHeader},
		{"missing signature", secret, signedHeader(ts, ""), body, t0, 0, webhook.ErrMissingHeader},
		{"timestamp not a number", secret, http.Header{webhook.HeaderTimestamp: {"yesterday"}, webhook.HeaderSignature: {good}}, body, t0, 0, webhook.ErrBadTimestamp},
		{"timestamp in milliseconds", secret, signedHeader(t0.UnixMilli(), webhook.Sign(secret, t0.UnixMilli(), body)), body, t0, 0, webhook.ErrBadTimestamp},
		{"unknown scheme only", secret, signedHeader(ts, strings.Replace(good, "v1=", "v2=", 1)), body, t0, 0, webhook.ErrBadSignature},
		{"not hex", secret, signedHeader(ts, "v1="+strings.Repeat("zz", 32)), body, t0, 0, webhook.ErrBadSignature},
		{"truncated signature", secret, signedHeader(ts, good[:len(good)-2]), body, t0, 0, webhook.ErrBadSignature},
		{"empty secret", nil, signedHeader(ts, webhook.Sign(nil, ts, body)), body, t0, 0, webhook.ErrBadSignature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := webhook.Verify(tc.secret, tc.header, tc.body, tc.now, tc.tolerance)
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.want)
			assert.NotContains(t, err.Error(), string(secret))
			assert.NotContains(t, err.Error(), strings.TrimPrefix(good, "v1="), "error must not reveal the expected signature")
		})
	}
}

func TestRetryOn500ThenSuccess(t *testing.T) {
	t.Parallel()
	var rec recorder
	srv := rec.serve(t, status(http.StatusInternalServerError), status(http.StatusBadGateway), status(http.StatusOK))
	clock := t0
	n, s := newNotifier(t, srv.URL, webhook.Options{Now: func() time.Time { clock = clock.Add(time.Second); return clock }})
	require.NoError(t, n.Notify(context.Background(), note))

	reqs := rec.all()
	require.Len(t, reqs, 3)
	assert.Equal(t, []time.Duration{time.Second, 2 * time.Second}, s.got())
	id := reqs[0].header.Get(webhook.HeaderDelivery)
	for i, r := range reqs {
		assert.Equal(t, id, r.header.Get(webhook.HeaderDelivery), "attempt %d keeps the delivery id", i+1)
		assert.Equal(t, reqs[0].body, r.body, "attempt %d sends the same body", i+1)
		assert.NoError(t, webhook.Verify(secret, r.header, r.body, t0, 0), "attempt %d", i+1)
	}
	assert.NotEqual(t, reqs[0].header.Get(webhook.HeaderTimestamp), reqs[2].header.Get(webhook.HeaderTimestamp), "each attempt is signed afresh")
}

func TestNoRetryOnClientErrors(t *testing.T) {
	t.Parallel()
	for _, code := range []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusNotFound, http.StatusGone, http.StatusFound} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			t.Parallel()
			var rec recorder
			srv := rec.serve(t, func(w http.ResponseWriter, r *http.Request) {
				if code == http.StatusFound {
					http.Redirect(w, r, "/elsewhere", code)
					return
				}
				w.WriteHeader(code)
			})
			n, s := newNotifier(t, srv.URL, webhook.Options{})
			err := n.Notify(context.Background(), note)
			require.ErrorIs(t, err, webhook.ErrDelivery)
			var de *webhook.DeliveryError
			require.ErrorAs(t, err, &de)
			assert.Equal(t, code, de.StatusCode)
			assert.Equal(t, 1, de.Attempts)
			assert.Len(t, rec.all(), 1, "no retry, no redirect followed")
			assert.Empty(t, s.got())
		})
	}
}

func TestGivesUpAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	var rec recorder
	srv := rec.serve(t, status(http.StatusServiceUnavailable))
	n, s := newNotifier(t, srv.URL+"/hook?token=url-secret-token", webhook.Options{MaxAttempts: 4, InitialBackoff: 3 * time.Second, MaxBackoff: 10 * time.Second})
	err := n.Notify(context.Background(), note)
	var de *webhook.DeliveryError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, 4, de.Attempts)
	assert.Equal(t, http.StatusServiceUnavailable, de.StatusCode)
	assert.Len(t, rec.all(), 4)
	assert.Equal(t, []time.Duration{3 * time.Second, 6 * time.Second, 10 * time.Second}, s.got())
	assert.Contains(t, err.Error(), "after 4 attempts: status 503")
	assert.NotContains(t, err.Error(), "url-secret-token", "the URL's path and query stay out of errors")
	assert.NotContains(t, err.Error(), "/hook")
	assert.NotContains(t, err.Error(), string(secret))
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		value string
		want  time.Duration
	}{
		{"seconds longer than backoff", "7", 7 * time.Second},
		{"seconds shorter than backoff", "0", time.Second},
		{"capped", "3600", 60 * time.Second},
		{"http date", t0.Add(20 * time.Second).Format(http.TimeFormat), 20 * time.Second},
		{"date in the past", t0.Add(-time.Hour).Format(http.TimeFormat), time.Second},
		{"garbage", "soon", time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var rec recorder
			srv := rec.serve(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", tc.value)
				w.WriteHeader(http.StatusTooManyRequests)
			}, status(http.StatusOK))
			n, s := newNotifier(t, srv.URL, webhook.Options{})
			require.NoError(t, n.Notify(context.Background(), note))
			assert.Equal(t, []time.Duration{tc.want}, s.got())
		})
	}
}

func TestRetryOnNetworkError(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	n, s := newNotifier(t, url, webhook.Options{})
	err := n.Notify(context.Background(), note)
	var de *webhook.DeliveryError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, 3, de.Attempts)
	assert.Zero(t, de.StatusCode)
	require.Error(t, de.Err)
	assert.Len(t, s.got(), 2)
}

func TestAttemptTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var rec recorder
	srv := rec.serve(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	n, s := newNotifier(t, srv.URL, webhook.Options{Timeout: 50 * time.Millisecond, MaxAttempts: 2})
	start := time.Now()
	err := n.Notify(context.Background(), note)
	require.ErrorIs(t, err, webhook.ErrDelivery)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Len(t, s.got(), 1, "a timeout is retried")
}

func TestContextCancelledWhileWaiting(t *testing.T) {
	t.Parallel()
	var rec recorder
	srv := rec.serve(t, status(http.StatusInternalServerError))
	ctx, cancel := context.WithCancel(context.Background())
	s := &sleeper{hook: cancel}
	n, err := webhook.New(srv.URL, secret, &webhook.Options{Sleep: s.sleep, Now: func() time.Time { return t0 }})
	require.NoError(t, err)
	err = n.Notify(ctx, note)
	require.ErrorIs(t, err, context.Canceled)
	assert.NotErrorIs(t, err, webhook.ErrDelivery)
	assert.Len(t, rec.all(), 1, "no attempt after cancellation")
}

func TestContextCancelledDuringRequest(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	var rec recorder
	srv := rec.serve(t, func(w http.ResponseWriter, r *http.Request) {
		cancel()
		<-r.Context().Done()
	})
	n, s := newNotifier(t, srv.URL, webhook.Options{})
	err := n.Notify(ctx, note)
	require.ErrorIs(t, err, context.Canceled)
	assert.Empty(t, s.got())
	assert.Len(t, rec.all(), 1)
}

func TestSecretNeverPrinted(t *testing.T) {
	t.Parallel()
	n, err := webhook.New("https://example.com/hook?token=abc", secret, nil)
	require.NoError(t, err)
	for _, s := range []string{fmt.Sprint(n), fmt.Sprintf("%v", n), fmt.Sprintf("%+v", n), fmt.Sprintf("%#v", n), n.String()} {
		assert.NotContains(t, s, string(secret))
		assert.NotContains(t, s, "token=abc")
		assert.Contains(t, s, "https://example.com")
	}
}

func TestSecretIsCopied(t *testing.T) {
	t.Parallel()
	var rec recorder
	srv := rec.serve(t, status(http.StatusOK))
	mine := append([]byte(nil), secret...)
	n, err := webhook.New(srv.URL, mine, &webhook.Options{Now: func() time.Time { return t0 }})
	require.NoError(t, err)
	mine[0] ^= 0xff
	require.NoError(t, n.Notify(context.Background(), note))
	r := rec.all()[0]
	assert.NoError(t, webhook.Verify(secret, r.header, r.body, t0, 0))
}

func TestWithManager(t *testing.T) {
	t.Parallel()
	var rec recorder
	srv := rec.serve(t, status(http.StatusOK))
	n, _ := newNotifier(t, srv.URL, webhook.Options{Now: time.Now})
	mgr, err := keyadmin.New(store.NewMemory(), &keyadmin.Options{Notifier: n})
	require.NoError(t, err)
	ctx := context.Background()
	k, err := mgr.Create(ctx, "user-7", keyadmin.CreateOptions{Name: "ci"})
	require.NoError(t, err)
	fresh, err := mgr.Rotate(ctx, k.Key.ID, time.Hour)
	require.NoError(t, err)
	require.NoError(t, mgr.Revoke(ctx, fresh.Key.ID))
	require.NoError(t, mgr.Close(ctx), "Close delivers the queued notifications")

	var types []notify.Type
	for _, r := range rec.all() {
		require.NoError(t, webhook.Verify(secret, r.header, r.body, time.Now(), 0))
		assert.NotContains(t, string(r.body), k.Raw)
		assert.NotContains(t, string(r.body), fresh.Raw)
		var p webhook.Payload
		require.NoError(t, json.Unmarshal(r.body, &p))
		assert.Equal(t, "user-7", p.UserID)
		types = append(types, p.Type)
	}
	assert.Equal(t, []notify.Type{notify.KeyCreated, notify.KeyRotated, notify.KeyRevoked}, types)
}

func TestSecretRotation(t *testing.T) {
	t.Parallel()
	var rec recorder
	srv := rec.serve(t, status(http.StatusOK))
	next := []byte("the-next-secret-0123456789")
	n, err := webhook.New(srv.URL, secret, &webhook.Options{AdditionalSecrets: [][]byte{next}, Now: func() time.Time { return t0 }})
	require.NoError(t, err)
	require.NoError(t, n.Notify(context.Background(), note))
	r := rec.all()[0]
	assert.Equal(t, webhook.Sign(secret, t0.Unix(), r.body)+","+webhook.Sign(next, t0.Unix(), r.body), r.header.Get(webhook.HeaderSignature))
	assert.NoError(t, webhook.Verify(secret, r.header, r.body, t0, 0), "receivers on the old secret")
	assert.NoError(t, webhook.Verify(next, r.header, r.body, t0, 0), "receivers on the new secret")
	assert.ErrorIs(t, webhook.Verify([]byte("some-other-secret-0000"), r.header, r.body, t0, 0), webhook.ErrBadSignature)
}
