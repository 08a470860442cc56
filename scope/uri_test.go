package scope

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCanonicalURI(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want, stable, refusal string
	}{
		{in: "docs://documents/7", want: "docs://documents/7", stable: "docs://documents/7"},
		{in: "DOCS://USERS/Alice", want: "docs://users/Alice"},
		{in: "docs://users:/x", want: "docs://users/x"},
		{in: "http://EXAMPLE.com:80/a", want: "http://example.com/a"},
		{in: "https://example.com:0443", want: "https://example.com"},
		{in: "https://example.com:8443/", want: "https://example.com:8443/"},
		{in: "http://[FE80::1]:80/a/", want: "http://[fe80::1]/a"},
		{in: "file:///a//b/./c/../d?q#f", want: "file:///a/b/d", stable: "file:///a/b/"},
		{in: "file:///a/%252e%252e/b", want: "file:///b", stable: "file:///"},
		{in: `file:///a\b`, want: "file:///a/b"},
		{in: "file:///a/%3F%23", want: "file:///a/%3F%23"},
		{in: "file:///a/b/..", want: "file:///a", stable: "file:///a"},
		{in: "file:///a/..", want: "file:///", stable: "file:///"},
		{in: "file:", want: "file:"},
		{in: "user:42:password", want: "user:42:password"},
		{in: "payment:card/./1", want: "payment:card/1"},
		{in: "payment:a/../b", want: "payment:b", stable: "payment:"},
		{in: "x:100%", want: "x:100%"},
		{in: "docs://%7Bhost%7D/{id}", want: "docs://{host}/{id}"},
		{in: "", refusal: "no scheme"},
		{in: "1x:/a", refusal: "no scheme"},
		{in: "file:///..", refusal: "climbs above the root"},
		{in: "docs://u@h/", refusal: "user information"},
		{in: "docs://h:1/", refusal: "port 1"},
		{in: "docs://h:x/", refusal: "not a number"},
		{in: "http://[::1/", refusal: "closing bracket"},
		{in: "http://[::1]x/", refusal: "after its IPv6 host"},
		{in: "file:///%7F", refusal: "control"},
		{in: "docs://h%20/", refusal: "host contains"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			c := canonicalURI(tt.in, nil)
			if tt.refusal != "" {
				assert.Contains(t, c.refusal, tt.refusal)
				assert.Empty(t, c.uri)
				return
			}
			require.Empty(t, c.refusal)
			assert.Equal(t, tt.want, c.uri)
			stable := tt.stable
			if stable == "" {
				stable = tt.want
			}
			assert.Equal(t, stable, c.uri[:c.stable])
			assert.Equal(t, c.uri, canonicalURI(c.uri, nil).uri, "idempotent")
		})
	}
}

func TestCanonicalURIDoesNotAllocateWhenCanonical(t *testing.T) {
	for _, u := range []string{"file:///reports/q3.pdf", "docs://documents/7", "user:42:password", "https://example.com/a/b"} {
		allocs := testing.AllocsPerRun(100, func() {
			if c := canonicalURI(u, nil); c.uri != u {
				t.Fatal(c)
			}
		})
		assert.Zero(t, allocs, u)
	}
}

// uriParts splits a URI this package accepts into what precedes its path
// and the path.
func uriParts(u string) (prefix, path string) {
	i := strings.IndexByte(u, ':') + 1
	if strings.HasPrefix(u[i:], "//") {
		j := strings.IndexByte(u[i+2:], '/')
		if j < 0 {
			return u, ""
		}
		i += 2 + j
	}
	return u[:i], u[i:]
}

// fuzzBlockPolicy blocks with globs (the defaults) and a re: pattern.
var fuzzBlockPolicy = func() *Policy {
	p, err := NewPolicy(PolicyConfig{
		UnlistedResources: Unlisted{Allow: true},
		Blocked:           Blocklist{Resources: []string{"re:^docs://users/[^/]+/api_keys"}},
	})
	if err != nil {
		panic(err)
	}
	return p
}()

