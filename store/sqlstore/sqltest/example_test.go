package sqltest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // the program chooses the driver; sqlstore imports none

	"github.com/mcpauth/mcpauth/store"
	"github.com/mcpauth/mcpauth/store/sqlstore"
)

func Example_new() {
	dir, err := os.MkdirTemp("", "sqlstore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// A busy timeout makes concurrent writers wait for each other; WAL lets
	// readers run while one writes.
	dsn := "file:" + filepath.Join(dir, "mcpauth.db") + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	ctx := context.Background()
	keys, err := sqlstore.New(db, nil) // dialect detected, tables prefixed "mcpauth_"
	if err != nil {
		log.Fatal(err)
	}
	if err := keys.Migrate(ctx); err != nil { // explicit and idempotent
		log.Fatal(err)
	}

	created := time.Date(2026, 3, 14, 15, 9, 26, 535897000, time.UTC)
	err = keys.CreateKey(ctx, store.Key{
		ID:        "k1A2b3C4d5",
		UserID:    "user-42",
		Hash:      []byte("32 bytes of HMAC-SHA256 go here."),
		Scopes:    []string{"documents:read"},
		CreatedAt: created,
	})
	if err != nil {
		log.Fatal(err)
	}
	k, err := keys.LookupKey(ctx, "k1A2b3C4d5")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(keys.Dialect(), k.UserID, k.Scopes, k.CreatedAt.Format(time.RFC3339Nano))

	_, err = keys.LookupKey(ctx, "unknown")
	fmt.Println(errors.Is(err, store.ErrNotFound))
	// Output:
	// sqlite user-42 [documents:read] 2026-03-14T15:09:26.535897Z
	// true
}
