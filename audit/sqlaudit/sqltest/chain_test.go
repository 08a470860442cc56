package sqltest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/audit/audittest"
	"github.com/mcpauth/mcpauth/audit/sqlaudit"
)

func exec(t *testing.T, db *sql.DB, s *sqlaudit.Store, q string, args ...any) {
	t.Helper()
	if s.Dialect().String() == "sqlite" {
		for i := len(args); i >= 1; i-- {
			q = replaceAll(q, fmt.Sprintf("$%d", i), "?")
		}
	}
	_, err := db.Exec(q, args...)
	require.NoError(t, err)
}

func replaceAll(s, old, new string) string {
	for {
		i := indexOf(s, old)
		if i < 0 {
			return s
		}
		s = s[:i] + new + s[i+len(old):]
	}
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func verifyAll(s *sqlaudit.Store) (sqlaudit.Verification, error) {
	return s.Verify(context.Background(), time.Time{}, time.Time{})
}

func chainError(t *testing.T, err error) *sqlaudit.ChainError {
	t.Helper()
	require.ErrorIs(t, err, sqlaudit.ErrChainBroken)
	var ce *sqlaudit.ChainError
	require.True(t, errors.As(err, &ce))
	return ce
}

func TestVerifyIntact(t *testing.T) {
	eachBackend(t, true, func(t *testing.T, db *sql.DB, s *sqlaudit.Store) {
		v, err := verifyAll(s)
		require.NoError(t, err, "empty log")
		assert.Zero(t, v.Events)

		seed(t, s, 100)
		v, err = verifyAll(s)
		require.NoError(t, err)
		assert.Equal(t, sqlaudit.Verification{Events: 100, First: 1, Last: 100}, v)

		v, err = s.Verify(context.Background(), audittest.Base.Add(10*time.Second), audittest.Base.Add(20*time.Second))
		require.NoError(t, err)
		assert.Equal(t, sqlaudit.Verification{Events: 10, First: 11, Last: 20}, v)

		v, err = s.Verify(context.Background(), audittest.Base.Add(time.Hour), time.Time{})
		require.NoError(t, err)
		assert.Zero(t, v.Events, "nothing in range")

		seq, hash, err := s.Head(context.Background())
		require.NoError(t, err)
		assert.Equal(t, int64(100), seq)
		assert.Len(t, hash, 32)
	})
}

func TestVerifyDetectsTampering(t *testing.T) {
	cases := []struct {
		name   string
		tamper func(t *testing.T, db *sql.DB, s *sqlaudit.Store)
		seq    int64
		reason string
	}{
		{"edit a field", func(t *testing.T, db *sql.DB, s *sqlaudit.Store) {
			exec(t, db, s, "UPDATE "+s.EventsTable()+" SET outcome = 'allowed' WHERE seq = 13")
		}, 13, "hash mismatch"},
		{"edit the time", func(t *testing.T, db *sql.DB, s *sqlaudit.Store) {
			exec(t, db, s, "UPDATE "+s.EventsTable()+" SET duration_ns = duration_ns + 1 WHERE seq = 7")
		}, 7, "hash mismatch"},
		{"edit and rehash the row", func(t *testing.T, db *sql.DB, s *sqlaudit.Store) {
			exec(t, db, s, "UPDATE "+s.EventsTable()+" SET key_id = 'someone-else' WHERE seq = 13")
			rehashRow(t, db, s, 30, 13)
		}, 14, "previous hash mismatch"},
		{"edit and rehash the last row", func(t *testing.T, db *sql.DB, s *sqlaudit.Store) {
			exec(t, db, s, "UPDATE "+s.EventsTable()+" SET key_id = 'someone-else' WHERE seq = 30")
			rehashRow(t, db, s, 30, 30)
		}, 30, "head mismatch"},
		{"delete a row", func(t *testing.T, db *sql.DB, s *sqlaudit.Store) {
			exec(t, db, s, "DELETE FROM "+s.EventsTable()+" WHERE seq = 20")
		}, 20, "missing event"},
		{"delete the first row", func(t *testing.T, db *sql.DB, s *sqlaudit.Store) {
			exec(t, db, s, "DELETE FROM "+s.EventsTable()+" WHERE seq = 1")
		}, 1, "missing event"},
		{"delete the last rows", func(t *testing.T, db *sql.DB, s *sqlaudit.Store) {
			exec(t, db, s, "DELETE FROM "+s.EventsTable()+" WHERE seq >= 29")
		}, 29, "missing event"},
		{"delete the last rows and renumber the head", func(t *testing.T, db *sql.DB, s *sqlaudit.Store) {
			exec(t, db, s, "DELETE FROM "+s.EventsTable()+" WHERE seq >= 29")
			exec(t, db, s, "UPDATE "+s.Tables()[1]+" SET seq = 28")
		}, 28, "head mismatch"},
		{"swap two rows", func(t *testing.T, db *sql.DB, s *sqlaudit.Store) {
			exec(t, db, s, "UPDATE "+s.EventsTable()+" SET seq = -1 WHERE seq = 9")
			exec(t, db, s, "UPDATE "+s.EventsTable()+" SET seq = 9 WHERE seq = 10")
			exec(t, db, s, "UPDATE "+s.EventsTable()+" SET seq = 10 WHERE seq = -1")
		}, 9, "previous hash mismatch"},
		{"swap two rows with their hashes relinked", func(t *testing.T, db *sql.DB, s *sqlaudit.Store) {
			// Move row 10 before row 9 and fix its prev_hash: its own hash,
			// which covers its seq, no longer matches.
			exec(t, db, s, "UPDATE "+s.EventsTable()+" SET seq = -1 WHERE seq = 9")
			exec(t, db, s, "UPDATE "+s.EventsTable()+" SET seq = 9, prev_hash = (SELECT hash FROM "+s.EventsTable()+" WHERE seq = 8) WHERE seq = 10")
			exec(t, db, s, "UPDATE "+s.EventsTable()+" SET seq = 10 WHERE seq = -1")
		}, 9, "hash mismatch"},
		{"insert a forged row", func(t *testing.T, db *sql.DB, s *sqlaudit.Store) {
			exec(t, db, s, "UPDATE "+s.EventsTable()+" SET seq = seq + 1000 WHERE seq >= 15")
			exec(t, db, s, "UPDATE "+s.EventsTable()+" SET seq = seq - 999 WHERE seq >= 1015")
			exec(t, db, s, "INSERT INTO "+s.EventsTable()+" (seq, id, event_time, prev_hash, hash) SELECT 15, 'forged', event_time, hash, hash FROM "+s.EventsTable()+" WHERE seq = 14")
		}, 15, "hash mismatch"},
		{"unchain a row", func(t *testing.T, db *sql.DB, s *sqlaudit.Store) {
			exec(t, db, s, "UPDATE "+s.EventsTable()+" SET hash = NULL WHERE seq = 3")
		}, 3, "not chained"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			eachBackend(t, true, func(t *testing.T, db *sql.DB, s *sqlaudit.Store) {
				seed(t, s, 30)
				_, err := verifyAll(s)
				require.NoError(t, err)
				c.tamper(t, db, s)
				_, err = verifyAll(s)
				ce := chainError(t, err)
				assert.Equal(t, c.seq, ce.Seq, "%v", err)
				assert.Equal(t, c.reason, ce.Reason, "%v", err)
				assert.Contains(t, err.Error(), "audit chain broken at seq")
			})
		})
	}
}

