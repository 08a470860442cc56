package refusals_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/mcpauth"
)

var update = flag.Bool("update", false, "rewrite docs/refusals.md from the recorded outcomes")

const docPath = "../../../docs/refusals.md"

// mode is a refusal mode under test.
type mode struct {
	name string
	mode mcpauth.RefusalMode
}

var modes = []mode{
	{"RefusalHTTP", mcpauth.RefusalHTTP},
	{"RefusalJSONRPC", mcpauth.RefusalJSONRPC},
	{"RefusalToolResult", mcpauth.RefusalToolResult},
}

// config is one client against one server; protocol is the version they
// negotiate (checked).
type config struct {
	name     string
	run      func(t *testing.T, url string, steps []step) []outcome
	server   serverKind
	protocol string
}

func goSDK(version string) func(*testing.T, string, []step) []outcome {
	return func(t *testing.T, url string, s []step) []outcome { return runGoSDK(t, url, version, s) }
}

func mcpGo(version string) func(*testing.T, string, []step) []outcome {
	return func(t *testing.T, url string, s []step) []outcome { return runMCPGo(t, url, version, s) }
}

var configs = []config{
	// The go-sdk client's default, 2026-07-28, needs a stateless go-sdk
	// server; against a stateful one it falls back to 2025-11-25.
	{"go-sdk 2026-07-28 (stateless server)", goSDK(""), goSDKStateless, "2026-07-28"},
	{"go-sdk 2025-11-25", goSDK(""), goSDKServer, "2025-11-25"},
	{"go-sdk 2025-06-18", goSDK("2025-06-18"), goSDKServer, "2025-06-18"},
	// mcp-go v1.2.1's client and the go-sdk v1.8.0 server do not agree on
	// 2026-07-28 (tools/call fails with "unsupported protocol version"
	// without mcpauth too), so against the go-sdk server it asks for
	// 2025-11-25.
	{"mcp-go 2025-11-25", mcpGo("2025-11-25"), goSDKServer, "2025-11-25"},
	{"mcp-go 2026-07-28 (mcp-go server)", mcpGo(""), mcpGoServer, "2026-07-28"},
	{"TypeScript", runTS, goSDKServer, "2025-11-25"},
}

func callEcho(text string) (string, map[string]any) {
	return "callTool", map[string]any{"name": "echo", "arguments": map[string]any{"text": text}}
}

// refusal is one way a request is refused, as a client meets it on an
// open session: the step's key and operation.
type refusal struct {
	name   string
	key    string // fixture key; "" sends none
	op     string
	params map[string]any
	// reason is text of the refusal that must reach the caller.
	reason string
}

func (r refusal) tool() bool { return r.op == "callTool" }

var refusals = func() []refusal {
	echo := func(name, key, reason string) refusal {
		op, p := callEcho("refused")
		return refusal{name, key, op, p, reason}
	}
	op, big := callEcho(bigArg)
	return []refusal{
		echo("no key", "", "An API key is required"),
		echo("invalid key", "invalid", "The API key is invalid, expired or revoked."),
		echo("revoked key", "revoked", "The API key is invalid, expired or revoked."),
		echo("inactive user", "inactive", "The account this API key belongs to is not active."),
		echo("address not allowed", "address", "This API key may not be used from this network address."),
		{"insufficient scope (tools/call)", "good", "callTool", map[string]any{"name": "admin_tool", "arguments": map[string]any{}}, "requires scope admin:write"},
		{"blocked target (resources/read)", "good", "readResource", map[string]any{"uri": "file:///app/.env"}, "is blocked by this server"},
		echo("rate limited", "limited", "Too many requests from this API key"),
		echo("store down", "storedown", "Authentication is temporarily unavailable."),
		// Last: it may end a go-sdk client's session.
		{"body too large", "good", op, big, "The request body is too large."},
	}
}()

// gap is a refusal whose reason a client does not pass on to its caller,
// whatever the server sends. The test checks that the gap is still
// there, so that an entry goes, and docs/refusals.md changes, when the
// client or the server improves.
type gap struct {
	noReason bool
	why      string
}

