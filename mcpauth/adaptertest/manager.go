package adaptertest

import (
	"context"
	"testing"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/store"
)

// NewManager returns a key manager with o (nil: defaults) over keys, whose
// changes reach g's cache at once (OnChange is g.Forget), closed when the
// test ends. It is for adapter tests that issue keys their Guard accepts:
// give o the Guard's Peppers when it has any.
func NewManager(t testing.TB, keys store.KeyStore, g *mcpauth.Guard, o *keyadmin.Options) (*keyadmin.Manager, error) {
	t.Helper()
	var opts keyadmin.Options
	if o != nil {
		opts = *o
	}
	opts.OnChange = g.Forget
	m, err := keyadmin.New(keys, &opts)
	if err == nil {
		t.Cleanup(func() { _ = m.Close(context.Background()) })
	}
	return m, err
}

// MustManager is NewManager, failing the test on error.
func MustManager(t testing.TB, keys store.KeyStore, g *mcpauth.Guard, o *keyadmin.Options) *keyadmin.Manager {
	t.Helper()
	m, err := NewManager(t, keys, g, o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