func TestVerifyRangeIgnoresOtherRows(t *testing.T) {
	eachBackend(t, true, func(t *testing.T, db *sql.DB, s *sqlaudit.Store) {
		seed(t, s, 30)
		exec(t, db, s, "UPDATE "+s.EventsTable()+" SET tool = 'x' WHERE seq = 25")
		_, err := s.Verify(context.Background(), audittest.Base, audittest.Base.Add(20*time.Second))
		require.NoError(t, err, "row 25 is outside the range")
		_, err = s.Verify(context.Background(), audittest.Base.Add(20*time.Second), time.Time{})
		assert.Equal(t, int64(25), chainError(t, err).Seq)
		// The link into the range is checked too.
		exec(t, db, s, "UPDATE "+s.EventsTable()+" SET hash = prev_hash WHERE seq = 10")
		_, err = s.Verify(context.Background(), audittest.Base.Add(10*time.Second), audittest.Base.Add(20*time.Second))
		assert.Equal(t, int64(11), chainError(t, err).Seq)
	})
}

func TestVerifyNotChained(t *testing.T) {
	eachBackend(t, false, func(t *testing.T, db *sql.DB, s *sqlaudit.Store) {
		_, err := verifyAll(s)
		assert.ErrorIs(t, err, sqlaudit.ErrNotChained)
	})
}

