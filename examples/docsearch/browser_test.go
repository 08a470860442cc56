package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/mcpauth"
)

// screenshotDir is where the browser test leaves its screenshots: the
// README's copies in docs/docsearch when DOCSEARCH_SCREENSHOTS=1 (to refresh
// them), else a temporary directory, so that a test run leaves the tree
// clean. Either way each screenshot is taken and must be a PNG.
func screenshotDir(t *testing.T) string {
	if os.Getenv("DOCSEARCH_SCREENSHOTS") == "1" {
		return "../../docs/docsearch"
	}
	return t.TempDir()
}

// findBrowser returns a Chromium or Chrome on PATH (CHROME_PATH first). It
// skips the test without one, and fails it under
// MCPAUTH_TEST_REQUIRE_SERVICES=1 (.ci/services.sh installs Debian's
// chromium).
func findBrowser(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv("CHROME_PATH"), "chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	if os.Getenv("MCPAUTH_TEST_REQUIRE_SERVICES") == "1" {
		t.Fatal("no Chromium found (apt-get install chromium, or set CHROME_PATH) and MCPAUTH_TEST_REQUIRE_SERVICES=1")
	}
	t.Skip("no Chromium found; apt-get install chromium, or set CHROME_PATH")
	return ""
}

// TestBrowser drives the app in headless Chromium the way a person would:
// sign in, add a document, ask about it and see the answer cite it, create
// a key and see it exactly once, use it from an agent, revoke it, and see
// the refusal in Activity. It saves a screenshot of each page.
func TestBrowser(t *testing.T) {
	browserPath := findBrowser(t)
	e := newTestEnv(t, "sqlite", nil)
	shots := screenshotDir(t)
	require.NoError(t, os.MkdirAll(shots, 0o755))

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browserPath),
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()

	// Helpers over chromedp's generic actions: do runs steps, text and
	// html read an element, shot saves a full-page screenshot.
	do := func(steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		require.NoError(t, chromedp.Do(ctx, steps...))
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		require.NoError(t, err, sel)
		return v
	}
	html := func() string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
		require.NoError(t, err)
		return v
	}
	location := func() string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Location())
		require.NoError(t, err)
		return v
	}
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			png, err := chromedp.FullScreenshot(100)(ctx, tg) // quality 100: PNG
			if err != nil {
				return chromedp.Void{}, err
			}
			if !bytes.HasPrefix(png, []byte("\x89PNG")) {
				return chromedp.Void{}, fmt.Errorf("screenshot %s is not a PNG", name)
			}
			return chromedp.Void{}, os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644)
		}
	}
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	alice := e.demo["alice"]

	// Sign in.
	do(chromedp.Navigate(e.base+"/login"),
		chromedp.SetValue(css("#email"), alice.Email),
		chromedp.SetValue(css("#password"), alice.Password),
		shot("login"),
		chromedp.Click(css("#signin")),
		chromedp.WaitVisible(css("#question")))
	assert.Contains(t, text(".who"), alice.Email)

	// Add a document.
	const title = "Board Meeting Minutes"
	do(chromedp.Navigate(e.base+"/documents"),
		chromedp.SetValue(css("#title"), title),
		chromedp.SetValue(css("#body"), "Minutes of the November board meeting.\n\nThe board approved a budget of $42,000 for the Berlin office. Hiring starts in January."),
		chromedp.Click(css("#add")),
		chromedp.WaitVisible(css("#doc-title")),
		shot("document"))
	assert.Equal(t, title, text("#doc-title"))
	docURL := location()
	do(chromedp.Navigate(e.base+"/documents"), chromedp.WaitVisible(css("#documents")), shot("documents"))
	assert.Equal(t, 1, e.countRows("documents", "user_id = $1 AND title = $2", "alice", title), "the row is written, for Alice")

	// Ask about it: the answer quotes it and cites it, with a link.
	do(chromedp.Navigate(e.base+"/assistant"),
		chromedp.SetValue(css("#question"), "What budget did the board approve for the Berlin office?"),
		chromedp.Click(css("#ask")),
		chromedp.WaitVisible(css("#answer")),
		shot("assistant"))
	answer, sources := text("#answer-text"), text("#sources")
	assert.Contains(t, answer, "According to your Board Meeting Minutes")
	assert.Contains(t, answer, "$42,000")
	assert.Contains(t, answer, "[1]")
	assert.Contains(t, sources, title)
	assert.Contains(t, sources, "uploaded ")
	cite, err := chromedp.Run(ctx, chromedp.AttributeValue(css("#answer-text a.cite"), "href"))
	require.NoError(t, err)
	assert.Equal(t, strings.TrimPrefix(docURL, e.base), cite.Value, "the citation links to the cited document")

	// Create a key: shown once.
	do(chromedp.Navigate(e.base+"/keys"),
		chromedp.SetValue(css("#key-name"), "Claude Code on my laptop"),
		chromedp.Click(css("#create")),
		chromedp.WaitVisible(css("#raw-key")),
		shot("keys-new"))
	raw, claude, first := text("#raw-key"), text("#snippet-claude"), html()
	require.True(t, strings.HasPrefix(raw, "mcp_"), raw)
	assert.Equal(t, 3, strings.Count(first, raw), "the raw key, and in the two snippets")
	assert.Contains(t, claude, "claude mcp add --transport http docsearch "+e.base+"/mcp --header \"Authorization: Bearer "+raw+"\"")
	do(chromedp.Navigate(e.base+"/keys"), chromedp.WaitVisible(css("#keys")), shot("keys"))
	second := html()
	assert.NotContains(t, second, raw, "the raw key is never shown again")
	keyID := raw[4:16]
	assert.Contains(t, second, keyID, "the key is listed by its ID")

	// The user's agent works with it, until it is revoked in the browser.
	cs := e.mustConnect(raw)
	_, err = cs.CallTool(ctx, searchCall("Berlin budget"))
	require.NoError(t, err)
	do(chromedp.Click(css(`tr[data-key="`+keyID+`"] button.revoke`)), chromedp.WaitVisible(css(".flash")))
	_, err = e.connect(raw)
	var rpcErr *jsonrpc.Error
	require.ErrorAs(t, err, &rpcErr, "a revoked key is refused")
	assert.Equal(t, int64(mcpauth.RPCCodeUnauthorized), rpcErr.Code)
	e.waitForEvent("alice", func(ev audit.Event) bool {
		return ev.KeyID == keyID && ev.Outcome == audit.OutcomeUnauthenticated
	})

	// Activity shows the refusal.
	do(chromedp.Navigate(e.base+"/activity"), chromedp.WaitVisible(css("#activity")), shot("activity"))
	refused := text("#activity tr.refused")
	assert.Contains(t, refused, keyID)
	assert.Contains(t, refused, "unauthenticated")

	// Sign out: the pages are closed again.
	do(chromedp.Click(css("#logout")), chromedp.WaitVisible(css("#signin")),
		chromedp.Navigate(e.base+"/documents"), chromedp.WaitVisible(css("#signin")))
	assert.Equal(t, e.base+"/login", location())
}
