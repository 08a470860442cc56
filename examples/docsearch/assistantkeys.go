package main

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mcpauth/mcpauth/mcpauth/keyadmin"
)

// The assistant's key: read-only, short-lived, renewed before it expires.
const (
	assistantScope       = scopeRead
	assistantKeyName     = "AI Assistant"
	assistantKeyLifetime = time.Hour
	// assistantKeyRenew is how long before expiry a key is replaced, so
	// that no question starts with a key about to stop working.
	assistantKeyRenew = 10 * time.Minute
	// managedMetadata marks the assistant's keys. Users cannot set metadata
	// through the keys page or API, so they cannot forge the mark.
	managedMetadata = "managed_by"
)

// assistantKeys gets or creates each user's assistant key (step 3 of the
// seed's flow).
//
// The raw key is needed on every question but must never be stored in plain
// text: mcpauth's store keeps only its hash, and this table keeps it sealed
// with AES-256-GCM under a server secret, bound to the user and key ID (the
// associated data), so a sealed key copied to another user's row does not
// open. Without the secret the table is useless to a thief; with it, a
// thief gets keys that read one user's documents each, for at most an hour.
// A secret that changed (DOCSEARCH_SECRET unset: a random one per process)
// only means the next question revokes the old key and issues a new one.
//
// Why not keep no raw key at all? The app could instead call its own MCP
// server in-process with a principal it made up; but then the assistant
// would not go through Require (no policy, no rate limit, no audit) and the
// showcase would not be the seed's flow. Why not keep keys only in memory?
// That works for one process; sealing lets several instances share a key.
//
// assistantKeys is safe for concurrent use; get is serialised so that two
// questions of one user do not create two keys.
type assistantKeys struct {
	d    *database
	mgr  *keyadmin.Manager
	aead cipher.AEAD
	now  func() time.Time
	log  *slog.Logger
	mu   sync.Mutex
}

// parseSecret decodes DOCSEARCH_SECRET: 32 bytes, base64 (standard or URL
// alphabet, padded or not). Empty means a random secret for this process.
func parseSecret(s string) ([]byte, error) {
	if s == "" {
		b := make([]byte, 32)
		_, err := rand.Read(b)
		return b, err
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != 32 {
				return nil, fmt.Errorf("DOCSEARCH_SECRET: want 32 bytes, got %d (make one with: openssl rand -base64 32)", len(b))
			}
			return b, nil
		}
	}
	return nil, errors.New("DOCSEARCH_SECRET: not base64 (make one with: openssl rand -base64 32)")
}

func newAssistantKeys(d *database, mgr *keyadmin.Manager, secret []byte, now func() time.Time, log *slog.Logger) (*assistantKeys, error) {
	block, err := aes.NewCipher(secret)
	if err != nil {
		return nil, fmt.Errorf("DOCSEARCH_SECRET: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &assistantKeys{d: d, mgr: mgr, aead: aead, now: now, log: log}, nil
}

// assistantKey is a raw key and its ID.
type assistantKey struct {
	id, raw string
}

// get returns the user's assistant key, creating one (and revoking the one
// it replaces) when there is none, it expires within assistantKeyRenew, or
// it no longer opens.
func (k *assistantKeys) get(ctx context.Context, userID string) (assistantKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var (
		keyID   string
		sealed  []byte
		expires int64
	)
	err := k.d.db.QueryRowContext(ctx, k.d.q(`SELECT key_id, sealed, expires_at FROM assistant_keys WHERE user_id = $1`), userID).
		Scan(&keyID, &sealed, &expires)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return assistantKey{}, fmt.Errorf("read assistant key: %w", err)
	case time.Unix(expires, 0).Sub(k.now()) > assistantKeyRenew:
		if raw, err := k.open(sealed, userID, keyID); err == nil {
			return assistantKey{id: keyID, raw: raw}, nil
		}
		k.log.Info("docsearch: assistant key sealed under another secret; issuing a new one", slog.String("key_id", keyID))
	}
	created, err := k.mgr.Create(ctx, userID, keyadmin.CreateOptions{
		Name:      assistantKeyName,
		Scopes:    []string{assistantScope},
		ExpiresIn: assistantKeyLifetime,
		Metadata:  map[string]string{managedMetadata: "assistant"},
	})
	if err != nil {
		return assistantKey{}, fmt.Errorf("create assistant key: %w", err)
	}
	id := created.Key.ID
	_, err = k.d.db.ExecContext(ctx, k.d.q(`INSERT INTO assistant_keys (user_id, key_id, sealed, expires_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (user_id) DO UPDATE SET key_id = excluded.key_id, sealed = excluded.sealed, expires_at = excluded.expires_at`),
		userID, id, k.seal(created.Raw, userID, id), created.Key.ExpiresAt.Unix())
	if err != nil {
		_ = k.mgr.Revoke(context.WithoutCancel(ctx), id) // never leave an unrecorded key working
		return assistantKey{}, fmt.Errorf("save assistant key: %w", err)
	}
	if keyID != "" {
		if err := k.mgr.Revoke(ctx, keyID); err != nil {
			k.log.Warn("docsearch: revoking the replaced assistant key failed; it expires on its own", slog.String("key_id", keyID))
		}
	}
	return assistantKey{id: id, raw: created.Raw}, nil
}

// drop forgets the user's assistant key if it is still keyID (the MCP
// server refused it: revoked by the user, or expired), so the next get
// issues a new one.
func (k *assistantKeys) drop(ctx context.Context, userID, keyID string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	_, err := k.d.db.ExecContext(ctx, k.d.q(`DELETE FROM assistant_keys WHERE user_id = $1 AND key_id = $2`), userID, keyID)
	if err != nil {
		return fmt.Errorf("drop assistant key: %w", err)
	}
	return k.mgr.Revoke(ctx, keyID)
}

// additionalData binds a sealed key to its user and key ID.
func additionalData(userID, keyID string) []byte {
	return []byte("docsearch assistant key\x00" + userID + "\x00" + keyID)
}

func (k *assistantKeys) seal(raw, userID, keyID string) []byte {
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(raw)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return k.aead.Seal(nonce, nonce, []byte(raw), additionalData(userID, keyID))
}

func (k *assistantKeys) open(sealed []byte, userID, keyID string) (string, error) {
	n := k.aead.NonceSize()
	if len(sealed) < n {
		return "", errors.New("sealed key too short")
	}
	raw, err := k.aead.Open(nil, sealed[:n], sealed[n:], additionalData(userID, keyID))
	return string(raw), err
}