func TestPurge(t *testing.T) {
	eachBackend(t, true, func(t *testing.T, db *sql.DB, s *sqlaudit.Store) {
		ctx := context.Background()
		seed(t, s, 40)
		n, err := s.Purge(ctx, audittest.Base.Add(10*time.Second))
		require.NoError(t, err)
		assert.Equal(t, int64(10), n)
		assert.Equal(t, 30, count(t, db, s))
		v, err := verifyAll(s)
		require.NoError(t, err, "verifiable from the new first event")
		assert.Equal(t, sqlaudit.Verification{Events: 30, First: 11, Last: 40}, v)

		n, err = s.Purge(ctx, audittest.Base.Add(10*time.Second))
		require.NoError(t, err)
		assert.Zero(t, n, "nothing more to purge")

		// Deleting the new first event is still caught.
		exec(t, db, s, "DELETE FROM "+s.EventsTable()+" WHERE seq = 11")
		_, err = verifyAll(s)
		assert.Equal(t, int64(11), chainError(t, err).Seq)
	})
}

func TestPurgeOutOfOrderTimesAndEverything(t *testing.T) {
	eachBackend(t, true, func(t *testing.T, db *sql.DB, s *sqlaudit.Store) {
		ctx := context.Background()
		at := func(sec int) audit.Event {
			return audit.Event{Time: audittest.Base.Add(time.Duration(sec) * time.Second), ID: fmt.Sprint(sec)}
		}
		// Written in this order; event 3 is older than event 5 but comes after it.
		require.NoError(t, s.RecordBatch(ctx, []audit.Event{at(1), at(2), at(5), at(3), at(6)}))
		n, err := s.Purge(ctx, audittest.Base.Add(4*time.Second))
		require.NoError(t, err)
		assert.Equal(t, int64(2), n, "1 and 2 go; 3 stays until the chain prefix before it goes")
		assert.Equal(t, []string{"6", "5", "3"}, ids(queryAll(t, s, audit.Filter{})))
		_, err = verifyAll(s)
		require.NoError(t, err)

		n, err = s.Purge(ctx, audittest.Base.Add(time.Hour))
		require.NoError(t, err)
		assert.Equal(t, int64(3), n)
		_, err = verifyAll(s)
		require.NoError(t, err, "empty after purge")
		// The chain continues from the anchor.
		require.NoError(t, s.Record(ctx, at(7)))
		v, err := verifyAll(s)
		require.NoError(t, err)
		assert.Equal(t, sqlaudit.Verification{Events: 1, First: 6, Last: 6}, v)
	})
}

func TestPurgeNotChained(t *testing.T) {
	eachBackend(t, false, func(t *testing.T, db *sql.DB, s *sqlaudit.Store) {
		seed(t, s, 20)
		n, err := s.Purge(context.Background(), audittest.Base.Add(5*time.Second))
		require.NoError(t, err)
		assert.Equal(t, int64(5), n)
		assert.Equal(t, 15, count(t, db, s))
	})
}

// TestChainConcurrentWriters has several stores (as several processes would)
// append to one chained log at once.
func TestChainConcurrentWriters(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			driver, dsn := b.dsn(t)
			db := openDSN(t, driver, dsn)
			first := newStore(t, db, true)
			prefix := first.EventsTable()[:len(first.EventsTable())-len("audit_events")]
			const writers, batches, per = 4, 10, 20
			var wg sync.WaitGroup
			for w := range writers {
				other := openDSN(t, driver, dsn) // its own pool, like another process
				s, err := sqlaudit.New(other, &sqlaudit.Options{TablePrefix: prefix, Chain: true, Dialect: b.dialect})
				require.NoError(t, err)
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range batches {
						var evs []audit.Event
						for j := range per {
							evs = append(evs, audit.Event{ID: fmt.Sprintf("w%d-%d-%d", w, i, j), Outcome: audit.OutcomeAllowed})
						}
						if err := s.RecordBatch(context.Background(), evs); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			v, err := verifyAll(first)
			require.NoError(t, err)
			assert.Equal(t, sqlaudit.Verification{Events: writers * batches * per, First: 1, Last: writers * batches * per}, v)
		})
	}
}

// rehashRow gives row seq of s, whose key_id was changed to "someone-else",
// the hash the chaining scheme gives the edited row, as someone who knows
// the scheme would. It writes the same n seeded events, with that edit, to a
// twin store in the same database and copies the twin's hash: the rows
// before seq are identical in both, so the twin's hash covers the edited
// row after the same previous hash.
func rehashRow(t *testing.T, db *sql.DB, s *sqlaudit.Store, n int, seq int64) {
	t.Helper()
	twin := newStore(t, db, true)
	events := seedEvents(n)
	events[seq-1].KeyID = "someone-else"
	require.NoError(t, twin.RecordBatch(context.Background(), events))
	exec(t, db, s, "UPDATE "+s.EventsTable()+" SET hash = (SELECT hash FROM "+twin.EventsTable()+" WHERE seq = "+strconv.FormatInt(seq, 10)+") WHERE seq = "+strconv.FormatInt(seq, 10))
}
