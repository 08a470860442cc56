package mcpauth

import (
	"github.com/mcpauth/mcpauth/store"
)

// applyChange drops from the cache what a change from the shared change
// channel (Options.Changes) names: a key, every key of a user, or, after the
// channel was down (Lost), everything; and ends their event streams (Lost:
// every stream, since any key may have changed).
func (g *Guard) applyChange(c store.Change) {
	switch {
	case c.Lost:
		g.cache.forgetAll()
		g.streams.forgetAll()
	default:
		if c.KeyID != "" {
			g.Forget(c.KeyID)
		}
		if c.UserID != "" {
			g.ForgetUser(c.UserID)
		}
	}
}

// ForgetUser drops every cached key of userID, so that the next request with
// any of them asks the store (and Options.Users) again, and ends the event
// streams of the user's keys, whatever the change (see Forget): call it when
// a user is deactivated, or their keys changed through another path.
// Publish a store.Change{UserID: ...} on the shared change channel instead
// to reach every instance's Guard. Fills in flight for those keys are not
// written back.
func (g *Guard) ForgetUser(userID string) {
	g.cache.forgetUser(userID)
	g.streams.forgetUser(userID)
}
