package keyadmin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/mcpauth/internal/notifyqueue"
	"github.com/mcpauth/mcpauth/mcpauth/notify"
	"github.com/mcpauth/mcpauth/scope"
	"github.com/mcpauth/mcpauth/store"
)

// Defaults for Options.
const (
	DefaultMaxActiveKeys    = 25
	DefaultKeyLifetime      = 90 * 24 * time.Hour
	DefaultMaxRotationGrace = 7 * 24 * time.Hour
	maxNameLen              = 200
	maxScopesPerKey         = 64
	maxMetadataEntries      = 32
	maxCIDRsPerKey          = 32
)

// Errors from Manager. Validation failures are *ValidationError values,
// which also match ErrInvalidInput.
var (
	ErrInvalidInput    = errors.New("mcpauth: invalid input")
	ErrTooManyKeys     = errors.New("mcpauth: too many active keys")
	ErrScopeNotAllowed = errors.New("mcpauth: scope not allowed for this user")
	ErrKeyNotFound     = fmt.Errorf("mcpauth: key not found: %w", store.ErrNotFound)
	ErrNotSupported    = errors.New("mcpauth: the key store does not support this operation")
)

// ValidationError names the field of a request that is wrong.
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string { return "mcpauth: invalid " + e.Field + ": " + e.Message }

