package store_test

import (
	"testing"

	"github.com/mcpauth/mcpauth/store"
	"github.com/mcpauth/mcpauth/store/storetest"
)

func TestMemoryConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(*testing.T) store.KeyStore { return store.NewMemory() })
}
