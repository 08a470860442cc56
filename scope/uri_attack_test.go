package scope_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/scope"
)

// attackPolicy is the docsearch policy of issue 10, finding 11, with
// unlisted resources allowed: the setting under which the URIs below
// reached the server.
func attackPolicy(t testing.TB) *scope.Policy {
	t.Helper()
	p, err := scope.LoadPolicy(strings.NewReader(`{
  "resources": [
    {"match": "docs://documents/*", "scopes": ["documents:read"]},
    {"match": "file:///reports/*", "scopes": ["reports:read"]},
    {"match": "file:///public/readme.md"}
  ],
  "unlisted_resources": {"allow": true},
  "blocked": {"resources": ["re:^docs://users/.*/api_keys"]}
}`))
	require.NoError(t, err)
	return p
}

// TestPolicyURIAttacks: equivalent spellings of a blocked or scoped URI,
// and URIs servers disagree on, must never be allowed: not with the
// read-only key the attacker holds, not with admin. "blocked" is a
// blocklist hit, "refused" a URI the policy will not guess at; both are
// Verdict.Blocked with a reason a model can read.
func TestPolicyURIAttacks(t *testing.T) {
	t.Parallel()
	p := attackPolicy(t)
	const blocked, refused = "is blocked by this server's policy", "is refused by this server's policy"
	attacks := []struct {
		name, uri, want string
	}{
		// Finding 11 as reported.
		{"upper-case scheme", "DOCS://users/alice/api_keys", blocked},
		{"upper-case host", "docs://USERS/alice/api_keys", blocked},
		{"userinfo", "docs://x@users/alice/api_keys", "user information"},
		{"encoded userinfo", "docs://x%40users/alice/api_keys", refused},
		{"port on a scheme without default", "docs://users:80/alice/api_keys", "port 80"},
		{"NUL byte", "file:///etc/passwd%00", "control character"},
		{"encoded template escape", "docs://documents/..%2F..%2Fusers%2Falice%2Fapi_keys", "climbs above the root"},
		// Case.
		{"mixed-case scheme", "DoCs://users/alice/api_keys", blocked},
		{"upper-case path under blocked re:", "docs://users/alice/API_KEYS", blocked},
		{"encoded upper-case host", "docs://%55SERS/alice/api_keys", blocked},
		{"default glob, upper case", "FILE:///ETC/SHADOW", blocked},
		// Encoding.
		{"encoded dots", "docs://documents/%2e%2e/%2e%2e/users/alice/api_keys", "climbs above the root"},
		{"double-encoded dots", "docs://documents/%252e%252e/users/alice/api_keys", "climbs above the root"},
		{"triple-encoded dots", "docs://documents/%25252e%25252e/users/alice/api_keys", "climbs above the root"},
		{"too deeply encoded", "docs://documents/%25252525252e%25252525252e/x", "percent-encoded more than"},
		{"encoded underscore", "docs://users/alice/api%5Fkeys", blocked},
		{"double-encoded NUL", "file:///etc/passwd%2500.txt", "control character"},
		{"raw control byte", "docs://documents/1\n", "control character"},
		{"encoded byte in default glob", "file:///etc/%73hadow", blocked},
		// Dot segments and slashes.
		{"climb out of a rule and back", "file:///reports/../reports/q3.pdf", "climbs out of the rule prefix"},
		{"climb out of an exact rule", "file:///public/x/../readme.md", "climbs out of the rule prefix"},
		{"climb above root", "docs://documents/../../users/alice/api_keys", "climbs above the root"},
		{"climb inside then out", "docs://documents/a/..%2F..%2Fusers/alice/api_keys", "climbs above the root"},
		{"slash runs", "docs://users//alice///api_keys", blocked},
		{"dot segment", "docs://users/alice/./api_keys", blocked},
		{"trailing /.", "file:///etc/shadow/.", blocked},
		{"dot segments into a default block", "file:///srv/www/../../root/.ssh/id_rsa", blocked},
		{"backslash path", `file:///home\u\.ssh\id_ed25519`, blocked},
		{"encoded backslash path", "file:///etc%5Cshadow", blocked},
		{"backslash host", `docs://users\alice\api_keys`, "backslash"},
		{"backslash authority", `docs:\\users\alice\api_keys`, "backslashes"},
		{"query and fragment", "docs://users/alice/api_keys?x=1#y", blocked},
		// Hosts.
		{"IPv6 host, default port", "http://[::1]:80/home/u/.aws/credentials", blocked},
		{"IPv6 upper case", "http://[FE80::1]/.env", blocked},
		{"IPv6 zone", "http://[fe80::1%25eth0]/x", "IPv6"},
		{"unicode host (fullwidth)", "docs://ｕsers/alice/api_keys", "not ASCII"},
		{"encoded unicode host (long s)", "docs://u%C5%BFers/alice/api_keys", "not ASCII"},
		{"host with encoded slash", "docs://users%2Falice/api_keys", "host contains"},
		{"non-numeric port", "http://example.com:8o/x", "port is not a number"},
		// Not URIs.
		{"no scheme", "users/alice/api_keys", "not an absolute URI"},
		{"empty", "", "not an absolute URI"},
		{"relative climb", "payment:../users/alice/api_keys", "climbs above the root"},
		// Default blocklist additions, on canonical forms.
		{"root ssh dir", "file:///root/.ssh", blocked},
		{"home ssh dir listing", "file:///home/bob/.ssh/", blocked},
		{"authorized_keys", "file:///home/bob/.ssh2/authorized_keys", blocked},
		{"shadow backup", "file:///etc/shadow-", blocked},
		{"gshadow", "file:///etc/gshadow", blocked},
		{"sudoers.d", "file:///etc/sudoers.d/admins", blocked},
		{"aws config", "file:///home/u/.aws/config", blocked},
		{"gcloud dir", "file:///home/u/.config/gcloud", blocked},
		{"azure", "file:///home/u/.azure/msal_token_cache.json", blocked},
		{"kube cache", "file:///home/u/.kube/cache/discovery", blocked},
		{"k8s service account token", "file:///var/run/secrets/kubernetes.io/serviceaccount/token", blocked},
		{"env file", "https://example.com:443/app/.ENV", blocked},
		{"git credentials", "file:///home/u/.git-credentials", blocked},
		{"netrc", "file:///root/.netrc", blocked},
		{"docker config", "file:///home/u/.docker/config.json", blocked},
	}
	keys := []scope.Set{scope.MustParseSet("documents:read", "reports:read"), scope.MustParseSet("admin")}
	for _, tt := range attacks {
		for _, m := range []string{scope.MethodResourcesRead, scope.MethodResourcesSubscribe} {
			t.Run(tt.name+"/"+m, func(t *testing.T) {
				t.Parallel()
				for _, k := range keys {
					v := p.Decide(scope.Operation{Method: m, URI: tt.uri}, k)
					assert.False(t, v.Allowed, "the server would have served %q", tt.uri)
					assert.True(t, v.Blocked, "no key may reach %q: %s", tt.uri, v.Reason)
					assert.Contains(t, v.Reason, tt.want)
					assert.NotContains(t, v.Reason, "not allowed by this server's policy")
				}
				// Completion of the same URI as a resource ref is refused too.
				v := p.Decide(scope.Operation{Method: scope.MethodCompletionComplete, Ref: tt.uri, RefType: scope.RefResource}, keys[1])
				assert.True(t, v.Blocked, v.Reason)
			})
		}
	}
}

