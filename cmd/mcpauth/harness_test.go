package main

import (
	"bytes"
	"context"
	"database/sql"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// t0 is the clock of every golden test at its first command.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

const testPepper = "1:pepper-for-tests-only-0123456789"

// harness runs CLI commands against one temporary SQLite file with a fake
// clock and seeded randomness, and keeps a transcript for golden files.
type harness struct {
	t     *testing.T
	dir   string
	db    string
	env   map[string]string
	ctx   context.Context
	sleep func(ctx context.Context, d time.Duration) error
	// maskHashes replaces 64-digit hex strings (audit chain hashes, whose
	// value is sqlaudit's business) in the transcript.
	maskHashes bool

	mu         sync.Mutex
	now        time.Time
	rnd        *rand.ChaCha8
	transcript strings.Builder
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	dir := t.TempDir()
	return &harness{
		t:   t,
		dir: dir,
		db:  filepath.Join(dir, "mcpauth.db"),
		env: map[string]string{"MCPAUTH_PEPPER": testPepper},
		ctx: context.Background(),
		now: t0,
		rnd: rand.NewChaCha8([32]byte{7}),
	}
}

func (h *harness) clock() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.now
}

func (h *harness) advance(d time.Duration) {
	h.mu.Lock()
	h.now = h.now.Add(d)
	h.mu.Unlock()
}

// result is what one command did.
type result struct {
	stdout, stderr string
	code           int
}

// run runs one command with the database flag first; the clock moves one
// minute before each command.
func (h *harness) run(args ...string) result {
	h.t.Helper()
	return h.runRaw(append([]string{"--db", h.db}, args...)...)
}

func (h *harness) runRaw(args ...string) result {
	h.t.Helper()
	h.advance(time.Minute)
	var out, errb bytes.Buffer
	sleep := h.sleep
	if sleep == nil {
		sleep = func(ctx context.Context, d time.Duration) error { return context.Canceled }
	}
	code := runWith(h.ctx, args, &out, &errb, func(k string) string { return h.env[k] },
		deps{now: h.clock, rand: h.rnd, sleep: sleep})
	r := result{stdout: out.String(), stderr: errb.String(), code: code}
	h.record(args, r)
	return r
}

func (h *harness) record(args []string, r result) {
	var b strings.Builder
	b.WriteString("$ mcpauth")
	for _, a := range args {
		a = strings.ReplaceAll(a, h.dir, "$TMP")
		if a == "" || strings.ContainsAny(a, " \"'$*!") {
			a = strconv.Quote(a)
		}
		b.WriteString(" " + a)
	}
	b.WriteString("\n")
	for _, part := range []struct{ name, text string }{{"stdout", r.stdout}, {"stderr", r.stderr}} {
		if part.text == "" {
			continue
		}
		b.WriteString("--- " + part.name + "\n")
		b.WriteString(strings.ReplaceAll(part.text, h.dir, "$TMP"))
		if !strings.HasSuffix(part.text, "\n") {
			b.WriteString("⏎ (no newline at end)\n")
		}
	}
	b.WriteString("--- exit " + strconv.Itoa(r.code) + "\n\n")
	text := b.String()
	if h.maskHashes {
		text = hashRE.ReplaceAllString(text, "<sha256>")
	}
	h.mu.Lock()
	h.transcript.WriteString(text)
	h.mu.Unlock()
}

// must runs a command that must exit with code want.
func (h *harness) must(want int, args ...string) result {
	h.t.Helper()
	r := h.run(args...)
	require.Equal(h.t, want, r.code, "mcpauth %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.stdout, r.stderr)
	return r
}

// golden compares the transcript with testdata/<name>.golden, or rewrites
// it with -update.
func (h *harness) golden(name string) {
	h.t.Helper()
	path := filepath.Join("testdata", name+".golden")
	got := h.transcript.String()
	if *update {
		require.NoError(h.t, os.MkdirAll("testdata", 0o755))
		require.NoError(h.t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(h.t, err, "missing golden file: run go test ./cmd/mcpauth -run %s -update", h.t.Name())
	require.Equal(h.t, string(want), got, "transcript differs from %s (go test ./cmd/mcpauth -update rewrites it)", path)
}

// openDB opens the harness database directly, for seeding and tampering.
func (h *harness) openDB() *sql.DB {
	h.t.Helper()
	db, err := sql.Open("sqlite", "file:"+h.db+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
	require.NoError(h.t, err)
	h.t.Cleanup(func() { db.Close() })
	return db
}

var hashRE = regexp.MustCompile(`\b[0-9a-f]{64}\b`)

var rawKeyRE = regexp.MustCompile(`\bmcp_[0-9A-Za-z]{42}\b`)

// rawKeyOnce checks that a create or rotate printed exactly one raw key,
// once, to stdout, and none to stderr, and returns it.
func rawKeyOnce(t *testing.T, r result) string {
	t.Helper()
	keys := rawKeyRE.FindAllString(r.stdout, -1)
	require.Len(t, keys, 1, "exactly one raw key in stdout:\n%s", r.stdout)
	require.Equal(t, 1, strings.Count(r.stdout, keys[0]))
	require.NotContains(t, r.stderr, keys[0])
	require.NotRegexp(t, rawKeyRE, r.stderr)
	return keys[0]
}
