package scope_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/scope"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in       string
		resource string
		action   string
		err      string // substring of the error; "" = valid
	}{
		{in: "read", action: "read"},
		{in: "admin", action: "admin"},
		{in: "*", action: "*"},
		{in: "documents:read", resource: "documents", action: "read"},
		{in: "documents:*", resource: "documents", action: "*"},
		{in: "Docs.v2/reports_x-y:list", resource: "Docs.v2/reports_x-y", action: "list"},
		{in: "", err: `invalid scope "": empty`},
		{in: "docs::read", err: `invalid scope "docs::read": more than one ":"`},
		{in: "a:b:c", err: `more than one ":"`},
		{in: ":read", err: `empty resource before ":"`},
		{in: "documents:", err: `empty action after ":"`},
		{in: "*:read", err: `wildcard resource not allowed`},
		{in: "doc*", err: `"*" must be the whole scope or the whole action`},
		{in: "documents:re*", err: `"*" must be the whole scope or the whole action`},
		{in: "documents:*x", err: `"*" must be the whole scope or the whole action`},
		{in: "**", err: `"*" must be the whole scope`},
		{in: "read write", err: `whitespace at byte 4`},
		{in: " read", err: `whitespace at byte 0`},
		{in: "réad", err: `invalid character 'é' at byte 1`},
		{in: "read,write", err: `invalid character ',' at byte 4 (allowed: ASCII letters, digits, . _ - / and one :)`},
		{in: "a\x00", err: `invalid character '\x00'`},
		{in: strings.Repeat("a", scope.MaxLen), action: strings.Repeat("a", scope.MaxLen)},
		{in: strings.Repeat("a", scope.MaxLen+1), err: "longer than 128 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := scope.Parse(tt.in)
			if tt.err != "" {
				require.Error(t, err)
				assert.ErrorIs(t, err, scope.ErrInvalidScope)
				assert.Contains(t, err.Error(), tt.err)
				assert.True(t, strings.HasPrefix(err.Error(), "mcpauth/scope: "), err.Error())
				assert.True(t, got.IsZero())
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.in, got.String())
			assert.Equal(t, tt.resource, got.Resource())
			assert.Equal(t, tt.action, got.Action())
		})
	}
}

func TestParseLongInputTruncatedInError(t *testing.T) {
	t.Parallel()
	_, err := scope.Parse(strings.Repeat("x", 1<<20))
	require.Error(t, err)
	assert.Less(t, len(err.Error()), 400)
}

func TestWellKnown(t *testing.T) {
	t.Parallel()
	for _, sc := range []scope.Scope{scope.All, scope.Admin, scope.Read, scope.Write, scope.Delete} {
		assert.Equal(t, scope.MustParse(sc.String()), sc)
	}
	assert.Panics(t, func() { scope.MustParse("a b") })
}

func TestAllows(t *testing.T) {
	t.Parallel()
	tests := []struct {
		granted, required string
		want              bool
	}{
		// admin and * grant everything.
		{"admin", "read", true},
		{"admin", "documents:delete", true},
		{"admin", "*", true},
		{"*", "admin", true},
		{"*", "documents:*", true},
		// The seed: write does not imply delete, nor read; nothing implies admin.
		{"write", "delete", false},
		{"write", "read", false},
		{"delete", "read", false},
		{"read", "write", false},
		{"read", "admin", false},
		{"documents:*", "admin", false},
		// Plain actions apply to every resource.
		{"read", "read", true},
		{"read", "documents:read", true},
		{"read", "documents:write", false},
		{"read", "documents:*", false},
		// Qualified scopes grant only themselves; res:* covers res:<action>.
		{"documents:read", "documents:read", true},
		{"documents:read", "read", false},
		{"documents:read", "notes:read", false},
		{"documents:read", "documents:write", false},
		{"documents:*", "documents:delete", true},
		{"documents:*", "documents:*", true},
		{"documents:*", "delete", false},
		{"documents:*", "documentsx:read", false},
		{"documents:*", "doc:read", false},
		{"documents:admin", "documents:read", false},
	}
	for _, tt := range tests {
		t.Run(tt.granted+"/"+tt.required, func(t *testing.T) {
			t.Parallel()
			g, r := scope.MustParse(tt.granted), scope.MustParse(tt.required)
			assert.Equal(t, tt.want, g.Allows(r))
			assert.Equal(t, tt.want, scope.NewSet(g).Allows(r))
		})
	}
	assert.False(t, scope.Scope{}.Allows(scope.Read))
	assert.False(t, scope.Admin.Allows(scope.Scope{}))
	assert.False(t, scope.MustParseSet("admin").Allows(scope.Scope{}))
}