// TestPolicyURICanonicalAllowed: canonicalisation must not refuse what a
// well-behaved client sends.
func TestPolicyURICanonicalAllowed(t *testing.T) {
	t.Parallel()
	p := attackPolicy(t)
	read := scope.MustParseSet("documents:read", "reports:read")
	tests := []struct {
		name, uri, required string
	}{
		{"document", "docs://documents/7", "documents:read"},
		{"upper-case scheme and host", "DOCS://Documents/7", "documents:read"},
		{"dot segments inside the rule", "file:///reports/2024/../q3.pdf", "reports:read"},
		{"encoded name", "file:///reports/q%33.pdf", "reports:read"},
		{"encoded question mark stays in the path", "file:///reports/what%3F.pdf", "reports:read"},
		{"exact rule", "file:///public/readme.md", ""},
		{"unlisted", "https://Example.com:443/x", ""},
		{"http non-default port", "http://example.com:8080/x", ""},
		{"template", "docs://documents/{id}", "documents:read"},
		{"opaque URI", "mailto:alice@example.com", ""},
		{"users without api_keys", "docs://users/alice/profile", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := p.Decide(scope.Operation{Method: scope.MethodResourcesRead, URI: tt.uri}, read)
			assert.True(t, v.Allowed, v.Reason)
			assert.Equal(t, tt.required, v.Scope())
		})
	}
}

// TestPolicyURIPortNamedByRule: a scheme without a default port may carry
// the port a rule names, and only that one.
func TestPolicyURIPortNamedByRule(t *testing.T) {
	t.Parallel()
	p, err := scope.NewPolicy(scope.PolicyConfig{
		Resources:         []scope.Rule{{Match: "postgres://db:5432/*", Scopes: []string{"db:read"}}},
		UnlistedResources: scope.Unlisted{Allow: true},
		Blocked:           scope.Blocklist{Resources: []string{"re:^postgres://db/secrets"}},
	})
	require.NoError(t, err)
	k := scope.MustParseSet("db:read")
	v := p.Decide(scope.Operation{Method: scope.MethodResourcesRead, URI: "postgres://DB:5432/orders"}, k)
	assert.True(t, v.Allowed, v.Reason)
	assert.Equal(t, "db:read", v.Scope())
	v = p.Decide(scope.Operation{Method: scope.MethodResourcesRead, URI: "postgres://db:5433/orders"}, k)
	assert.True(t, v.Blocked, v.Reason)
	// The blocklist also sees the URI without the kept port.
	v = p.Decide(scope.Operation{Method: scope.MethodResourcesRead, URI: "postgres://db:5432/secrets"}, scope.MustParseSet("admin"))
	assert.True(t, v.Blocked, v.Reason)
}