// gaps by "config|refusal|mode"; mode "*" for every mode.
var gaps = func() map[string]gap {
	g := map[string]gap{}
	for _, c := range []string{"go-sdk 2026-07-28 (stateless server)", "go-sdk 2025-11-25", "go-sdk 2025-06-18"} {
		g[c+"|rate limited|RefusalHTTP"] = gap{noReason: true, why: "the go-sdk client never reads the body of a 429 (nor 500, 502, 503, 504): " +
			"\"rejected by transport: Too Many Requests\" (jsonrpc2.ErrRejected, code -32005); the session survives. RefusalJSONRPC carries the reason."}
		g[c+"|store down|RefusalHTTP"] = gap{noReason: true, why: "the go-sdk client never reads the body of a 503 (nor 429, 500, 502, 504): " +
			"\"rejected by transport: Service Unavailable\" (code -32005); the session survives. RefusalJSONRPC carries the reason."}
	}
	for _, c := range []string{"mcp-go 2025-11-25", "mcp-go 2026-07-28 (mcp-go server)"} {
		for _, r := range []string{"no key", "invalid key", "revoked key"} {
			g[c+"|"+r+"|*"] = gap{noReason: true, why: "without an OAuth handler the mcp-go client answers every 401 with " +
				"*transport.AuthorizationRequiredError (\"authorization required\") and drops the body; 401 stays 401 in every mode."}
		}
	}
	return g
}()

func gapFor(cfg, refusal, mode string) (gap, bool) {
	if g, ok := gaps[cfg+"|"+refusal+"|"+mode]; ok {
		return g, true
	}
	g, ok := gaps[cfg+"|"+refusal+"|*"]
	return g, ok
}

// record is what the tests saw, for docs/refusals.md.
type record struct {
	mu       sync.Mutex
	outcomes map[string]outcome // config|refusal|mode
	status   map[string]int     // refusal|mode -> HTTP status
	raw      map[string]string  // raw case|mode -> summary
	skipped  []string
}

var seen = &record{outcomes: map[string]outcome{}, status: map[string]int{}, raw: map[string]string{}}

func (r *record) put(m map[string]outcome, k string, o outcome) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m[k] = o
}

// TestRefusals: every client, every refusal mode, every refusal on one
// session opened with a good key; after each refusal the same session
// completes a tools/call. What must not happen: the refused call runs, the
// go-sdk client reports ErrConnectionClosed, the reason is lost (except
// the documented client limits), the session dies.
func TestRefusals(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			recordStatuses(t, m)
			runRaw(t, m)
			for _, cfg := range configs {
				t.Run(cfg.name, func(t *testing.T) {
					defer func() {
						if t.Skipped() {
							seen.mu.Lock()
							seen.skipped = append(seen.skipped, cfg.name+" in "+m.name)
							seen.mu.Unlock()
						}
					}()
					runConfig(t, cfg, m)
				})
			}
		})
	}
	if t.Failed() {
		return
	}
	if len(seen.skipped) > 0 {
		require.False(t, *update, "-update with skipped clients %v", seen.skipped)
		t.Logf("docs/refusals.md not compared: skipped %v", seen.skipped)
		return
	}
	if want := len(modes) * len(configs) * len(refusals); len(seen.outcomes) != want {
		require.False(t, *update, "-update needs the whole matrix (no -run filter)")
		t.Logf("docs/refusals.md not compared: %d of %d outcomes (a -run filter?)", len(seen.outcomes), want)
		return
	}
	checkDoc(t, renderDoc())
}

func runConfig(t *testing.T, cfg config, m mode) {
	f := newFixture(t, cfg.server, m.mode)
	steps := []step{{Step: "connect", Op: "connect", Auth: f.keys["good"]}}
	for _, r := range refusals {
		auth := ""
		if r.key != "" {
			auth = f.keys[r.key]
		}
		op, after := callEcho("after")
		steps = append(steps,
			step{Step: r.name, Op: r.op, Auth: auth, Params: r.params},
			step{Step: r.name + " / after", Op: op, Auth: f.keys["good"], Params: after})
	}
	out := cfg.run(t, f.url, steps)
	require.NotEmpty(t, out)
	require.True(t, out[0].OK, "connect: %+v", out[0])
	require.Len(t, out, len(steps), "outcomes: %+v", out)
	require.Equal(t, "protocol "+cfg.protocol, out[0].Text, "negotiated protocol")

	for i, r := range refusals {
		got, after := out[1+2*i], out[2+2*i]
		g, _ := gapFor(cfg.name, r.name, m.name)
		t.Run(r.name, func(t *testing.T) {
			seen.put(seen.outcomes, cfg.name+"|"+r.name+"|"+m.name, got)
			t.Logf("refused: %+v", got)
			assert.False(t, got.OK && !got.IsError, "the refused call succeeded: %+v", got)
			assert.False(t, got.Closed, "go-sdk client reports ErrConnectionClosed: %s", got.Text)
			if g.noReason {
				assert.NotContains(t, got.Text, r.reason, "a documented gap (%s) no longer holds: remove it from gaps", g.why)
			} else {
				assert.Contains(t, got.Text, r.reason, "the reason does not reach the caller")
			}
			if m.mode == mcpauth.RefusalToolResult && r.tool() && inBand(r) {
				assert.True(t, got.OK && got.IsError, "RefusalToolResult: a refused tools/call must be an isError result: %+v", got)
			}
			assert.True(t, after.OK && !after.IsError && after.Text == "echo: after",
				"the same session could not complete a tools/call after the refusal: %+v", after)
		})
	}
	// Every echo that ran is an "after" call: no refused call reached the tool.
	assert.Equal(t, int64(len(refusals)), f.echoRuns.Load(), "echo runs")
	assert.Zero(t, f.adminRuns.Load(), "admin_tool or the blocked resource ran")
}