// FuzzCanonicalURI checks canonicalURI against net/url's dot-segment
// removal, its idempotence and its fast path, and that a blocked URI stays
// blocked when any byte of its path is percent-encoded.
func FuzzCanonicalURI(f *testing.F) {
	for _, s := range []string{
		"docs://documents/7", "DOCS://users/alice/api_keys", "docs://USERS/alice/api_keys", "docs://x@users/a/api_keys",
		"docs://users:80/a/api_keys", "file:///etc/passwd%00", "docs://documents/..%2F..%2Fusers%2Falice%2Fapi_keys",
		"file:///a/%2e%2e/b", "file:///a/%252e%252e/b", "file:////a//b", "file:///a/.", "file:///a/b/..", `file:///a\..\b`,
		"http://[::1]:80/x", "docs://ｕsers/x", "user:42:password", "payment:a/../b", "file:///a/%3F?q#f", "x:%", "%",
		"file:///home/u/.ssh/id_rsa", "https://h:443/.env",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := canonicalURI(s, nil)
		if isCanonical(s) {
			if slow := canonicalizeSlow(s, nil); slow.uri != s || slow.refusal != "" {
				t.Fatalf("fast path says %q is canonical, slow path gives %+v", s, slow)
			}
		}
		if c.refusal != "" {
			if c.uri != "" {
				t.Fatalf("refused %q but returned %q", s, c.uri)
			}
			return
		}
		if c.stable < 0 || c.stable > len(c.uri) {
			t.Fatalf("stable %d out of range for %q", c.stable, c.uri)
		}
		if again := canonicalURI(c.uri, nil); again.refusal != "" || again.uri != c.uri {
			t.Fatalf("not idempotent: %q -> %q -> %+v", s, c.uri, again)
		}

		// Reference: net/url's dot-segment removal of the decoded path.
		if u, err := url.Parse(s); err == nil && u.Opaque == "" && u.User == nil && strings.Contains(s, "://") {
			raw := s
			if i := strings.IndexAny(raw, "?#"); i >= 0 {
				raw = raw[:i]
			}
			_, raw = uriParts(raw)
			dec, _ := decodeFully(raw)
			dec = strings.ReplaceAll(dec, `\`, "/")
			for strings.Contains(dec, "//") {
				dec = strings.ReplaceAll(dec, "//", "/")
			}
			if strings.HasPrefix(dec, "/") {
				ref := (&url.URL{Scheme: "x", Host: "h", Path: "/"}).ResolveReference(&url.URL{Path: dec}).Path
				if len(ref) > 1 {
					ref = strings.TrimSuffix(ref, "/")
				}
				_, got := uriParts(c.uri)
				got = strings.NewReplacer("%3F", "?", "%23", "#").Replace(got)
				if got != ref {
					t.Fatalf("%q: path %q, net/url resolves %q", s, got, ref)
				}
			}
		}

		// Blocked stays blocked under re-encoding of any path byte.
		if len(c.uri) > 256 || !fuzzBlockPolicy.Decide(opRead(c.uri), Set{}).Blocked {
			return
		}
		prefix, path := uriParts(c.uri)
		for i := range len(path) {
			for _, enc := range []string{"%%%02X", "%%25%02X"} {
				e := prefix + path[:i] + fmt.Sprintf(enc, path[i]) + path[i+1:]
				if v := fuzzBlockPolicy.Decide(opRead(e), Set{}); !v.Blocked {
					t.Fatalf("%q is blocked, its re-encoding %q is not: %+v", c.uri, e, v)
				}
			}
		}
		if up := strings.ToUpper(prefix) + path; !fuzzBlockPolicy.Decide(opRead(up), Set{}).Blocked {
			t.Fatalf("%q is blocked, %q is not", c.uri, up)
		}
	})
}

func opRead(u string) Operation { return Operation{Method: MethodResourcesRead, URI: u} }

// FuzzLoadPolicy checks that LoadPolicy never panics, that its errors
// wrap ErrInvalidPolicy, and that a policy that loads re-validates after a
// round trip through JSON and decides like the original.
func FuzzLoadPolicy(f *testing.F) {
	for _, s := range []string{
		`{}`, ``, `{} {}`, `{"tools":[{"match":"a","scope":["read"]}]}`, `{"tools":[{"match":1}]}`,
		`{"tools":[{"match":"search_documents","scopes":["documents:read"]},{"match":"get_*","scopes":["read"]}],
		  "resources":[{"match":"docs://documents/*","scopes":["documents:read"]},{"match":"postgres://db:5432/*"}],
		  "prompts":[{"match":"summarize"}],"completions":[{"match":"x","scopes":["write"]}],
		  "unlisted_tools":{"scopes":["admin"]},"unlisted_resources":{"allow":true},
		  "blocked":{"tools":["exec_*","re:^shell$"],"resources":["re:^docs://users/.*/api_keys","payment:*"],"prompts":["jb*"]},
		  "unsafe_no_default_blocked":true}`,
		`{"blocked":{"resources":["re:("]}}`, `{"unlisted_tools":{"allow":true,"scopes":["read"]}}`,
		`{"tools":[{"match":"a"},{"match":"a"}]}`, `{"tools":[{"match":"c","scopes":["docs::read"]}]}`,
	} {
		f.Add([]byte(s))
	}
	ops := []Operation{
		{Method: MethodToolsCall, Name: "search_documents"}, {Method: MethodToolsCall, Name: "exec_x"},
		opRead("docs://documents/1"), opRead("docs://users/a/api_keys"), opRead("postgres://db:5432/t"), opRead("file:///.env"),
		{Method: MethodPromptsGet, Name: "summarize"},
		{Method: MethodCompletionComplete, Ref: "x", RefType: RefPrompt},
	}
	sets := []Set{{}, mustSet("read"), mustSet("admin")}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := LoadPolicy(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrInvalidPolicy) || err.Error() == "" {
				t.Fatalf("error %v does not wrap ErrInvalidPolicy", err)
			}
			return
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		var cfg PolicyConfig
		if err := dec.Decode(&cfg); err != nil {
			t.Fatalf("LoadPolicy accepted what json rejects: %v", err)
		}
		out, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		q, err := LoadPolicy(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("round trip %s does not load: %v", out, err)
		}
		for _, op := range ops {
			for _, g := range sets {
				if a, b := p.Decide(op, g), q.Decide(op, g); a.Allowed != b.Allowed || a.Blocked != b.Blocked || a.Reason != b.Reason {
					t.Fatalf("round trip changes %+v: %+v vs %+v", op, a, b)
				}
			}
		}
	})
}

func mustSet(s ...string) Set {
	set, err := ParseSet(s)
	if err != nil {
		panic(err)
	}
	return set
}
