package sqlstore

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/mcpauth/mcpauth/store"
)

// timeArg encodes a timestamp for the dialect: NULL for the zero time,
// otherwise UTC truncated to the microsecond, as a time.Time for PostgreSQL's
// timestamptz and as Unix microseconds for SQLite's INTEGER columns.
func (s *Store) timeArg(t time.Time) any { return timeArg(s.dialect, t) }

func timeArg(d Dialect, t time.Time) any {
	if t.IsZero() {
		return nil
	}
	t = t.UTC().Truncate(time.Microsecond)
	if d == SQLite {
		return t.UnixMicro()
	}
	return t
}

// timeCol scans a timestamp column written by timeArg, from either dialect.
type timeCol struct{ t time.Time }

func (c *timeCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		c.t = time.Time{}
	case int64:
		c.t = time.UnixMicro(v).UTC()
	case time.Time:
		c.t = v.UTC()
	default:
		return fmt.Errorf("unsupported timestamp column type %T", src)
	}
	return nil
}

// encodeList encodes scopes or CIDRs as a JSON array ("[]" for none).
func encodeList(l []string) string {
	if len(l) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(l) // a []string always marshals
	return string(b)
}

// encodeMap encodes metadata as a JSON object ("{}" for none).
func encodeMap(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(m) // a map[string]string always marshals
	return string(b)
}

func decodeList(b []byte) ([]string, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, err
	}
	if len(l) == 0 {
		return nil, nil
	}
	return l, nil
}

func decodeMap(b []byte) (map[string]string, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

// rowScanner is *sql.Row or *sql.Rows.
type rowScanner interface {
	Scan(dest ...any) error
}

// scanKey reads one row selected with keyColumns. Errors name the column
// (and the public key ID when known), never the values.
func scanKey(r rowScanner) (store.Key, error) {
	var (
		k                                 store.Key
		pepper, rate                      int64
		scopes, cidrs, meta               []byte
		created, expires, revoked, lastAt timeCol
	)
	err := r.Scan(&k.ID, &k.UserID, &k.Name, &k.Hash, &pepper, &scopes,
		&created, &expires, &revoked, &lastAt, &rate, &cidrs, &meta)
	if err != nil {
		return store.Key{}, err
	}
	k.PepperVersion, k.RateLimit = int(pepper), int(rate)
	k.CreatedAt, k.ExpiresAt, k.RevokedAt, k.LastUsedAt = created.t, expires.t, revoked.t, lastAt.t
	if k.Scopes, err = decodeList(scopes); err != nil {
		return store.Key{}, fmt.Errorf("key %q: decode scopes column: %w", k.ID, err)
	}
	if k.AllowedCIDRs, err = decodeList(cidrs); err != nil {
		return store.Key{}, fmt.Errorf("key %q: decode allowed_cidrs column: %w", k.ID, err)
	}
	if k.Metadata, err = decodeMap(meta); err != nil {
		return store.Key{}, fmt.Errorf("key %q: decode metadata column: %w", k.ID, err)
	}
	return k, nil
}