func TestParseSet(t *testing.T) {
	t.Parallel()
	set, err := scope.ParseSet([]string{"write", "documents:read", "read", "write"})
	require.NoError(t, err)
	assert.Equal(t, "documents:read read write", set.String())
	assert.Equal(t, []string{"documents:read", "read", "write"}, set.Strings())
	assert.Equal(t, 3, set.Len())
	assert.True(t, set.AllowsAll([]scope.Scope{scope.Read, scope.MustParse("notes:write")}))
	assert.False(t, set.AllowsAll([]scope.Scope{scope.Read, scope.Delete}))
	assert.Equal(t, []scope.Scope{scope.Delete}, set.Missing([]scope.Scope{scope.Read, scope.Delete}))
	assert.True(t, set.AllowsAll(nil))

	_, err = scope.ParseSet([]string{"read", "ok:x", "docs::read"})
	require.Error(t, err)
	assert.ErrorIs(t, err, scope.ErrInvalidScope)
	assert.Equal(t, `mcpauth/scope: scopes[2]: invalid scope "docs::read": more than one ":"`, err.Error())
	var fe *scope.FieldError
	require.True(t, errors.As(err, &fe))
	assert.Equal(t, "scopes[2]", fe.Field)

	empty, err := scope.ParseSet(nil)
	require.NoError(t, err)
	assert.Equal(t, "", empty.String())
	assert.False(t, empty.Allows(scope.Read))
	assert.False(t, scope.Set{}.Allows(scope.Read))
}

func TestText(t *testing.T) {
	t.Parallel()
	var s scope.Scope
	require.NoError(t, s.UnmarshalText([]byte("documents:*")))
	b, err := s.MarshalText()
	require.NoError(t, err)
	assert.Equal(t, "documents:*", string(b))
	assert.ErrorIs(t, s.UnmarshalText([]byte("x y")), scope.ErrInvalidScope)
	_, err = scope.Scope{}.MarshalText()
	assert.Error(t, err)
}

func TestSetAllowsDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	set := scope.MustParseSet("notes:read", "documents:write", "read", "reports:*")
	req := scope.MustParse("reports:delete")
	allocs := testing.AllocsPerRun(100, func() {
		if !set.Allows(req) {
			t.Fatal("want allowed")
		}
	})
	assert.Zero(t, allocs)
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"read", "documents:read", "documents:*", "*", "admin", "docs::read", "*:read", "a b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := scope.Parse(in)
		if err != nil {
			if !errors.Is(err, scope.ErrInvalidScope) {
				t.Fatalf("error %v does not wrap ErrInvalidScope", err)
			}
			return
		}
		if s.String() != in {
			t.Fatalf("String() = %q, want %q", s.String(), in)
		}
		again, err := scope.Parse(s.String())
		if err != nil || again != s {
			t.Fatalf("round trip of %q: %v, %v", in, again, err)
		}
		if !s.Allows(s) {
			t.Fatalf("%q does not allow itself", in)
		}
		if !scope.Admin.Allows(s) || !scope.All.Allows(s) {
			t.Fatalf("admin or * does not allow %q", in)
		}
	})
}
