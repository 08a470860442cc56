package sqlstore

import (
	"context"
	"time"

	"github.com/mcpauth/mcpauth/store"
)

// RecordAddress implements store.AddressRecorder with one statement:
// INSERT ... SELECT ... WHERE (the key has fewer than
// store.MaxAddressesPerKey addresses) ON CONFLICT (key_id, address) DO
// NOTHING; a row inserted means the address is new. Racing callers on one
// address get exactly one isNew. On PostgreSQL the bound may be overshot by
// the number of instances recording different new addresses of one key at
// the same instant (each counts before the others commit); SQLite writes one
// at a time, so it is exact there. The key ID is not checked against the
// key table (there is no foreign key): the Guard records only keys that
// just authenticated.
func (s *Store) RecordAddress(ctx context.Context, keyID, addr string, at time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, s.q.recordAddress, keyID, addr, s.timeArg(at), int64(store.MaxAddressesPerKey))
	if err != nil {
		return false, fail(ctx, "record address", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fail(ctx, "record address", err)
	}
	return n == 1, nil
}
