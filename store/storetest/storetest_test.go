package storetest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/store"
	"github.com/mcpauth/mcpauth/store/storetest"
)

// usersStore is a memory store whose keys must belong to a registered user,
// as a SQL store with a foreign key to the host's users table would be.
type usersStore struct {
	*store.Memory
	mu    sync.Mutex
	users map[string]bool
}

var errUnknownUser = errors.New("foreign key: unknown user")

func newUsersStore() *usersStore {
	return &usersStore{Memory: store.NewMemory(), users: make(map[string]bool)}
}

func (s *usersStore) register(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[id] = true
}

func (s *usersStore) CreateKey(ctx context.Context, k store.Key) error {
	s.mu.Lock()
	known := s.users[k.UserID]
	s.mu.Unlock()
	if !known {
		return fmt.Errorf("%w %q", errUnknownUser, k.UserID)
	}
	return s.Memory.CreateKey(ctx, k)
}

// TestRunWithUsers runs the suite over a store that refuses keys of unknown
// users: it passes with an Options.User function that registers them under
// the host's own IDs, and fails without one.
func TestRunWithUsers(t *testing.T) {
	if os.Getenv("STORETEST_WITHOUT_USERS") == "1" {
		storetest.Run(t, func(*testing.T) store.KeyStore { return newUsersStore() })
		return
	}
	t.Parallel()
	var (
		mu    sync.Mutex
		asked = make(map[string]bool)
	)
	storetest.RunWithOptions(t, func(*testing.T) store.KeyStore { return newUsersStore() }, &storetest.Options{
		User: func(t *testing.T, s store.KeyStore, name string) string {
			mu.Lock()
			asked[name] = true
			mu.Unlock()
			id := "app-" + name
			s.(*usersStore).register(id)
			return id
		},
	})
	assert.True(t, asked["user-1"])
	assert.True(t, asked["lister"])

	// The same suite without the function: the made-up user IDs are refused.
	cmd := exec.Command(os.Args[0], "-test.run=^TestRunWithUsers$", "-test.count=1")
	cmd.Env = append(os.Environ(), "STORETEST_WITHOUT_USERS=1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "the suite must fail without Options.User:\n%s", out)
	assert.Contains(t, string(out), errUnknownUser.Error())
}

// TestUserIDsReachTheStore checks that keys the suite creates carry the
// IDs the User function returned.
func TestUserIDsReachTheStore(t *testing.T) {
	t.Parallel()
	var (
		mu     sync.Mutex
		stores []*usersStore
	)
	storetest.RunWithOptions(t, func(*testing.T) store.KeyStore {
		s := newUsersStore()
		mu.Lock()
		stores = append(stores, s)
		mu.Unlock()
		return s
	}, &storetest.Options{User: func(t *testing.T, s store.KeyStore, name string) string {
		s.(*usersStore).register("host-" + name)
		return "host-" + name
	}})
	var listed int
	for _, s := range stores {
		keys, err := s.ListKeys(context.Background(), "host-lister")
		require.NoError(t, err)
		listed += len(keys)
	}
	assert.Equal(t, 3, listed, "the List subtest's keys belong to the mapped user")
}
