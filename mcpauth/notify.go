package mcpauth

import (
	"context"
	"time"
)

// NotificationType says what happened to a key.
type NotificationType string

// Notification types.
const (
	KeyCreated      NotificationType = "key.created"
	KeyRotated      NotificationType = "key.rotated"
	KeyRevoked      NotificationType = "key.revoked"
	KeyExpiringSoon NotificationType = "key.expiring_soon"
	KeyNewIP        NotificationType = "key.new_ip"
)

// Notification tells the host something a key's owner may want to hear
// about (the email the seed sends). It never carries key material.
type Notification struct {
	Type    NotificationType `json:"type"`
	At      time.Time        `json:"at"`
	UserID  string           `json:"user_id"`
	KeyID   string           `json:"key_id"`
	KeyName string           `json:"key_name,omitempty"`
	// NewKeyID is the replacement key of a rotation.
	NewKeyID string `json:"new_key_id,omitempty"`
	// ExpiresAt is the key's expiry (for expiring_soon, and a rotated key's
	// end of grace).
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// IP is the client address of a key.new_ip notification.
	IP string `json:"ip,omitempty"`
}

// Notifier receives key notifications: from the Manager after a change is
// stored, and from the Guard for key.new_ip. Calls are made one at a time on
// the Guard's background goroutine, never on the request path nor inside a
// Manager call; an error is logged and never undoes the change. Up to 1024
// notifications wait in memory; past that, new ones are dropped and logged.
// Guard.Close delivers the queued ones.
type Notifier interface {
	Notify(ctx context.Context, n Notification) error
}

// NotifierFunc adapts a function to Notifier.
type NotifierFunc func(ctx context.Context, n Notification) error

// Notify implements Notifier.
func (f NotifierFunc) Notify(ctx context.Context, n Notification) error { return f(ctx, n) }
