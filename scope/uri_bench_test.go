package scope_test

import (
	"testing"

	"github.com/mcpauth/mcpauth/scope"
)

// BenchmarkDecideURI measures resources/read decisions: a URI already in
// canonical form (the common case, no allocation), one that needs decoding
// and dot-segment removal, and one the default blocklist refuses.
func BenchmarkDecideURI(b *testing.B) {
	p := docsearchPolicy(b)
	granted := scope.MustParseSet("documents:read", "reports:read")
	for _, bc := range []struct{ name, uri string }{
		{"canonical", "file:///reports/2024/q3.pdf"},
		{"encoded", "FILE:///reports/2024/%71%33.pdf"},
		{"dot-segments", "file:///reports/2024/./a/../q3.pdf"},
		{"blocked", "file:///reports/../home/u/.ssh/id_rsa"},
	} {
		op := scope.Operation{Method: scope.MethodResourcesRead, URI: bc.uri}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					p.Decide(op, granted)
				}
			})
		})
	}
}
