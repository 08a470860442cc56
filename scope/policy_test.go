package scope_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/scope"
)

func docsearchPolicy(t testing.TB) *scope.Policy {
	t.Helper()
	p, err := scope.NewPolicy(scope.PolicyConfig{
		Tools: []scope.Rule{
			{Match: "search_documents", Scopes: []string{"documents:read"}},
			{Match: "delete_document", Scopes: []string{"documents:delete"}},
			{Match: "move_document", Scopes: []string{"documents:write", "documents:delete"}},
			{Match: "get_*", Scopes: []string{"read"}},
			{Match: "get_secret_*", Scopes: []string{"admin"}}, // shadowed by get_*: first glob wins
			{Match: "get_time"}, // exact beats glob; valid key suffices
		},
		Resources: []scope.Rule{
			{Match: "file:///reports/*", Scopes: []string{"reports:read"}},
			{Match: "file:///public/readme.md"},
		},
		Prompts: []scope.Rule{
			{Match: "summarize", Scopes: []string{"documents:read"}},
		},
		Completions: []scope.Rule{
			{Match: "special", Scopes: []string{"write"}},
		},
		UnlistedTools:     scope.Unlisted{Scopes: []string{"admin"}},
		UnlistedResources: scope.Unlisted{}, // deny
		Blocked: scope.Blocklist{
			Tools:     []string{"exec_*", "re:^shell$"},
			Resources: []string{"re:^user:.*:password$", "payment:*"},
			Prompts:   []string{"jailbreak*"},
		},
	})
	require.NoError(t, err)
	return p
}

