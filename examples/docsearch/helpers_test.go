package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
)

// testEnv is the whole app on a real database (a SQLite file, or its own
// schema on the PostgreSQL test server), served over real HTTP.
type testEnv struct {
	t       testing.TB
	backend string
	app     *app
	db      *database
	dbPath  string // the SQLite file, "" on PostgreSQL
	base    string
	demo    map[string]demoUser // by ID
	clock   *testClock
}

// testClock is the app's clock in tests: real time plus an offset the test
// moves forward.
type testClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

type envOptions struct {
	answerer Answerer
}

// backends runs f on SQLite and, when MCPAUTH_TEST_POSTGRES_DSN is set, on
// PostgreSQL (failing, not skipping, without it under
// MCPAUTH_TEST_REQUIRE_SERVICES=1).
func backends(t *testing.T, f func(t *testing.T, backend string)) {
	t.Run("sqlite", func(t *testing.T) { f(t, "sqlite") })
	t.Run("postgres", func(t *testing.T) {
		postgresDSN(t)
		f(t, "postgres")
	})
}

func postgresDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("MCPAUTH_TEST_POSTGRES_DSN")
	if dsn == "" {
		if os.Getenv("MCPAUTH_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatal("MCPAUTH_TEST_POSTGRES_DSN is not set and MCPAUTH_TEST_REQUIRE_SERVICES=1")
		}
		t.Skip("MCPAUTH_TEST_POSTGRES_DSN is not set")
	}
	return dsn
}

// postgresSchema makes a schema of its own for one test on the PostgreSQL
// test server (dropped when the test ends) and returns a DSN that uses it.
func postgresSchema(t testing.TB) string {
	t.Helper()
	dsn := postgresDSN(t)
	admin, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = admin.Close() })
	schema := "docsearch_" + strings.ToLower(rand.Text()[:10])
	_, err = admin.Exec("CREATE SCHEMA " + schema)
	require.NoError(t, err)
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func newTestEnv(t testing.TB, backend string, opts *envOptions) *testEnv {
	t.Helper()
	if opts == nil {
		opts = &envOptions{}
	}
	ctx := context.Background()
	e := &testEnv{t: t, backend: backend, clock: &testClock{}, demo: map[string]demoUser{}}
	spec := filepath.Join(t.TempDir(), "docsearch.db")
	if backend == "postgres" {
		spec = postgresSchema(t)
	} else {
		e.dbPath = spec
	}
	db, err := openDatabase(ctx, spec)
	require.NoError(t, err)
	e.db = db
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	e.base = "http://" + ln.Addr().String()
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	a, err := newApp(config{db: db, baseURL: e.base, secret: secret, answerer: opts.answerer, now: e.clock.now, bcryptCost: bcrypt.MinCost,
		log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	e.app = a
	seeded, err := seedDemo(ctx, a.users, a.docs, time.Now())
	require.NoError(t, err)
	for _, u := range seeded {
		e.demo[u.ID] = u
	}
	srv := httptest.NewUnstartedServer(a.handler)
	_ = srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		require.NoError(t, a.close(context.Background()))
		require.NoError(t, db.close())
	})
	return e
}

// flushAudit waits until the audit writer has written what is queued.
func (e *testEnv) flushAudit() {
	e.t.Helper()
	require.NoError(e.t, e.app.events.Flush(context.Background()))
}

// browser is an HTTP client with its own cookie jar: one signed-in person.
type browser struct {
	t    testing.TB
	base string
	c    *http.Client
}

func (e *testEnv) browser() *browser {
	jar, err := cookiejar.New(nil)
	require.NoError(e.t, err)
	return &browser{t: e.t, base: e.base, c: &http.Client{Jar: jar, Timeout: 60 * time.Second}}
}

// login signs in and fails the test if it does not work.
func (e *testEnv) login(userID string) *browser {
	e.t.Helper()
	b := e.browser()
	u := e.demo[userID]
	status, body := b.postForm("/login", url.Values{"email": {u.Email}, "password": {u.Password}})
	require.Equal(e.t, http.StatusOK, status, body)
	require.Contains(e.t, body, "Sign out")
	return b
}

func (b *browser) do(req *http.Request) (int, string) {
	b.t.Helper()
	resp, err := b.c.Do(req)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(b.t, err)
	return resp.StatusCode, string(body)
}

func (b *browser) get(path string) (int, string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.base+path, nil)
	require.NoError(b.t, err)
	return b.do(req)
}

func (b *browser) postForm(path string, form url.Values) (int, string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	require.NoError(b.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

func (b *browser) json(method, path string, body any) (int, string) {
	b.t.Helper()
	var r io.Reader
	if body != nil {
		j, err := json.Marshal(body)
		require.NoError(b.t, err)
		r = strings.NewReader(string(j))
	}
	req, err := http.NewRequest(method, b.base+path, r)
	require.NoError(b.t, err)
	req.Header.Set("Content-Type", "application/json")
	return b.do(req)
}

// connect opens an MCP session with the official Go SDK client over HTTP,
// sending key as a bearer token.
func (e *testEnv) connect(key string) (*mcp.ClientSession, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := mcp.NewClient(&mcp.Implementation{Name: "docsearch-test", Version: "1"}, nil)
	hc := &http.Client{Transport: bearer{key: key}}
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: e.base + "/mcp", HTTPClient: hc, MaxRetries: -1, DisableStandaloneSSE: true}, nil)
	if err == nil {
		e.t.Cleanup(func() { _ = cs.Close() })
	}
	return cs, err
}

func (e *testEnv) mustConnect(key string) *mcp.ClientSession {
	e.t.Helper()
	cs, err := e.connect(key)
	require.NoError(e.t, err)
	return cs
}

// countRows counts a table's rows matching a condition with $n arguments.
func (e *testEnv) countRows(table, where string, args ...any) int {
	e.t.Helper()
	var n int
	require.NoError(e.t, e.db.db.QueryRow(e.db.q("SELECT COUNT(*) FROM "+table+" WHERE "+where), args...).Scan(&n))
	return n
}

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }

func testLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func searchCall(query string) *mcp.CallToolParams {
	return &mcp.CallToolParams{Name: "search_documents", Arguments: map[string]any{"query": query}}
}
