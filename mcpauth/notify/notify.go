// Package notify is the vocabulary of key notifications (the emails the
// seed sends: a key was created, rotated, revoked, is about to expire, or
// was used from a new address) and the Notifier interface that hears them.
// The Guard (package mcpauth) sends key.new_ip; the key manager (package
// keyadmin) sends the rest. Give both the same Notifier and it hears every
// type. Package webhook delivers them over HTTP.
package notify

import (
	"context"
	"time"
)

// Type says what happened to a key.
type Type string

// Notification types.
const (
	KeyCreated      Type = "key.created"
	KeyRotated      Type = "key.rotated"
	KeyRevoked      Type = "key.revoked"
	KeyExpiringSoon Type = "key.expiring_soon"
	KeyNewIP        Type = "key.new_ip"
)

// Notification tells the host something a key's owner may want to hear
// about (the email the seed sends). It never carries key material.
type Notification struct {
	Type    Type      `json:"type"`
	At      time.Time `json:"at"`
	UserID  string    `json:"user_id"`
	KeyID   string    `json:"key_id"`
	KeyName string    `json:"key_name,omitempty"`
	// NewKeyID is the replacement key of a rotation.
	NewKeyID string `json:"new_key_id,omitempty"`
	// ExpiresAt is the key's expiry (for expiring_soon, and a rotated key's
	// end of grace).
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// IP is the client address of a key.new_ip notification.
	IP string `json:"ip,omitempty"`
}

// Notifier receives key notifications: from the key manager after a change
// is stored, and from the Guard for key.new_ip (once per key and address
// across restarts and instances when the KeyStore implements
// store.AddressRecorder, once per process otherwise). Each sender calls it
// one at a time on a background goroutine of its own, never on the request
// path nor inside a Manager call; an error is logged and never undoes the
// change. Up to 1024 notifications wait in memory per sender; past that, new
// ones are dropped and logged. Guard.Close and Manager.Close deliver the
// queued ones.
type Notifier interface {
	Notify(ctx context.Context, n Notification) error
}

// Func adapts a function to Notifier.
type Func func(ctx context.Context, n Notification) error

// Notify implements Notifier.
func (f Func) Notify(ctx context.Context, n Notification) error { return f(ctx, n) }