func TestDecide(t *testing.T) {
	t.Parallel()
	p := docsearchPolicy(t)
	tool := func(n string) scope.Operation { return scope.Operation{Method: "tools/call", Name: n} }
	res := func(m, u string) scope.Operation { return scope.Operation{Method: m, URI: u} }
	tests := []struct {
		name     string
		op       scope.Operation
		granted  []string
		allowed  bool
		blocked  bool
		required string
		reason   string
	}{
		{"tool exact allowed", tool("search_documents"), []string{"documents:read"}, true, false, "documents:read", ""},
		{"tool via plain action", tool("search_documents"), []string{"read"}, true, false, "documents:read", ""},
		{"tool via resource wildcard", tool("delete_document"), []string{"documents:*"}, true, false, "documents:delete", ""},
		{"read key cannot delete", tool("delete_document"), []string{"documents:read"}, false, false, "documents:delete",
			`tool "delete_document" requires scope documents:delete`},
		{"write does not imply delete", tool("delete_document"), []string{"write", "documents:write"}, false, false, "documents:delete", ""},
		{"all scopes required", tool("move_document"), []string{"documents:write"}, false, false, "documents:write documents:delete",
			`tool "move_document" requires scopes documents:write documents:delete; this API key lacks documents:delete`},
		{"all scopes present", tool("move_document"), []string{"documents:write", "delete"}, true, false, "documents:write documents:delete", ""},
		{"glob", tool("get_weather"), []string{"read"}, true, false, "read", ""},
		{"first glob wins", tool("get_secret_key"), []string{"read"}, true, false, "read", ""},
		{"exact beats glob", tool("get_time"), nil, true, false, "", ""},
		{"unlisted tool default scope", tool("rename"), []string{"write"}, false, false, "admin", `tool "rename" requires scope admin`},
		{"unlisted tool admin", tool("rename"), []string{"admin"}, true, false, "admin", ""},
		{"tool names are case-sensitive", tool("Search_Documents"), []string{"documents:read"}, false, false, "admin", ""},
		{"blocked tool with admin", tool("exec_command"), []string{"admin"}, false, true, "", `tool "exec_command" is blocked`},
		{"blocked tool case-insensitive", tool("EXEC_command"), []string{"*"}, false, true, "", ""},
		{"blocked tool regexp", tool("shell"), []string{"admin"}, false, true, "", ""},
		{"resource glob", res("resources/read", "file:///reports/q3.pdf"), []string{"reports:read"}, true, false, "reports:read", ""},
		{"resource subscribe", res("resources/subscribe", "file:///reports/q3.pdf"), []string{"read"}, true, false, "reports:read", ""},
		{"resource unsubscribe needs scope", res("resources/unsubscribe", "file:///reports/q3.pdf"), []string{"documents:read"}, false, false, "reports:read", ""},
		{"resource no scope needed", res("resources/read", "file:///public/readme.md"), nil, true, false, "", ""},
		{"resource unlisted denied", res("resources/read", "file:///other/x"), []string{"admin"}, false, false, "",
			`resource "file:///other/x" is not allowed by this server's policy`},
		{"dot segments cannot escape a rule", res("resources/read", "file:///reports/../other/x"), []string{"reports:read"}, false, false, "", ""},
		{"percent-encoding is decoded", res("resources/read", "file:///report%73/q3.pdf"), []string{"reports:read"}, true, false, "reports:read", ""},
		{"seed regexp blocklist", res("resources/read", "user:42:password"), []string{"admin"}, false, true, "", `resource "user:42:password" is blocked`},
		{"seed glob blocklist", res("resources/read", "payment:card/1"), []string{"*"}, false, true, "", ""},
		{"default blocklist .env", res("resources/read", "file:///app/.env"), []string{"admin"}, false, true, "", ""},
		{"default blocklist case", res("resources/read", "file:///app/.ENV.local"), []string{"admin"}, false, true, "", ""},
		{"default blocklist encoded", res("resources/read", "file:///etc/%70asswd"), []string{"admin"}, false, true, "", ""},
		{"default blocklist dot segments", res("resources/read", "file:///reports/../etc/passwd"), []string{"admin"}, false, true, "", ""},
		{"default blocklist query", res("resources/read", "file:///home/u/.ssh/id_ed25519?raw=1"), []string{"admin"}, false, true, "", ""},
		{"default blocklist inside a rule", res("resources/read", "file:///reports/server.key"), []string{"reports:read"}, false, true, "", ""},
		{"prompt", scope.Operation{Method: "prompts/get", Name: "summarize"}, []string{"documents:read"}, true, false, "documents:read", ""},
		{"prompt denied", scope.Operation{Method: "prompts/get", Name: "summarize"}, []string{"notes:read"}, false, false, "documents:read",
			`prompt "summarize" requires scope documents:read`},
		{"prompt unlisted", scope.Operation{Method: "prompts/get", Name: "other"}, []string{"admin"}, false, false, "", ""},
		{"prompt blocked", scope.Operation{Method: "prompts/get", Name: "jailbreak_v2"}, []string{"admin"}, false, true, "", ""},
		{"completion rule", scope.Operation{Method: "completion/complete", Ref: "special", RefType: scope.RefPrompt}, []string{"write"}, true, false, "write", ""},
		{"completion follows prompt rule", scope.Operation{Method: "completion/complete", Ref: "summarize", RefType: scope.RefPrompt}, []string{"read"}, true, false, "documents:read", ""},
		{"completion follows prompt rule denied", scope.Operation{Method: "completion/complete", Ref: "summarize", RefType: scope.RefPrompt}, []string{"write"}, false, false, "documents:read", ""},
		{"completion follows resource rule", scope.Operation{Method: "completion/complete", Ref: "file:///reports/{name}", RefType: scope.RefResource}, []string{"reports:read"}, true, false, "reports:read", ""},
		{"completion resource blocked", scope.Operation{Method: "completion/complete", Ref: "file:///home/{u}/.ssh/{f}", RefType: scope.RefResource}, []string{"admin"}, false, true, "", ""},
		{"completion unknown ref type", scope.Operation{Method: "completion/complete", Ref: "x", RefType: "ref/other"}, []string{"admin"}, false, false, "", ""},
		{"initialize", scope.Operation{Method: "initialize"}, nil, true, false, "", ""},
		{"ping", scope.Operation{Method: "ping"}, nil, true, false, "", ""},
		{"notification", scope.Operation{Method: "notifications/initialized"}, nil, true, false, "", ""},
		{"response", scope.Operation{}, nil, true, false, "", ""},
		{"tools/list", scope.Operation{Method: "tools/list"}, nil, true, false, "", ""},
		{"unknown method", scope.Operation{Method: "x/y", Name: "exec_command"}, nil, true, false, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := p.Decide(tt.op, scope.MustParseSet(tt.granted...))
			assert.Equal(t, tt.allowed, v.Allowed, v.Reason)
			assert.Equal(t, tt.blocked, v.Blocked)
			if !tt.blocked {
				assert.Equal(t, tt.required, v.Scope())
			}
			if tt.allowed {
				assert.Empty(t, v.Reason)
			} else {
				assert.NotEmpty(t, v.Reason)
				assert.Contains(t, v.Reason, tt.reason)
			}
		})
	}
}

