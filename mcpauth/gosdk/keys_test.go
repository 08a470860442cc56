package gosdk_test

import (
	"context"
	"testing"

	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/store"
)

// newManager returns a key manager with o (nil: defaults) over keys, whose
// changes reach g's cache at once.
func newManager(t testing.TB, keys store.KeyStore, g *mcpauth.Guard, o *keyadmin.Options) (*keyadmin.Manager, error) {
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

// mustManager is newManager with the given peppers, failing the test on error.
func mustManager(t testing.TB, keys store.KeyStore, g *mcpauth.Guard, peppers ...apikey.Pepper) *keyadmin.Manager {
	t.Helper()
	m, err := newManager(t, keys, g, &keyadmin.Options{Peppers: peppers})
	if err != nil {
		t.Fatal(err)
	}
	return m
}
