package keyadmin_test

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
	"github.com/mcpauth/mcpauth/store"
)

// Create a key: the raw key is returned once; the store keeps only its hash.
func ExampleManager_Create() {
	// Tests inject a deterministic source; production uses crypto/rand (the default).
	seeded := rand.NewChaCha8([32]byte{1})
	admin, _ := keyadmin.New(store.NewMemory(), &keyadmin.Options{Rand: seeded})
	key, err := admin.Create(context.Background(), "user-42", keyadmin.CreateOptions{Name: "laptop"})
	if err != nil {
		panic(err)
	}
	parsed, _ := apikey.ParseKey(key.Raw, "")
	fmt.Println(len(key.Raw), parsed.ID == key.Key.ID, len(key.Key.Hash))
	fmt.Println(key) // printing the result never shows the raw key
	// Output:
	// 46 true 32
	// keyadmin.CreatedKey{ID:iiw1H3lRmyFr}
}
