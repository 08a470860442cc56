package mcpauth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"time"

	"github.com/mcpauth/mcpauth/mcpauth/accesstoken"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/ratelimit"
	"github.com/mcpauth/mcpauth/scope"
	"github.com/mcpauth/mcpauth/store"
)

// Authenticate checks the request's API key (or, with Options.OAuth, its
// OAuth access token) and returns its principal. It
// reads no body and writes nothing; it is the building block of Require for
// people writing their own transport. Errors wrap the sentinels of this
// package; store failures wrap ErrUnavailable.
func (g *Guard) Authenticate(r *http.Request) (Principal, error) {
	e, err := g.authenticate(r, &facts{})
	if err != nil {
		return Principal{}, err
	}
	return *e.principal, nil
}

// verifier checks one kind of credential: it returns the cache entry of
// what the credential stands for (the Principal, its parsed scopes, rate
// bucket and address allowlist) or an error wrapping this package's
// sentinels (ErrInvalidKey and its kinds for a bad credential, with no
// oracle; ErrUnavailable when a backend fails). For a credential that is
// valid but no longer usable (revoked, expired) it returns the entry with
// the error, so that audit can name the owner. What follows verification
// (address allowlist, user check, new-address notices, last use) is the
// same for every kind: see admit.
//
// API keys are verified by keyVerifier, OAuth access tokens (with
// Options.OAuth) by jwtVerifier and opaqueVerifier; a Guard picks the verifier by the
// credential's shape (kindOf), never by trying each in turn.
type verifier interface {
	verify(ctx context.Context, raw string, now time.Time) (*cacheEntry, error)
}

// verifierFor returns the verifier for a credential of the given kind.
func (g *Guard) verifierFor(kind accesstoken.Kind) verifier {
	switch kind {
	case accesstoken.JWT:
		return jwtVerifier{g}
	case accesstoken.Opaque:
		return opaqueVerifier{g}
	}
	return keyVerifier{g}
}

// authenticate returns the credential's cache entry, after verification
// and admission. For a credential that verified but may not be used
// (revoked, expired, wrong address, inactive user) it returns the entry
// with the error, so that audit can name the owner; otherwise a nil entry.
func (g *Guard) authenticate(r *http.Request, f *facts) (*cacheEntry, error) {
	raw, err := credential(r, g.opts.BearerOnly, g.maxCredential)
	if err != nil {
		return nil, err
	}
	f.kind = g.kindOf(raw)
	now := f.arrival(g.opts.Now)
	e, err := g.verifierFor(f.kind).verify(r.Context(), raw, now)
	if err != nil {
		return e, err
	}
	return g.admit(r, e, f, now)
}

// keyVerifier verifies mcpauth API keys: format and checksum, cache or
// store, hash, revocation, expiry.
type keyVerifier struct{ g *Guard }

func (v keyVerifier) verify(ctx context.Context, raw string, now time.Time) (*cacheEntry, error) {
	g := v.g
	// A raw key byte for byte the one that last passed the checks below
	// against its cache entry (known by its keyed digest, SECURITY.md "The
	// key cache") skips the format, checksum and hash checks, which are
	// functions of the raw key and the entry alone; revocation and expiry
	// are checked on every request. Any other key takes the full path.
	d := g.cache.digest(raw)
	if id, ok := apikey.KeyIDOf(raw, g.opts.Prefix); ok {
		if e := g.cache.get(id, now); e != nil && e.matches(d) {
			if g.opts.Metrics != nil {
				g.opts.Metrics.CacheLookup(string(kindAPIKey), true)
			}
			return e, usable(e, now)
		}
	}
	id, material := "", ""
	pk, err := apikey.ParseKey(raw, g.opts.Prefix)
	switch {
	case err == nil:
		id, material = pk.ID, pk.Material()
	case g.opts.AcceptLegacyKeys && g.legacy.accepts(raw):
		sum := sha256.Sum256([]byte(raw))
		id, material = apikey.LegacyKeyID(sum[:]), raw
	default:
		return nil, errMalformedKey
	}
	e := g.cached(g.cache, string(kindAPIKey), id, now)
	if e == nil {
		if e, err = g.load(ctx, id, now); err != nil {
			return nil, err
		}
	}
	if e.notFound {
		return nil, ErrUnknownKey
	}
	if (e.pepperVersion == apikey.LegacyPepperVersion) != (material == raw) {
		return nil, ErrUnknownKey // a legacy record only matches a legacy key, and back
	}
	if !e.matches(d) {
		ok, err := g.hasher.Verify(e.pepperVersion, material, e.hash)
		if err != nil {
			g.opts.Logger.LogAttrs(ctx, slog.LevelError, "mcpauth: cannot verify key", slog.String("key_id", id), slog.String("error", err.Error()))
			return nil, ErrUnknownKey
		}
		if !ok {
			return nil, ErrUnknownKey
		}
		e.remember(d)
	}
	return e, usable(e, now)
}

// usable refuses a verified key that is revoked or expired at now.
func usable(e *cacheEntry, now time.Time) error {
	if !e.revokedAt.IsZero() && !now.Before(e.revokedAt) {
		return ErrKeyRevoked
	}
	if exp := e.principal.ExpiresAt; !exp.IsZero() && !now.Before(exp) {
		return ErrKeyExpired
	}
	return nil
}

