package sqlaudit

import (
	"context"
	"database/sql"
)

// RehashRow recomputes and stores the hash of one row from its stored
// fields and prev_hash: what someone who edits a row and knows the hashing
// scheme would do to cover it up.
func RehashRow(ctx context.Context, db *sql.DB, s *Store, seq int64) error {
	var r row
	if err := scanRow(db.QueryRowContext(ctx, s.rebind("SELECT "+columns+" FROM "+s.EventsTable()+" WHERE seq = $1"), seq), &r); err != nil {
		return err
	}
	_, err := db.ExecContext(ctx, s.rebind("UPDATE "+s.EventsTable()+" SET hash = $1 WHERE seq = $2"), computeHash(r.prevHash, &r), seq)
	return err
}
