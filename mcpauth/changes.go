package mcpauth

import (
	"github.com/mcpauth/mcpauth/store"
)

// applyChange drops from the cache what a change from the shared change
// channel (Options.Changes) names: a key, every key of a user, or, after the
// channel was down (Lost), everything.
func (g *Guard) applyChange(c store.Change) {
	switch {
	case c.Lost:
		g.cache.forgetAll()
	default:
		if c.KeyID != "" {
			g.cache.forget(c.KeyID)
		}
		if c.UserID != "" {
			g.cache.forgetUser(c.UserID)
		}
	}
}

// ForgetUser drops every cached key of userID, so that the next request with
// any of them asks the store (and Options.Users) again. Publish a
// store.Change{UserID: ...} on the shared change channel instead to reach
// every instance's Guard. Fills in flight for those keys are not written
// back.
func (g *Guard) ForgetUser(userID string) { g.cache.forgetUser(userID) }
