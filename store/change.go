package store

import (
	"context"
	"errors"
	"strings"
	"time"
)

// Change says that shared key state changed, so that every instance drops
// what it cached about it. It carries IDs only, never key material.
type Change struct {
	// KeyID, when set, names a key whose record changed: created,
	// revoked, rotated (the old key's shortened expiry), expiry, scopes,
	// metadata or deleted.
	KeyID string
	// UserID, when set, names a user the host changed (deactivated,
	// suspended, roles changed): every cached key of that user is dropped.
	UserID string
	// Lost says that changes may have been missed (the channel was down):
	// a subscriber drops everything it cached. Feeds set it on their own
	// when they reconnect; publishers never send it.
	Lost bool
}

// ErrInvalidChange is returned by Encode and ParseChange for a change that
// names neither a key nor a user, or one with a malformed ID.
var ErrInvalidChange = errors.New("mcpauth/store: invalid change")

// maxChangeIDLen bounds the IDs of a Change: key IDs are short, and user
// IDs are the host's; PostgreSQL NOTIFY payloads stop at 8000 bytes.
const maxChangeIDLen = 1024

// Encode returns the change's wire form, the payload every change channel
// carries: "k:<key id>" or "u:<user id>". A change naming both a key and a
// user encodes as two messages, which is why Encode returns a slice.
func (c Change) Encode() ([]string, error) {
	var out []string
	for _, f := range []struct{ tag, id string }{{"k:", c.KeyID}, {"u:", c.UserID}} {
		if f.id == "" {
			continue
		}
		if len(f.id) > maxChangeIDLen || strings.ContainsAny(f.id, "\x00\n") {
			return nil, ErrInvalidChange
		}
		out = append(out, f.tag+f.id)
	}
	if len(out) == 0 {
		return nil, ErrInvalidChange
	}
	return out, nil
}

// ParseChange reads one payload written by Encode.
func ParseChange(payload string) (Change, error) {
	tag, id, ok := strings.Cut(payload, ":")
	if !ok || id == "" || len(id) > maxChangeIDLen {
		return Change{}, ErrInvalidChange
	}
	switch tag {
	case "k":
		return Change{KeyID: id}, nil
	case "u":
		return Change{UserID: id}, nil
	}
	return Change{}, ErrInvalidChange
}

// ChangePublisher tells every instance about a change. Call it after the
// change committed; keyadmin.Manager does for every key change it stores,
// and the host does for user changes (a deactivation). Implementations must
// be safe for concurrent use.
type ChangePublisher interface {
	// PublishChange sends c to every subscriber of the channel, on every
	// instance (this one included). An error means it may not have been
	// sent: the instances' polls (mcpauth.Options.RevocationPollInterval)
	// still see key changes, a second or so later.
	PublishChange(ctx context.Context, c Change) error
}

// ChangeFeed is a change channel shared by every instance: PostgreSQL
// LISTEN/NOTIFY (module store/sqlstore/pgnotify) or Redis pub/sub (module
// store/redisnotify). A Guard given one (mcpauth.Options.Changes) drops a
// changed key from its cache as soon as the change arrives, typically a
// millisecond after it committed; the store's poll stays the safety net for
// when the channel is down.
type ChangeFeed interface {
	ChangePublisher
	ChangeSubscriber
}

// ChangeSubscriber is the receiving half of a ChangeFeed: all a Guard needs.
type ChangeSubscriber interface {
	// Subscribe calls fn for every change published from now on by any
	// instance, on the feed's own goroutine, in order; fn must not block.
	// After the channel was down, fn gets a Change with Lost set once the
	// feed listens again. The returned func stops the calls; it is safe to
	// call more than once.
	Subscribe(fn func(Change)) (unsubscribe func())
}

// ChangeLister is implemented by stores shared by several processes (the
// SQL store) that record when each key last changed. A Guard over such a
// store polls it instead of RevocationLister, so that every change, not
// only a revocation (a rotation's shortened expiry too), reaches every
// instance within about a poll interval even without a ChangeFeed.
type ChangeLister interface {
	// ChangedSince returns the IDs of keys changed (revoked, expiry set)
	// at or after since, at most limit of them (the most recent first).
	ChangedSince(ctx context.Context, since time.Time, limit int) ([]string, error)
}
