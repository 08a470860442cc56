package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/mcpauth/mcpauth/store"
)

// LookupKey implements store.KeyStore with one SELECT by primary key.
func (s *Store) LookupKey(ctx context.Context, id string) (store.Key, error) {
	k, err := scanKey(s.db.QueryRowContext(ctx, s.q.lookup, id))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if cerr := ctx.Err(); cerr != nil {
			return store.Key{}, fail(ctx, "lookup key", cerr)
		}
		return store.Key{}, store.ErrNotFound
	case err != nil:
		return store.Key{}, fail(ctx, "lookup key", err)
	}
	return k, nil
}

// CreateKey implements store.KeyStore with one INSERT ... ON CONFLICT (id) DO
// NOTHING: when no row was inserted the ID was taken, and the result is
// store.ErrDuplicate. No driver error needs decoding, and two processes
// racing on one ID get exactly one success. A zero CreatedAt is set to
// Options.Now(). The record must have an ID, a UserID and a Hash.
func (s *Store) CreateKey(ctx context.Context, k store.Key) error {
	switch {
	case k.ID == "":
		return fmt.Errorf("%w: empty ID", ErrInvalidKey)
	case k.UserID == "":
		return fmt.Errorf("%w: empty UserID", ErrInvalidKey)
	case len(k.Hash) == 0:
		return fmt.Errorf("%w: empty Hash", ErrInvalidKey)
	}
	if k.CreatedAt.IsZero() {
		k.CreatedAt = s.now()
	}
	res, err := s.db.ExecContext(ctx, s.q.insert,
		k.ID, k.UserID, k.Name, k.Hash, int64(k.PepperVersion), encodeList(k.Scopes),
		s.timeArg(k.CreatedAt), s.timeArg(k.ExpiresAt), s.timeArg(k.RevokedAt), s.timeArg(k.LastUsedAt),
		int64(k.RateLimit), encodeList(k.AllowedCIDRs), encodeMap(k.Metadata))
	if err != nil {
		if isUniqueViolation(err) {
			return store.ErrDuplicate
		}
		return fail(ctx, "create key", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fail(ctx, "create key", err)
	}
	if n == 0 {
		return store.ErrDuplicate
	}
	return nil
}

// isUniqueViolation recognises a unique-constraint error without importing a
// driver: SQLSTATE 23505 from PostgreSQL drivers (pgx's *pgconn.PgError and
// lib/pq's *pq.Error both have SQLState). CreateKey's ON CONFLICT clause
// means it only matters for a unique index a user added to the table.
func isUniqueViolation(err error) bool {
	var st interface{ SQLState() string }
	return errors.As(err, &st) && st.SQLState() == "23505"
}

// RevokeKey implements store.KeyStore with one UPDATE that keeps an earlier
// revocation time (COALESCE). No matched row means store.ErrNotFound. A zero
// time is rejected with ErrInvalidKey, since it would mean "not revoked".
func (s *Store) RevokeKey(ctx context.Context, id string, at time.Time) error {
	if at.IsZero() {
		return fmt.Errorf("%w: zero revocation time", ErrInvalidKey)
	}
	return s.updateOne(ctx, "revoke key", s.q.revoke, id, s.timeArg(at), s.timeArg(s.changeTime(at)))
}

// changeTime is the changed_at of a change made at (the revocation time,
// or zero for "now"): the later of at and Options.Now, so that a
// revocation dated in the past still shows in ChangedSince polls.
func (s *Store) changeTime(at time.Time) time.Time {
	now := s.now()
	if at.After(now) {
		return at
	}
	return now
}

// SetExpiry implements store.KeyUpdater with one UPDATE. A zero expiresAt
// stores NULL (never expires).
func (s *Store) SetExpiry(ctx context.Context, id string, expiresAt time.Time) error {
	return s.updateOne(ctx, "set expiry", s.q.setExpiry, id, s.timeArg(expiresAt), s.timeArg(s.changeTime(time.Time{})))
}

func (s *Store) updateOne(ctx context.Context, op, query, id string, args ...any) error {
	res, err := s.db.ExecContext(ctx, query, append([]any{id}, args...)...)
	if err != nil {
		return fail(ctx, op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fail(ctx, op, err)
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// ListKeys implements store.KeyLister with one SELECT on the user_id index,
// oldest first (ties by ID).
func (s *Store) ListKeys(ctx context.Context, userID string) ([]store.Key, error) {
	rows, err := s.db.QueryContext(ctx, s.q.list, userID)
	if err != nil {
		return nil, fail(ctx, "list keys", err)
	}
	defer rows.Close()
	out := []store.Key{}
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fail(ctx, "list keys", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fail(ctx, "list keys", err)
	}
	if err := rows.Close(); err != nil {
		return nil, fail(ctx, "list keys", err)
	}
	return out, nil
}

// RevokedSince implements store.RevocationLister with one indexed query
// (the partial index on revoked_at).
func (s *Store) RevokedSince(ctx context.Context, since time.Time, limit int) ([]string, error) {
	return s.ids(ctx, "revoked since", s.q.revokedSince, since, limit)
}

// ChangedSince implements store.ChangeLister with one query on the partial
// indexes on changed_at and revoked_at: keys revoked or given a new expiry
// at or after since (by the store's clock, Options.Now, for expiry changes).
func (s *Store) ChangedSince(ctx context.Context, since time.Time, limit int) ([]string, error) {
	return s.ids(ctx, "changed since", s.q.changedSince, since, limit)
}

// ids runs a query of key IDs taking a time and a limit.
func (s *Store) ids(ctx context.Context, op, query string, since time.Time, limit int) ([]string, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.db.QueryContext(ctx, query, s.timeArg(since), int64(limit))
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fail(ctx, op, err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fail(ctx, op, err)
	}
	return ids, nil
}

// ListExpiring implements store.ExpiringLister with one indexed query (the
// partial index on expires_at).
func (s *Store) ListExpiring(ctx context.Context, from, to time.Time, limit int) ([]store.Key, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.db.QueryContext(ctx, s.q.expiring, s.timeArg(from), s.timeArg(to), int64(limit))
	if err != nil {
		return nil, fail(ctx, "list expiring keys", err)
	}
	defer rows.Close()
	var out []store.Key
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fail(ctx, "list expiring keys", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fail(ctx, "list expiring keys", err)
	}
	return out, nil
}