// inBand reports whether the refusal is one the JSON-RPC modes answer with
// HTTP 200 (policy, account, address, rate limit, store down; not 401 or
// 413, where there is no key or no readable request to answer in-band).
func inBand(r refusal) bool {
	switch r.name {
	case "no key", "invalid key", "revoked key", "body too large":
		return false
	}
	return true
}

// recordStatuses records the HTTP status of each refusal in mode m, from
// a raw POST of the same message.
func recordStatuses(t *testing.T, m mode) {
	f := newFixture(t, goSDKServer, m.mode)
	for _, r := range refusals {
		auth := ""
		if r.key != "" {
			auth = f.keys[r.key]
		}
		method := map[string]string{"callTool": "tools/call", "readResource": "resources/read"}[r.op]
		body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 7, "method": method, "params": r.params})
		require.NoError(t, err)
		resp := rawPost(t, f.url, auth, nil, string(body))
		seen.mu.Lock()
		seen.status[r.name+"|"+m.name] = resp.status
		seen.mu.Unlock()
	}
}

func checkDoc(t *testing.T, doc string) {
	if *update {
		require.NoError(t, os.WriteFile(docPath, []byte(doc), 0o644))
		return
	}
	want, err := os.ReadFile(docPath)
	require.NoError(t, err, "run go test ./mcpauth/internal/refusals -update")
	if string(want) == doc {
		return
	}
	w, g := strings.Split(string(want), "\n"), strings.Split(doc, "\n")
	line := 0
	for line < len(w) && line < len(g) && w[line] == g[line] {
		line++
	}
	at := func(lines []string) string {
		if line < len(lines) {
			return lines[line]
		}
		return "(end of file)"
	}
	t.Fatalf("docs/refusals.md differs from what the clients returned, first at line %d:\n  file:     %s\n  measured: %s\n"+
		"run go test ./mcpauth/internal/refusals -update and review the diff", line+1, at(w), at(g))
}

// moduleVersion reads path's version from this module's go.mod (test
// binaries carry no dependency versions in their build info).
func moduleVersion(path string) string {
	b, err := os.ReadFile("go.mod") // this module's own
	if err != nil {
		return "(unknown)"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == path {
			return f[1]
		}
	}
	return "(unknown)"
}

func tsSDKVersion() string {
	b, err := os.ReadFile(filepath.Join(tsDir, "package-lock.json"))
	if err != nil {
		return "(unknown)"
	}
	var lock struct {
		Packages map[string]struct {
			Version string `json:"version"`
		} `json:"packages"`
	}
	if json.Unmarshal(b, &lock) != nil {
		return "(unknown)"
	}
	return lock.Packages["node_modules/@modelcontextprotocol/sdk"].Version
}

func cell(o outcome, reasonOK bool) string {
	var s string
	switch {
	case o.OK && o.IsError:
		s = "isError result"
	case o.OK:
		s = "**result (not refused)**"
	default:
		s = "`" + o.ErrClass + "`"
		if o.Code != 0 {
			s += fmt.Sprintf(" %d", o.Code)
		}
	}
	if o.Closed {
		s += ", **ErrConnectionClosed**"
	}
	if !reasonOK {
		s += ", no reason"
	}
	return s
}

func mdEscape(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	s = strings.ReplaceAll(s, "`", "'")
	return strings.ReplaceAll(s, "\n", " ")
}

