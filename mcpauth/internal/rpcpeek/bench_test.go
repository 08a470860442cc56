package rpcpeek

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/scope"
)

// callBody returns a tools/call request whose arguments are about n bytes
// of varied JSON (escaped strings, numbers, nested objects and arrays).
func callBody(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"search_documents","arguments":{"query":"quarterly \"revenue\" report","items":[`)
	for i := 0; b.Len() < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"title":"Document number %d with a \u00e9 and \n newline","score":%d.%d,"tags":["a","b","c"],"meta":{"ok":true,"n":null}}`, i, i, i%97, i%13)
	}
	b.WriteString(`]},"_meta":{"progressToken":"t-1"}}}`)
	return []byte(b.String())
}

var benchSizes = []struct {
	name string
	n    int
}{{"1KiB", 1 << 10}, {"16KiB", 16 << 10}, {"256KiB", 256 << 10}, {"4MiB", 4 << 20}}

func benchPolicy(tb testing.TB) *scope.Policy {
	p, err := scope.NewPolicy(scope.PolicyConfig{Tools: []scope.Rule{
		{Match: "search_documents", Scopes: []string{"documents:read"}},
		{Match: "delete_document", Scopes: []string{"documents:delete"}},
		{Match: "get_*", Scopes: []string{"read"}},
	}})
	require.NoError(tb, err)
	return p
}

func peekDecide(body []byte, p *scope.Policy, granted scope.Set) bool {
	var buf [4]Message
	msgs, _, err := Peek(body, buf[:0])
	if err != nil {
		return false
	}
	for i := range msgs {
		m := &msgs[i]
		sm := scope.Message{Method: m.Method, Name: m.Name, URI: m.URI, RefType: m.RefType, RefName: m.RefName, RefURI: m.RefURI}
		if !p.Decide(sm.Operation(), granted).Allowed {
			return false
		}
	}
	return true
}

// TestPeekDecideAllocationsConstant checks that decoding and deciding a
// tools/call allocates nothing, whatever the size of its arguments.
func TestPeekDecideAllocationsConstant(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	p := benchPolicy(t)
	granted := scope.MustParseSet("documents:read")
	for _, sz := range benchSizes {
		body := callBody(sz.n)
		allocs := testing.AllocsPerRun(3, func() {
			if !peekDecide(body, p, granted) {
				t.Fatal("denied")
			}
		})
		assert.Zero(t, allocs, sz.name)
	}
}

// BenchmarkPeekDecide is the figure in docs/bench/policy.md: decode a
// tools/call and decide it, arguments from 1 KiB to 4 MiB.
func BenchmarkPeekDecide(b *testing.B) {
	p := benchPolicy(b)
	granted := scope.MustParseSet("documents:read", "notes:write")
	for _, sz := range benchSizes {
		body := callBody(sz.n)
		b.Run(sz.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if !peekDecide(body, p, granted) {
						b.Fatal("denied")
					}
				}
			})
		})
	}
}

// BenchmarkPeekEscaped measures the slow path: names with escapes are
// decoded into a new string.
func BenchmarkPeekEscaped(b *testing.B) {
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools\/call","params":{"name":"search_\u0064ocuments","arguments":{}}}`)
	b.ReportAllocs()
	for b.Loop() {
		var buf [1]Message
		if _, _, err := Peek(body, buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}