// Is makes a ValidationError match ErrInvalidInput.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalidInput }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Options configures a Manager. A nil *Options means defaults.
type Options struct {
	// Prefix is the key prefix, as the Guard's Options.Prefix. Default "mcp".
	Prefix string
	// Peppers are the server-side secrets new keys are hashed with (the
	// first is current), as the Guard's Options.Peppers: give both the same
	// list, or the Guard cannot verify the keys this Manager issues. Default
	// none: plain SHA-256.
	Peppers []apikey.Pepper
	// OnChange is called with a key's ID after this Manager stored a change
	// to it (created, rotated, revoked, imported). Set it to the Guard's
	// Forget, so that the Guard in this process drops its cached record at
	// once. Default none.
	OnChange func(keyID string)
	// Changes, if set, is told about every key change this Manager stores,
	// after it committed (store.Change{KeyID: ...}), so that the Guard of
	// every instance subscribed to the same channel drops the key at once:
	// give it the feed of mcpauth.Options.Changes (PostgreSQL LISTEN/NOTIFY
	// or Redis pub/sub). The call waits for the publish (one round trip); a
	// failed publish is logged at Warn and the change still stands: Guards
	// then see it at their next poll (mcpauth.Options.RevocationPollInterval,
	// 1s by default). Without it, that poll is how other instances learn of
	// changes. Default none.
	Changes store.ChangePublisher
	// Instance names this process in the audit events of key changes
	// (audit.Event.Instance); give the Guard's Options.Instance the same
	// name. Default audit.DefaultInstance(): host name and process ID.
	Instance string
	// Actor names who makes the changes (audit.Event.Actor) when the
	// context does not say (see WithActor; the keys API names the signed-in
	// user, "user:<id>"). Default "host".
	Actor string
	// Rand is the source of key randomness. Default crypto/rand.
	Rand io.Reader
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives operational messages (a failed audit record, a failed
	// notification). Never raw keys. Default slog.Default().
	Logger *slog.Logger

	// MaxActiveKeys bounds the active (not revoked, not expired) keys one
	// user may hold. Default 25; negative means no bound. The bound is exact
	// within one process; two processes racing may exceed it by one each.
	// An old key in its rotation grace period is active and counts: Rotate
	// with a grace period needs a free slot for the new key (ErrTooManyKeys
	// otherwise), while Rotate with grace 0 replaces the old key and is
	// allowed at the bound. The bound is only enforced with a store that is
	// a store.KeyLister (the memory and SQL stores are).
	MaxActiveKeys int
	// DefaultLifetime applies when CreateOptions.ExpiresIn is 0. Default 90
	// days (the seed's); negative means keys never expire by default.
	DefaultLifetime time.Duration
	// MaxLifetime bounds every key's lifetime. Default none.
	MaxLifetime time.Duration
	// MaxRotationGrace bounds the grace period of Rotate: a longer grace
	// is refused (a *ValidationError on "grace"), so that a rotated-away key
	// cannot be kept alive indefinitely. Default DefaultMaxRotationGrace (7
	// days); negative is an error from New.
	MaxRotationGrace time.Duration
	// AllowedScopes, if set, is the list of scopes keys may carry at all;
	// others are rejected as unknown. Default any well-formed scope. It is a
	// vocabulary, not a grant: privileged scopes also need a ScopeCeiling
	// that contains them.
	AllowedScopes []string
	// ScopeCeiling, if set, returns the scopes a user may grant: a key may
	// not carry a scope beyond it (a member cannot mint an admin key). The
	// check follows the scope package's hierarchy (admin covers all,
	// documents:* covers documents:read); an empty ceiling allows no scope
	// and an error refuses the request. FixedScopeCeiling gives every user
	// the same ceiling.
	//
	// Default (nil): least privilege. Any well-formed scope except the
	// privileged ones, which grant more than one named permission: "admin",
	// the wildcard "*" and resource wildcards such as "documents:*".
	// Plain actions ("read") and qualified ones ("documents:read") are
	// allowed. To issue privileged keys, configure a ceiling that contains
	// them, for the users who may hold them.
	//
	// Create, ImportLegacy and Rotate all apply the ceiling as it is at the
	// time of the call: a key whose scopes are no longer within it cannot be
	// rotated (ErrScopeNotAllowed; the old key is left unchanged); revoke it
	// and create one within the ceiling instead.
	ScopeCeiling func(ctx context.Context, userID string) ([]string, error)
	// Notifier hears about created, rotated, revoked and expiring keys, on
	// the Manager's background notification goroutine (a slow Notifier
	// never holds a Manager call); Close delivers what is queued. Give the
	// Guard the same Notifier (its Options.Notifier hears key.new_ip) and it
	// hears every kind. Default none.
	Notifier notify.Notifier
	// Audit records key lifecycle events (Action created, rotated,
	// revoked; an imported legacy key is created with the attribute
	// mcpauth.key.legacy), with the key ID and owner, the actor and the
	// instance and, through Handler, the client address, user agent and
	// request ID; never key material. Give it the
	// Guard's Options.Audit so that key changes and requests are one trail.
	// Default none.
	Audit audit.Sink
}

// Manager issues, lists, rotates and revokes keys: the host's
// key-management code (its settings pages, admin tools, the mcpauth CLI)
// uses it; the request path (mcpauth.Guard) never does. Create it with New,
// one per process and store, and Close it on shutdown. It is safe for
// concurrent use.
type Manager struct {
	keys   store.KeyStore
	hasher *apikey.Hasher
	notes  *notifyqueue.Queue
	opts   Options

	// locks serialise the key changes of one user (the active-key count
	// is read, then a key written), so that MaxActiveKeys is exact within
	// the process.
	seed  maphash.Seed
	locks [64]sync.Mutex
}

// New returns a Manager over keys. opts may be nil. It fails if an option
// is invalid (a bad prefix, a short pepper, a negative limit, an
// unparsable AllowedScopes entry).
func New(keys store.KeyStore, opts *Options) (*Manager, error) {
	if keys == nil {
		return nil, errors.New("mcpauth: keyadmin.New needs a KeyStore")
	}
	var o Options
	if opts != nil {
		o = *opts
		o.Peppers = slices.Clone(opts.Peppers)
	}
	if o.Prefix == "" {
		o.Prefix = apikey.DefaultPrefix
	}
	if err := apikey.CheckPrefix(o.Prefix); err != nil {
		return nil, fmt.Errorf("mcpauth: keyadmin.Options.Prefix: %w", err)
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.OnChange == nil {
		o.OnChange = func(string) {}
	}
	if o.Instance == "" {
		o.Instance = audit.DefaultInstance()
	}
	if o.Actor == "" {
		o.Actor = "host"
	}
	if o.MaxActiveKeys == 0 {
		o.MaxActiveKeys = DefaultMaxActiveKeys
	}
	if o.DefaultLifetime == 0 {
		o.DefaultLifetime = DefaultKeyLifetime
	}
	if o.MaxLifetime < 0 {
		return nil, errors.New("mcpauth: negative MaxLifetime")
	}
	switch {
	case o.MaxRotationGrace < 0:
		return nil, errors.New("mcpauth: negative MaxRotationGrace")
	case o.MaxRotationGrace == 0:
		o.MaxRotationGrace = DefaultMaxRotationGrace
	}
	if o.MaxLifetime > 0 && o.DefaultLifetime > o.MaxLifetime {
		o.DefaultLifetime = o.MaxLifetime
	}
	for _, s := range o.AllowedScopes {
		if err := validScope(s); err != nil {
			return nil, fmt.Errorf("mcpauth: AllowedScopes: %q: %w", s, err)
		}
	}
	o.AllowedScopes = slices.Clone(o.AllowedScopes)
	h, err := apikey.NewHasher(o.Peppers)
	if err != nil {
		return nil, err
	}
	return &Manager{keys: keys, hasher: h, notes: notifyqueue.New(o.Logger), opts: o, seed: maphash.MakeSeed()}, nil
}

// Close delivers the queued notifications (or gives up when ctx ends) and
// stops the notification goroutine. Key changes after Close still work;
// their notifications are dropped.
func (m *Manager) Close(ctx context.Context) error { return m.notes.Close(ctx) }

// CreateOptions describes a new key.
type CreateOptions struct {
	// Name is the user's label for the key, at most 200 characters.
	Name string
	// Scopes the key grants. Default none: the key authenticates but passes
	// no scope check.
	Scopes []string
	// ExpiresIn is the key's lifetime from now. 0 means
	// Options.DefaultLifetime; it may not exceed MaxLifetime.
	ExpiresIn time.Duration
	// RateLimit overrides the rate policy for this key (requests per
	// minute); 0 = policy. It is the host's to set: Handler refuses it
	// from users unless HandlerOptions.UnsafeUserRateLimit.
	RateLimit int
	// Metadata is free-form host data stored with the key. Handler
	// accepts from users only the keys in HandlerOptions.UserMetadataKeys.
	Metadata map[string]string
	// AllowedCIDRs restricts the client addresses the key works from
	// ("203.0.113.0/24", "2001:db8::/32", or single addresses).
	AllowedCIDRs []string
}

// CreatedKey is a new key: Raw is the only copy of the secret key and is
// never stored; show it to the user once.
type CreatedKey struct {
	Raw string
	Key store.Key
}

// String hides the raw key, so that printing a CreatedKey by mistake does
// not leak it.
func (c CreatedKey) String() string { return "keyadmin.CreatedKey{ID:" + c.Key.ID + "}" }

// GoString hides the raw key from %#v.
func (c CreatedKey) GoString() string { return c.String() }

// KeyInfo is what a user may see of a key: never its hash or secret.
type KeyInfo struct {
	ID           string            `json:"id"`
	UserID       string            `json:"user_id"`
	Name         string            `json:"name"`
	Scopes       []string          `json:"scopes"`
	Status       store.Status      `json:"status"`
	CreatedAt    time.Time         `json:"created_at"`
	ExpiresAt    time.Time         `json:"expires_at,omitzero"`
	RevokedAt    time.Time         `json:"revoked_at,omitzero"`
	LastUsedAt   time.Time         `json:"last_used_at,omitzero"`
	RateLimit    int               `json:"rate_limit,omitempty"`
	AllowedCIDRs []string          `json:"allowed_cidrs,omitempty"`
	Metadata     map[string]string `json:"metadata,omitempty"`
}

// NewKeyResponse is the JSON of a new key, the same from the keys API
// (create and rotate) and the CLI's --json: the raw key (shown this once),
// its record and, for a rotation, the old key's record with its new expiry.
type NewKeyResponse struct {
	RawKey string   `json:"raw_key"`
	Key    KeyInfo  `json:"key"`
	OldKey *KeyInfo `json:"old_key,omitempty"`
}

// infoTime is a KeyInfo time: UTC, to the microsecond (what SQL stores
// keep), so that a key reads the same whether just created or listed.
func infoTime(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Microsecond)
}

func infoOf(k store.Key, now time.Time) KeyInfo {
	scopes := k.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	return KeyInfo{
		ID: k.ID, UserID: k.UserID, Name: k.Name, Scopes: scopes, Status: k.StatusAt(now),
		CreatedAt: infoTime(k.CreatedAt), ExpiresAt: infoTime(k.ExpiresAt), RevokedAt: infoTime(k.RevokedAt), LastUsedAt: infoTime(k.LastUsedAt),
		RateLimit: k.RateLimit, AllowedCIDRs: k.AllowedCIDRs, Metadata: k.Metadata,
	}
}

func (m *Manager) lockUser(userID string) func() {
	mu := &m.locks[maphash.String(m.seed, userID)%uint64(len(m.locks))]
	mu.Lock()
	return mu.Unlock
}

// validate checks a create request and returns the normalised key lifetime.
func (m *Manager) validate(ctx context.Context, userID string, o *CreateOptions) (time.Duration, error) {
	switch {
	case strings.TrimSpace(userID) == "":
		return 0, invalid("user_id", "must not be empty")
	case len(o.Name) > maxNameLen:
		return 0, invalid("name", "longer than %d characters", maxNameLen)
	case len(o.Scopes) > maxScopesPerKey:
		return 0, invalid("scopes", "more than %d scopes", maxScopesPerKey)
	case len(o.Metadata) > maxMetadataEntries:
		return 0, invalid("metadata", "more than %d entries", maxMetadataEntries)
	case len(o.AllowedCIDRs) > maxCIDRsPerKey:
		return 0, invalid("allowed_cidrs", "more than %d entries", maxCIDRsPerKey)
	case o.RateLimit < 0:
		return 0, invalid("rate_limit", "must not be negative")
	case o.ExpiresIn < 0:
		return 0, invalid("expires_in", "must not be negative")
	}
	for i, c := range o.AllowedCIDRs {
		if _, err := store.ParseCIDR(c); err != nil {
			return 0, invalid(fmt.Sprintf("allowed_cidrs[%d]", i), "%q is not an IP address or CIDR prefix", c)
		}
	}
	life := o.ExpiresIn
	if life == 0 && m.opts.DefaultLifetime > 0 {
		life = m.opts.DefaultLifetime
	}
	if m.opts.MaxLifetime > 0 && (life == 0 || life > m.opts.MaxLifetime) {
		return 0, invalid("expires_in", "exceeds the maximum key lifetime of %s", m.opts.MaxLifetime)
	}
	if err := m.checkScopes(ctx, userID, o.Scopes); err != nil {
		return 0, err
	}
	return life, nil
}

// checkScopes checks scopes against the grammar, AllowedScopes and the
// user's current ceiling (Options.ScopeCeiling, or the default that
// refuses privileged scopes).
func (m *Manager) checkScopes(ctx context.Context, userID string, scopes []string) error {
	for i, s := range scopes {
		if err := validScope(s); err != nil {
			return invalid(fmt.Sprintf("scopes[%d]", i), "%v", err)
		}
		if len(m.opts.AllowedScopes) > 0 && !slices.Contains(m.opts.AllowedScopes, s) {
			return invalid(fmt.Sprintf("scopes[%d]", i), "unknown scope %q", s)
		}
	}
	if len(scopes) == 0 {
		return nil
	}
	if m.opts.ScopeCeiling == nil {
		for _, s := range scopes {
			if privilegedScope(s) {
				return fmt.Errorf("%w: %s (admin and wildcard scopes need a ScopeCeiling that contains them)", ErrScopeNotAllowed, s)
			}
		}
		return nil
	}
	ceiling, err := m.opts.ScopeCeiling(ctx, userID)
	if err != nil {
		return fmt.Errorf("mcpauth: scope ceiling for user: %w", err)
	}
	for _, s := range scopes {
		if !scopeCovers(ceiling, s) {
			return fmt.Errorf("%w: %s", ErrScopeNotAllowed, s)
		}
	}
	return nil
}

// privilegedScope reports whether s grants more than one named
// permission: "admin", "*" or a resource wildcard ("documents:*").
func privilegedScope(s string) bool {
	sc, err := scope.Parse(s)
	if err != nil {
		return true // unparsable: never issued anyway
	}
	return sc == scope.Admin || sc == scope.All || sc.Action() == "*"
}

// FixedScopeCeiling returns a Options.ScopeCeiling that gives every
// user the same ceiling, for hosts without roles and for operator tools:
// FixedScopeCeiling("admin") allows every scope, FixedScopeCeiling("read",
// "documents:*") allows those and what they cover.
func FixedScopeCeiling(scopes ...string) func(ctx context.Context, userID string) ([]string, error) {
	scopes = slices.Clone(scopes)
	return func(context.Context, string) ([]string, error) { return scopes, nil }
}

// Create issues a key for userID. The raw key is in the result and nowhere
// else: the store keeps its hash. It fails with a *ValidationError for bad
// input, ErrTooManyKeys at the active-key bound, ErrScopeNotAllowed beyond
// the user's ceiling.
func (m *Manager) Create(ctx context.Context, userID string, o CreateOptions) (CreatedKey, error) {
	life, err := m.validate(ctx, userID, &o)
	if err != nil {
		return CreatedKey{}, err
	}
	unlock := m.lockUser(userID)
	defer unlock()
	if err := m.checkActiveLimit(ctx, userID); err != nil {
		return CreatedKey{}, err
	}
	k, err := m.insert(ctx, userID, o, life)
	if err != nil {
		return CreatedKey{}, err
	}
	m.notify(ctx, notify.Notification{Type: notify.KeyCreated, At: k.Key.CreatedAt, UserID: userID, KeyID: k.Key.ID, KeyName: o.Name, ExpiresAt: k.Key.ExpiresAt})
	return k, nil
}

func (m *Manager) checkActiveLimit(ctx context.Context, userID string) error {
	if m.opts.MaxActiveKeys < 0 {
		return nil
	}
	lister, ok := m.keys.(store.KeyLister)
	if !ok {
		return nil // cannot count; documented on MaxActiveKeys
	}
	keys, err := lister.ListKeys(ctx, userID)
	if err != nil {
		return fmt.Errorf("mcpauth: count keys: %w", err)
	}
	now := m.opts.Now()
	active := 0
	for i := range keys {
		if keys[i].StatusAt(now) == store.StatusActive {
			active++
		}
	}
	if active >= m.opts.MaxActiveKeys {
		return fmt.Errorf("%w: user has %d of %d", ErrTooManyKeys, active, m.opts.MaxActiveKeys)
	}
	return nil
}

func (m *Manager) insert(ctx context.Context, userID string, o CreateOptions, life time.Duration) (CreatedKey, error) {
	now := m.opts.Now()
	for attempt := 0; ; attempt++ {
		raw, pk, err := apikey.Generate(m.opts.Rand, m.opts.Prefix)
		if err != nil {
			return CreatedKey{}, err
		}
		sum, version := m.hasher.Hash(pk.Material())
		k := store.Key{
			ID:            pk.ID,
			UserID:        userID,
			Name:          o.Name,
			Hash:          sum[:],
			PepperVersion: version,
			Scopes:        append([]string{}, o.Scopes...),
			CreatedAt:     now,
			RateLimit:     o.RateLimit,
			AllowedCIDRs:  slices.Clone(o.AllowedCIDRs),
			Metadata:      o.Metadata,
		}
		if life > 0 {
			k.ExpiresAt = now.Add(life)
		}
		err = m.keys.CreateKey(ctx, k)
		if errors.Is(err, store.ErrDuplicate) && attempt < 3 {
			continue // a 71-bit ID collided; draw again
		}
		if err != nil {
			return CreatedKey{}, fmt.Errorf("mcpauth: create key: %w", err)
		}
		m.changed(ctx, k.ID) // drops a negative cache entry for this ID too
		return CreatedKey{Raw: raw, Key: k}, nil
	}
}

// Get returns a key's information. It returns ErrKeyNotFound for an unknown ID.
func (m *Manager) Get(ctx context.Context, keyID string) (KeyInfo, error) {
	k, err := m.keys.LookupKey(ctx, keyID)
	if errors.Is(err, store.ErrNotFound) {
		return KeyInfo{}, ErrKeyNotFound
	}
	if err != nil {
		return KeyInfo{}, fmt.Errorf("mcpauth: get key: %w", err)
	}
	return infoOf(k, m.opts.Now()), nil
}

// List returns a user's keys, oldest first, revoked and expired ones
// included (Status says which). It needs a store.KeyLister.
func (m *Manager) List(ctx context.Context, userID string) ([]KeyInfo, error) {
	lister, ok := m.keys.(store.KeyLister)
	if !ok {
		return nil, ErrNotSupported
	}
	keys, err := lister.ListKeys(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("mcpauth: list keys: %w", err)
	}
	now := m.opts.Now()
	out := make([]KeyInfo, len(keys))
	for i := range keys {
		out[i] = infoOf(keys[i], now)
	}
	return out, nil
}

// Revoke revokes a key now. The bound Guard (OnChange) stops accepting it
// at once; Guards listening on the change channel (Options.Changes) within
// its delivery time (milliseconds; docs/distributed.md); other processes on
// a store that lists changes (the SQL store) within their
// Options.RevocationPollInterval (1s by default), others within their
// CacheTTL (30s by default). Revoking a revoked key is not an error.
func (m *Manager) Revoke(ctx context.Context, keyID string) error {
	k, err := m.keys.LookupKey(ctx, keyID)
	if errors.Is(err, store.ErrNotFound) {
		return ErrKeyNotFound
	}
	if err != nil {
		return fmt.Errorf("mcpauth: revoke key: %w", err)
	}
	now := m.opts.Now()
	if err := m.keys.RevokeKey(ctx, keyID, now); err != nil {
		return fmt.Errorf("mcpauth: revoke key: %w", err)
	}
	m.changed(ctx, keyID)
	if k.RevokedAt.IsZero() {
		m.notify(ctx, notify.Notification{Type: notify.KeyRevoked, At: now, UserID: k.UserID, KeyID: k.ID, KeyName: k.Name})
	}
	return nil
}

// RevokeAllForUser revokes every active key of a user (account compromise)
// and returns how many it revoked.
func (m *Manager) RevokeAllForUser(ctx context.Context, userID string) (int, error) {
	keys, err := m.List(ctx, userID)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, k := range keys {
		if k.Status != store.StatusActive {
			continue
		}
		if err := m.Revoke(ctx, k.ID); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// Rotate issues a new key with the old key's settings (user, name, scopes,
// metadata, limits, and the same lifetime from now) and keeps the old key
// working until grace has passed (0 means revoke it now), never past its own
// expiry. The new key exists before the old one is shortened, so there is
// no moment when neither works. It needs a store.KeyUpdater when grace > 0.
//
// Rotation applies today's limits, not those the old key was issued under:
//   - the scopes must be within AllowedScopes and the user's current
//     ScopeCeiling (default: no privileged scopes); otherwise it fails with
//     ErrScopeNotAllowed (or a *ValidationError for an unknown scope) and
//     nothing changes: rotation never silently narrows a key;
//   - the new key's lifetime is capped by MaxLifetime (a key that never
//     expired gets DefaultLifetime, capped likewise);
//   - grace may not exceed MaxRotationGrace (a *ValidationError on "grace");
//   - with grace > 0 the old key stays active, so the user needs a free
//     slot under MaxActiveKeys (ErrTooManyKeys otherwise); with grace 0 the
//     new key replaces the old one and the count does not grow.
func (m *Manager) Rotate(ctx context.Context, keyID string, grace time.Duration) (CreatedKey, error) {
	switch {
	case grace < 0:
		return CreatedKey{}, invalid("grace", "must not be negative")
	case grace > m.opts.MaxRotationGrace:
		return CreatedKey{}, invalid("grace", "exceeds the maximum grace period of %s", m.opts.MaxRotationGrace)
	}
	old, err := m.lookupForRotate(ctx, keyID)
	if err != nil {
		return CreatedKey{}, err
	}
	updater, ok := m.keys.(store.KeyUpdater)
	if grace > 0 && !ok {
		return CreatedKey{}, ErrNotSupported
	}
	if err := m.checkScopes(ctx, old.UserID, old.Scopes); err != nil {
		return CreatedKey{}, err
	}
	life := m.opts.DefaultLifetime
	if !old.ExpiresAt.IsZero() {
		life = old.ExpiresAt.Sub(old.CreatedAt)
	} else if life < 0 {
		life = 0
	}
	if m.opts.MaxLifetime > 0 && (life <= 0 || life > m.opts.MaxLifetime) {
		life = m.opts.MaxLifetime
	}
	unlock := m.lockUser(old.UserID)
	defer unlock()
	// Again under the user's lock: a concurrent rotation or revocation of the
	// same key must not yield two successors.
	if old, err = m.lookupForRotate(ctx, keyID); err != nil {
		return CreatedKey{}, err
	}
	if grace > 0 {
		if err := m.checkActiveLimit(ctx, old.UserID); err != nil {
			return CreatedKey{}, err
		}
	}
	now := m.opts.Now()
	fresh, err := m.insert(ctx, old.UserID, CreateOptions{
		Name: old.Name, Scopes: old.Scopes, RateLimit: old.RateLimit,
		Metadata: old.Metadata, AllowedCIDRs: old.AllowedCIDRs,
	}, life)
	if err != nil {
		return CreatedKey{}, err
	}
	end := now.Add(grace)
	if grace == 0 {
		err = m.keys.RevokeKey(ctx, old.ID, now)
	} else if old.ExpiresAt.IsZero() || end.Before(old.ExpiresAt) {
		err = updater.SetExpiry(ctx, old.ID, end)
	} else {
		end = old.ExpiresAt
	}
	if err != nil {
		return fresh, fmt.Errorf("mcpauth: rotate key: new key %s issued, but ending the old one failed: %w", fresh.Key.ID, err)
	}
	m.changed(ctx, old.ID)
	m.notify(ctx, notify.Notification{Type: notify.KeyRotated, At: now, UserID: old.UserID, KeyID: old.ID, KeyName: old.Name, NewKeyID: fresh.Key.ID, ExpiresAt: end})
	return fresh, nil
}

// lookupForRotate returns the key if it exists and is active.
func (m *Manager) lookupForRotate(ctx context.Context, keyID string) (store.Key, error) {
	k, err := m.keys.LookupKey(ctx, keyID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Key{}, ErrKeyNotFound
	}
	if err != nil {
		return store.Key{}, fmt.Errorf("mcpauth: rotate key: %w", err)
	}
	if st := k.StatusAt(m.opts.Now()); st != store.StatusActive {
		return store.Key{}, invalid("id", "key is %s and cannot be rotated", st)
	}
	return k, nil
}

// ImportLegacy stores a key that a hand-rolled setup kept as the hex SHA-256
// of the whole raw key (the seed's scheme), so that agents configured with
// it keep working after the switch. The Guard accepts such keys only with
// Options.AcceptLegacyKeys. The legacy raw key itself is never needed.
func (m *Manager) ImportLegacy(ctx context.Context, userID, sha256Hex string, o CreateOptions) (KeyInfo, error) {
	sum, err := hex.DecodeString(strings.TrimSpace(sha256Hex))
	if err != nil || len(sum) != sha256.Size {
		return KeyInfo{}, invalid("hash", "want 64 hex digits of SHA-256")
	}
	life, err := m.validate(ctx, userID, &o)
	if err != nil {
		return KeyInfo{}, err
	}
	now := m.opts.Now()
	k := store.Key{
		ID: apikey.LegacyKeyID(sum), UserID: userID, Name: o.Name, Hash: sum, PepperVersion: apikey.LegacyPepperVersion,
		Scopes: append([]string{}, o.Scopes...), CreatedAt: now, RateLimit: o.RateLimit,
		AllowedCIDRs: o.AllowedCIDRs, Metadata: o.Metadata,
	}
	if life > 0 {
		k.ExpiresAt = now.Add(life)
	}
	if err := m.keys.CreateKey(ctx, k); err != nil {
		return KeyInfo{}, fmt.Errorf("mcpauth: import legacy key: %w", err)
	}
	m.changed(ctx, k.ID)
	m.audit(ctx, audit.ActionCreated, now, k.UserID, k.ID, map[string]string{"mcpauth.key.legacy": "true"})
	return infoOf(k, now), nil
}

// changed tells this process's Guard (OnChange) and every instance
// (Changes) that a key's record changed.
func (m *Manager) changed(ctx context.Context, keyID string) {
	m.opts.OnChange(keyID)
	if m.opts.Changes == nil {
		return
	}
	if err := m.opts.Changes.PublishChange(context.WithoutCancel(ctx), store.Change{KeyID: keyID}); err != nil {
		m.opts.Logger.LogAttrs(ctx, slog.LevelWarn, "mcpauth: publishing a key change failed; other instances see it at their next poll",
			slog.String("key_id", keyID), slog.String("error", err.Error()))
	}
}

// notify tells the Notifier and the audit sink about a lifecycle change.
func (m *Manager) notify(ctx context.Context, n notify.Notification) {
	action := map[notify.Type]audit.Action{notify.KeyCreated: audit.ActionCreated, notify.KeyRotated: audit.ActionRotated, notify.KeyRevoked: audit.ActionRevoked}[n.Type]
	var attrs map[string]string
	if n.NewKeyID != "" {
		attrs = map[string]string{"mcpauth.key.new_id": n.NewKeyID}
	}
	m.audit(ctx, action, n.At, n.UserID, n.KeyID, attrs)
	if m.opts.Notifier != nil {
		m.notes.Send(m.opts.Notifier, n)
	}
}

// audit records a key change, with the actor and the HTTP request behind
// it when the context has them.
func (m *Manager) audit(ctx context.Context, action audit.Action, at time.Time, userID, keyID string, attrs map[string]string) {
	if m.opts.Audit == nil {
		return
	}
	ev := audit.Event{Time: at, UserID: userID, KeyID: keyID, Action: action, Outcome: audit.OutcomeAllowed,
		Attributes: attrs, Instance: m.opts.Instance, Actor: m.opts.Actor}
	if a, ok := ctx.Value(actorKey{}).(string); ok {
		ev.Actor = a
	}
	if c, ok := ctx.Value(changeRequestKey{}).(*changeRequest); ok {
		ev.ClientIP, ev.UserAgent, ev.RequestID = c.ip, c.userAgent, c.requestID
		if c.actor != "" {
			ev.Actor = c.actor
		}
	}
	if err := m.opts.Audit.Record(context.WithoutCancel(ctx), ev); err != nil {
		m.opts.Logger.LogAttrs(ctx, slog.LevelWarn, "mcpauth: audit of key change failed",
			slog.String("key_id", keyID), slog.String("error", err.Error()))
	}
}

// changeRequest is what the keys API knows of the HTTP request behind a key
// change, for its audit event: the client, and, once the handler found the
// signed-in user, the actor ("user:<id>").
type changeRequest struct{ ip, userAgent, requestID, actor string }

type changeRequestKey struct{}

type actorKey struct{}

// WithActor returns a context whose key changes are audited with actor as
// audit.Event.Actor ("admin:alice", "job:expiry-sweeper"); it overrides
// Options.Actor. It must not hold secrets. The keys API sets its own
// ("user:<id>").
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// maxExpiringPerCall bounds one NotifyExpiring call.
const maxExpiringPerCall = 10_000

// NotifyExpiring sends key.expiring_soon for every active key whose expiry
// falls in [from, to), and returns how many. Call it on a schedule with
// consecutive windows so that each key is announced once, for example every
// hour:
//
//	lead := 7 * 24 * time.Hour
//	n, err := mgr.NotifyExpiring(ctx, lastRun.Add(lead), now.Add(lead))
//
// It needs a store.ExpiringLister (the memory and SQL stores are) and a
// Notifier; at most 10,000 keys per call.
func (m *Manager) NotifyExpiring(ctx context.Context, from, to time.Time) (int, error) {
	el, ok := m.keys.(store.ExpiringLister)
	if !ok {
		return 0, ErrNotSupported
	}
	if m.opts.Notifier == nil {
		return 0, errors.New("mcpauth: NotifyExpiring needs Options.Notifier")
	}
	keys, err := el.ListExpiring(ctx, from, to, maxExpiringPerCall)
	if err != nil {
		return 0, fmt.Errorf("mcpauth: list expiring keys: %w", err)
	}
	now := m.opts.Now()
	for _, k := range keys {
		m.notes.Send(m.opts.Notifier, notify.Notification{Type: notify.KeyExpiringSoon, At: now, UserID: k.UserID, KeyID: k.ID, KeyName: k.Name, ExpiresAt: k.ExpiresAt})
	}
	return len(keys), nil
}