func renderDoc() string {
	var b strings.Builder
	b.WriteString("# Refusals: what each MCP client returns\n\n")
	b.WriteString("<!-- Generated by `go test ./mcpauth/internal/refusals -update`; do not edit. -->\n\n")
	b.WriteString("Measured by `mcpauth/internal/refusals` with real clients over real HTTP, every client on one " +
		"session opened with a good key: each refusal, then a tools/call on the same session. In every cell that call " +
		"succeeded, the refused operation did not run and the go-sdk client did not report `mcp.ErrConnectionClosed`; " +
		"the refusal's reason reached the caller except where a cell says \"no reason\", each such case listed under " +
		"[Gaps](#gaps) (the test fails on any other, and when a listed gap goes away).\n\n")
	fmt.Fprintf(&b, "- **go-sdk**: `github.com/modelcontextprotocol/go-sdk` %s client, `mcp.StreamableClientTransport`; its default protocol 2026-07-28 against a stateless go-sdk server (against a stateful one it falls back to 2025-11-25), and 2025-06-18 with `ClientSessionOptions.ProtocolVersion`.\n",
		moduleVersion("github.com/modelcontextprotocol/go-sdk"))
	fmt.Fprintf(&b, "- **mcp-go**: `github.com/mark3labs/mcp-go` %s, `client.NewStreamableHttpClient`; at 2025-11-25 against the go-sdk server (at 2026-07-28 the two fail to call tools even without mcpauth), at its default 2026-07-28 against an mcp-go server.\n",
		moduleVersion("github.com/mark3labs/mcp-go"))
	fmt.Fprintf(&b, "- **TypeScript**: `@modelcontextprotocol/sdk` %s, `StreamableHTTPClientTransport` (Node; `mcpauth/internal/refusals/ts/client.mjs`).\n",
		tsSDKVersion())
	b.WriteString("- Server: the go-sdk's `mcp.NewStreamableHTTPHandler` (stateful) behind `Guard.Require`, unless the column says otherwise. Each column's protocol is the one negotiated (checked by the test).\n\n")
	b.WriteString("A cell is what the call returned: an error (its type as the client exposes it, and its code: " +
		"JSON-RPC code, or HTTP status for the TypeScript transport's `StreamableHTTPError`) or an `isError` tool result. " +
		"\"no reason\": the reason text did not reach the caller. " +
		"HTTP is the status mcpauth answered.\n")

	cols := make([]string, 0, len(configs))
	for _, c := range configs {
		cols = append(cols, c.name)
	}
	for _, m := range modes {
		fmt.Fprintf(&b, "\n## %s\n\n", m.name)
		fmt.Fprintf(&b, "| refusal | HTTP | %s |\n|---|---|%s\n", strings.Join(cols, " | "), strings.Repeat("---|", len(cols)))
		for _, r := range refusals {
			fmt.Fprintf(&b, "| %s | %d |", r.name, seen.status[r.name+"|"+m.name])
			for _, c := range configs {
				g, _ := gapFor(c.name, r.name, m.name)
				fmt.Fprintf(&b, " %s |", cell(seen.outcomes[c.name+"|"+r.name+"|"+m.name], !g.noReason))
			}
			b.WriteString("\n")
		}
	}

	b.WriteString("\n## What the caller reads: insufficient scope\n\n")
	b.WriteString("| mode | client | message |\n|---|---|---|\n")
	for _, m := range modes {
		for _, c := range configs {
			o := seen.outcomes[c.name+"|insufficient scope (tools/call)|"+m.name]
			fmt.Fprintf(&b, "| %s | %s | %s |\n", m.name, c.name, mdEscape(strings.TrimSpace(o.Text)))
		}
	}

	b.WriteString("\n## Gaps\n\n")
	byWhy := map[string][]string{}
	var whys []string
	for k, g := range gaps {
		if byWhy[g.why] == nil {
			whys = append(whys, g.why)
		}
		p := strings.Split(k, "|")
		byWhy[g.why] = append(byWhy[g.why], fmt.Sprintf("%s / %s / %s", p[0], p[1], strings.ReplaceAll(p[2], "*", "every mode")))
	}
	slices.Sort(whys)
	for _, why := range whys {
		where := byWhy[why]
		slices.Sort(where)
		fmt.Fprintf(&b, "- %s\n  (%s)\n", why, strings.Join(where, "; "))
	}
	var keys []string
	if len(seen.raw) > 0 {
		b.WriteString("\n## Raw POSTs (no client sends these)\n\n")
		keys = make([]string, 0, len(seen.raw))
		for k := range seen.raw {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "- %s: %s\n", strings.ReplaceAll(k, "|", ", "), seen.raw[k])
		}
	}
	return b.String()
}