func TestDecideUnlistedDefaults(t *testing.T) {
	t.Parallel()
	deny, err := scope.NewPolicy(scope.PolicyConfig{})
	require.NoError(t, err)
	v := deny.Decide(scope.Operation{Method: "tools/call", Name: "anything"}, scope.MustParseSet("admin"))
	assert.False(t, v.Allowed)
	assert.Equal(t, `tool "anything" is not allowed by this server's policy`, v.Reason)

	allow, err := scope.NewPolicy(scope.PolicyConfig{UnlistedTools: scope.Unlisted{Allow: true}, UnlistedResources: scope.Unlisted{Allow: true}})
	require.NoError(t, err)
	assert.True(t, allow.Decide(scope.Operation{Method: "tools/call", Name: "anything"}, scope.Set{}).Allowed)
	assert.True(t, allow.Decide(scope.Operation{Method: "resources/read", URI: "file:///x"}, scope.Set{}).Allowed)
	// Default blocks stay on.
	assert.True(t, allow.Decide(scope.Operation{Method: "resources/read", URI: "file:///x/.env"}, scope.Set{}).Blocked)

	unsafe, err := scope.NewPolicy(scope.PolicyConfig{UnlistedResources: scope.Unlisted{Allow: true}, UnsafeNoDefaultBlocked: true})
	require.NoError(t, err)
	assert.True(t, unsafe.Decide(scope.Operation{Method: "resources/read", URI: "file:///x/.env"}, scope.Set{}).Allowed)
}

func TestDecideLongNameReasonIsCut(t *testing.T) {
	t.Parallel()
	p := docsearchPolicy(t)
	v := p.Decide(scope.Operation{Method: "tools/call", Name: strings.Repeat("x", 1<<20)}, scope.Set{})
	assert.False(t, v.Allowed)
	assert.Less(t, len(v.Reason), 400)
}

func TestDefaultBlocked(t *testing.T) {
	t.Parallel()
	p, err := scope.NewPolicy(scope.PolicyConfig{UnlistedResources: scope.Unlisted{Allow: true}})
	require.NoError(t, err)
	all := scope.MustParseSet("admin")
	for _, u := range []string{
		"file:///srv/app/.env", "file:///srv/app/.env.production", "file:///home/u/.ssh/authorized_keys",
		"file:///home/u/.ssh/id_rsa", "file:///certs/tls.pem", "file:///certs/tls.KEY", "file:///etc/passwd",
		"file:///etc/shadow", "file:///home/u/.aws/credentials", "file:///home/u/.kube/config",
		"file:///home/u/.netrc", "file:///home/u/.git-credentials", "file:///proc/1/environ",
		"file:///home/u/.docker/config.json", "file:///home/u/.gnupg/private-keys-v1.d/x",
		"file:///etc//passwd", `file:///etc\passwd`, "file:///a/./.env", "file:///etc/passwd#frag",
		"file:///etc/%2570asswd", "file:///x/%2e%2e/etc/passwd", "file:///x/%252e%252e/etc/passwd", "FILE:///ETC/PASSWD",
	} {
		assert.True(t, p.Decide(scope.Operation{Method: "resources/read", URI: u}, all).Blocked, u)
	}
	for _, u := range []string{"file:///srv/app/environment.md", "file:///etc/hosts", "file:///docs/keys.md", "file:///reports/q3.pdf"} {
		assert.True(t, p.Decide(scope.Operation{Method: "resources/read", URI: u}, all).Allowed, u)
	}
	// The list is a copy.
	d := scope.DefaultBlocked()
	d[0] = "changed"
	assert.NotEqual(t, "changed", scope.DefaultBlocked()[0])
}

func TestVisible(t *testing.T) {
	t.Parallel()
	p := docsearchPolicy(t)
	read := scope.MustParseSet("documents:read")
	assert.True(t, p.Visible(scope.KindTool, "search_documents", read))
	assert.False(t, p.Visible(scope.KindTool, "delete_document", read))
	assert.False(t, p.Visible(scope.KindTool, "exec_x", scope.MustParseSet("admin")))
	assert.True(t, p.Visible(scope.KindPrompt, "summarize", read))
	assert.False(t, p.Visible(scope.KindPrompt, "other", read))
	assert.True(t, p.Visible(scope.KindResource, "file:///reports/{id}", scope.MustParseSet("reports:read")))
	assert.False(t, p.Visible(scope.KindResource, "file:///reports/{id}", read))
	assert.False(t, p.Visible("bogus", "search_documents", read))
}

func TestNewPolicyErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  scope.PolicyConfig
		want string
	}{
		{"bad scope", scope.PolicyConfig{Tools: []scope.Rule{{Match: "a"}, {Match: "b"}, {Match: "c", Scopes: []string{"docs::read"}}}},
			`mcpauth/scope: invalid policy: tools[2].scopes[0]: invalid scope "docs::read": more than one ":"`},
		{"empty match", scope.PolicyConfig{Resources: []scope.Rule{{Match: ""}}}, `resources[0].match: empty`},
		{"duplicate", scope.PolicyConfig{Prompts: []scope.Rule{{Match: "p"}, {Match: "p"}}}, `prompts[1].match: "p" already listed at prompts[0]`},
		{"unlisted exclusive", scope.PolicyConfig{UnlistedTools: scope.Unlisted{Allow: true, Scopes: []string{"read"}}}, `unlisted_tools: allow and scopes are exclusive`},
		{"unlisted bad scope", scope.PolicyConfig{UnlistedPrompts: scope.Unlisted{Scopes: []string{"a b"}}}, `unlisted_prompts.scopes[0]: invalid scope "a b"`},
		{"bad regexp", scope.PolicyConfig{Blocked: scope.Blocklist{Tools: []string{"re:("}}}, `blocked.tools[0]: invalid regular expression "("`},
		{"bad resource regexp numbered from the caller's list", scope.PolicyConfig{Blocked: scope.Blocklist{Resources: []string{"x", "re:["}}}, `blocked.resources[1]: invalid regular expression`},
		{"empty block", scope.PolicyConfig{Blocked: scope.Blocklist{Prompts: []string{""}}}, `blocked.prompts[0]: empty pattern`},
		{"completion bad scope", scope.PolicyConfig{Completions: []scope.Rule{{Match: "x", Scopes: []string{"*:x"}}}}, `completions[0].scopes[0]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := scope.NewPolicy(tt.cfg)
			require.Error(t, err)
			assert.ErrorIs(t, err, scope.ErrInvalidPolicy)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	_, err := scope.NewPolicy(scope.PolicyConfig{Tools: []scope.Rule{{Match: "c", Scopes: []string{"docs::read"}}}})
	assert.ErrorIs(t, err, scope.ErrInvalidScope)
}

const docsearchJSON = `{
  "tools": [
    {"match": "search_documents", "scopes": ["documents:read"]},
    {"match": "delete_document",  "scopes": ["documents:delete"]}
  ],
  "resources": [{"match": "docs://documents/*", "scopes": ["documents:read"]}],
  "unlisted_tools": {"scopes": ["admin"]},
  "blocked": {"resources": ["re:^docs://users/.*/api_keys"]}
}`

func TestLoadPolicy(t *testing.T) {
	t.Parallel()
	p, err := scope.LoadPolicy(strings.NewReader(docsearchJSON))
	require.NoError(t, err)
	read := scope.MustParseSet("documents:read")
	assert.True(t, p.Decide(scope.Operation{Method: "tools/call", Name: "search_documents"}, read).Allowed)
	v := p.Decide(scope.Operation{Method: "tools/call", Name: "delete_document"}, read)
	assert.False(t, v.Allowed)
	assert.Equal(t, "documents:delete", v.Scope())
	assert.True(t, p.Decide(scope.Operation{Method: "resources/read", URI: "docs://users/7/api_keys"}, scope.MustParseSet("admin")).Blocked)

	dir := t.TempDir()
	path := filepath.Join(dir, "policy.json")
	require.NoError(t, os.WriteFile(path, []byte(docsearchJSON), 0o600))
	_, err = scope.LoadPolicyFile(path)
	require.NoError(t, err)
	_, err = scope.LoadPolicyFile(filepath.Join(dir, "missing.json"))
	assert.ErrorIs(t, err, scope.ErrInvalidPolicy)
}

func TestLoadPolicyErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"bad scope", `{"tools":[{"match":"a"},{"match":"b"},{"match":"c","scopes":["docs::read"]}]}`, `tools[2].scopes[0]: invalid scope "docs::read"`},
		{"unknown field", `{"tools":[{"match":"a","scope":["read"]}]}`, `unknown field "scope"`},
		{"unknown top field", `{"toolz":[]}`, `unknown field "toolz"`},
		{"syntax", "{\n  \"tools\": [,]\n}", `line 2, column 13`},
		{"type", `{"tools":[{"match":1}]}`, `tools.match: line 1, column 20: want string, got JSON number`},
		{"trailing", `{} {}`, `unexpected data after the policy object`},
		{"empty", ``, `empty input`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := scope.LoadPolicy(strings.NewReader(tt.in))
			require.Error(t, err)
			assert.True(t, errors.Is(err, scope.ErrInvalidPolicy), err.Error())
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestDecideAllowedDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	p := docsearchPolicy(t)
	granted := scope.MustParseSet("documents:read", "reports:read")
	ops := []scope.Operation{
		{Method: "tools/call", Name: "search_documents"},
		{Method: "resources/read", URI: "file:///reports/q3.pdf"},
		{Method: "tools/list"},
	}
	allocs := testing.AllocsPerRun(100, func() {
		for _, op := range ops {
			if !p.Decide(op, granted).Allowed {
				t.Fatal("want allowed")
			}
		}
	})
	assert.Zero(t, allocs)
}

func BenchmarkDecide(b *testing.B) {
	p := docsearchPolicy(b)
	granted := scope.MustParseSet("documents:read", "notes:write", "reports:read")
	op := scope.Operation{Method: "tools/call", Name: "search_documents"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !p.Decide(op, granted).Allowed {
				b.Fatal("denied")
			}
		}
	})
}

// TestDocsearchWorkedExample checks the table in docs/scopes.md.
func TestDocsearchWorkedExample(t *testing.T) {
	t.Parallel()
	p, err := scope.LoadPolicy(strings.NewReader(`{
  "tools": [
    {"match": "search_documents", "scopes": ["documents:read"]},
    {"match": "get_document",     "scopes": ["documents:read"]},
    {"match": "create_document",  "scopes": ["documents:write"]},
    {"match": "delete_document",  "scopes": ["documents:delete"]},
    {"match": "server_time"}
  ],
  "resources": [
    {"match": "docs://documents/*", "scopes": ["documents:read"]}
  ],
  "prompts": [
    {"match": "summarize", "scopes": ["documents:read"]}
  ],
  "unlisted_tools": {"scopes": ["admin"]},
  "blocked": {
    "tools": ["debug_*"],
    "resources": ["re:^docs://users/[^/]+/api_keys"]
  }
}`))
	require.NoError(t, err)
	ops := []scope.Operation{
		{Method: "tools/call", Name: "search_documents"},
		{Method: "tools/call", Name: "delete_document"},
		{Method: "resources/read", URI: "docs://documents/7"},
		{Method: "resources/read", URI: "docs://users/1/api_keys"},
		{Method: "tools/call", Name: "rename_all"},
	}
	rows := []struct {
		granted []string
		want    []bool
	}{
		{[]string{"documents:read"}, []bool{true, false, true, false, false}},
		{[]string{"read"}, []bool{true, false, true, false, false}},
		{[]string{"documents:read", "documents:write"}, []bool{true, false, true, false, false}},
		{[]string{"documents:*"}, []bool{true, true, true, false, false}},
		{[]string{"admin"}, []bool{true, true, true, false, true}},
	}
	for _, row := range rows {
		set := scope.MustParseSet(row.granted...)
		for i, op := range ops {
			assert.Equal(t, row.want[i], p.Decide(op, set).Allowed, "%v %+v", row.granted, op)
		}
		assert.True(t, p.Decide(ops[3], set).Blocked)
		assert.True(t, p.Decide(scope.Operation{Method: "tools/call", Name: "debug_dump"}, set).Blocked)
		assert.True(t, p.Decide(scope.Operation{Method: "tools/call", Name: "server_time"}, set).Allowed)
	}
	_, err = scope.LoadPolicy(strings.NewReader(`{"tools":[{"match":"server_time"},{"match":"server_time"}]}`))
	assert.EqualError(t, err, `mcpauth/scope: invalid policy: tools[1].match: "server_time" already listed at tools[0]`)
	_, err = scope.LoadPolicy(strings.NewReader(`{"tools":[{"match":"a","scope":["read"]}]}`))
	assert.EqualError(t, err, `mcpauth/scope: invalid policy: json: unknown field "scope"`)
}

// FuzzDecide checks that Decide never panics and that its verdicts are
// consistent for any name or URI a client can send.
func FuzzDecide(f *testing.F) {
	for _, s := range []string{"search_documents", "file:///reports/a", "file:///etc/%2570asswd", "file:///reports/../.env", "", "%", "a://", "x/..//"} {
		f.Add(s)
	}
	p := docsearchPolicy(f)
	sets := []scope.Set{{}, scope.MustParseSet("read"), scope.MustParseSet("admin")}
	f.Fuzz(func(t *testing.T, s string) {
		for _, op := range []scope.Operation{
			{Method: "tools/call", Name: s},
			{Method: "resources/read", URI: s},
			{Method: "prompts/get", Name: s},
			{Method: "completion/complete", Ref: s, RefType: scope.RefResource},
		} {
			for _, g := range sets {
				v := p.Decide(op, g)
				if v.Allowed == (v.Reason != "") || v.Allowed && v.Blocked {
					t.Fatalf("inconsistent verdict %+v for %+v", v, op)
				}
				if v.Blocked && !p.Decide(op, scope.MustParseSet("*")).Blocked {
					t.Fatalf("blocked depends on scopes for %+v", op)
				}
			}
		}
	})
}