// admit runs the checks that follow verification, whatever the kind of
// credential: the client address allowlist, the host's user check; then,
// for a use that passed, the new-address notice and the last-used time.
func (g *Guard) admit(r *http.Request, e *cacheEntry, f *facts, now time.Time) (*cacheEntry, error) {
	ctx := r.Context()
	id := e.principal.KeyID
	var ip netip.Addr
	if len(e.allowed) > 0 || g.newIPs != nil {
		ip = f.clientIP(r, g.trusted)
		if len(e.allowed) > 0 && (!ip.IsValid() || !inPrefixes(ip, e.allowed)) {
			return e, ErrAddressNotAllowed
		}
	}
	if g.opts.Users != nil {
		active, err := g.opts.Users.UserActive(ctx, e.principal.UserID)
		if err != nil {
			g.opts.Logger.LogAttrs(ctx, slog.LevelError, "mcpauth: user check failed", slog.String("key_id", id), slog.String("error", err.Error()))
			return e, fmt.Errorf("%w: user check failed", ErrUnavailable)
		}
		if !active {
			return e, ErrUserInactive
		}
	}
	// Only a use that authenticated is news: no key.new_ip for a refusal.
	if g.newIPs != nil && ip.IsValid() {
		g.newIPs.seen(e.principal, ip, now)
	}
	if g.touches != nil {
		g.touches.use(e, id, now)
	}
	return e, nil
}

// load fetches a key from the store and caches the result, unless the key
// was forgotten while the store was asked (the answer may predate a
// revocation). When the store fails, a verified entry within StaleIfError
// of its TTL is served instead (verify still checks its expiry and
// revocation time).
func (g *Guard) load(ctx context.Context, id string, now time.Time) (*cacheEntry, error) {
	ctx, cancel := context.WithTimeout(ctx, g.opts.StoreTimeout)
	defer cancel()
	gen := g.cache.generation(id)
	k, err := g.lookupKey(ctx, id)
	g.storeHealth.observeLookup(ctx, id, err) // logs an outage once, not per request
	switch {
	case errors.Is(err, store.ErrNotFound):
		e := &cacheEntry{notFound: true, validUntil: now.Add(g.opts.NegativeCacheTTL)}
		if g.opts.NegativeCacheTTL > 0 {
			g.cache.put(id, e, gen, now)
		}
		return e, nil
	case err != nil:
		if g.opts.StaleIfError > 0 {
			if e := g.cache.staleEntry(id, now); e != nil {
				g.opts.Logger.LogAttrs(ctx, slog.LevelWarn, "mcpauth: key lookup failed; serving the cached key past CacheTTL (StaleIfError)",
					slog.String("key_id", id), slog.Time("cached_until", e.validUntil), slog.String("error", err.Error()))
				return e, nil
			}
		}
		return nil, fmt.Errorf("%w: key lookup failed", ErrUnavailable)
	}
	e := entryFor(k, now, g.opts.CacheTTL)
	e.guard = g
	if g.opts.RatePolicy != nil {
		e.bucket, e.limit = g.opts.RatePolicy.Resolve(ratelimit.Subject{
			KeyID: k.ID, UserID: k.UserID, Scopes: k.Scopes, Metadata: k.Metadata, Override: k.RateLimit,
		})
	}
	for _, c := range k.AllowedCIDRs {
		p, err := store.ParseCIDR(c)
		if err != nil {
			// A record that restricts addresses but cannot be read must not
			// become unrestricted: deny everything.
			g.opts.Logger.LogAttrs(ctx, slog.LevelError, "mcpauth: key has an unreadable allowed CIDR; denying", slog.String("key_id", id))
			p = netip.Prefix{}
		}
		e.allowed = append(e.allowed, p)
	}
	if g.opts.CacheTTL > 0 {
		g.cache.put(id, e, gen, now)
	}
	return e, nil
}

func entryFor(k store.Key, now time.Time, ttl time.Duration) *cacheEntry {
	until := now.Add(ttl)
	if !k.ExpiresAt.IsZero() && k.ExpiresAt.Before(until) {
		until = k.ExpiresAt
	}
	if !k.RevokedAt.IsZero() && k.RevokedAt.After(now) && k.RevokedAt.Before(until) {
		until = k.RevokedAt
	}
	scopes, _ := scope.ParseSet(validScopes(k.Scopes))
	return &cacheEntry{
		scopes:        scopes,
		hash:          k.Hash,
		pepperVersion: k.PepperVersion,
		revokedAt:     k.RevokedAt,
		validUntil:    until,
		principal: &Principal{
			KeyID:     k.ID,
			UserID:    k.UserID,
			KeyName:   k.Name,
			Scopes:    k.Scopes,
			ExpiresAt: k.ExpiresAt,
			Metadata:  k.Metadata,
			RateLimit: k.RateLimit,
			Kind:      string(kindAPIKey),
		},
	}
}

// validScopes returns the scopes that parse. A stored scope that does not
// (written by hand into the database) grants nothing rather than breaking
// the key.
func validScopes(in []string) []string {
	out := in
	for i, s := range in {
		if _, err := scope.Parse(s); err != nil {
			if len(out) == len(in) {
				out = slices.Clone(in[:i])
			}
			continue
		}
		if len(out) != len(in) {
			out = append(out, s)
		}
	}
	return out
}

// Forget drops a key ID from this Guard's cache, so the next request with
// it asks the store. A lookup of that ID already in flight does not put its
// (possibly older) answer back. Give it to keyadmin.Options.OnChange so that
// every change the key manager makes reaches the cache at once; call it
// yourself when a key changes through another path.
//
// Forget also ends the key's event streams (the GET requests Require is
// serving with it, including one still being authenticated): their
// handlers' contexts are cancelled. It does so whatever the change was
// (revocation, rotation, new scopes or expiry): a client reopens its stream
// and is authenticated against the key as it is now. The revocation poll
// and Options.Changes call it for every key they report.
func (g *Guard) Forget(keyID string) {
	g.cache.forget(keyID) // first: a stream opened after the next line reads the store again
	g.streams.forgetKey(keyID)
}
