package sqltest

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"regexp"
	"testing"
	"time"

	"github.com/DATA-DOG/go-sqlmock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/audit/sqlaudit"
	"github.com/mcpauth/mcpauth/store/sqlstore"
)

// These tests pin the statements the store sends and inject failures with
// go-sqlmock. Behaviour is tested against real databases elsewhere.

var errConnRefused = errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")

func newMock(t *testing.T, o sqlaudit.Options) (*sqlaudit.Store, sqlmock.Sqlmock) {
	t.Helper()
	db, mock, err := sqlmock.New(sqlmock.QueryMatcherOption(sqlmock.QueryMatcherRegexp))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	if o.Dialect == sqlstore.DialectAuto {
		o.Dialect = sqlstore.SQLite
	}
	o.TablePrefix = "m_"
	if o.MaxRowsPerInsert == 0 {
		o.MaxRowsPerInsert = 10
	}
	s, err := sqlaudit.New(db, &o)
	require.NoError(t, err)
	return s, mock
}

var (
	reHead   = regexp.QuoteMeta("UPDATE m_audit_head SET seq = seq + ?1 WHERE id = 1 RETURNING seq, hash")
	reInsert = regexp.QuoteMeta("INSERT INTO m_audit_events (seq, id, event_time,")
)

func events(n int) []audit.Event {
	out := make([]audit.Event, n)
	for i := range out {
		out[i] = audit.Event{Time: time.Unix(1700000000, 0), ID: "m" + string(rune('a'+i)), KeyID: "k1", Outcome: audit.OutcomeAllowed}
	}
	return out
}

func TestMockBatchShape(t *testing.T) {
	s, mock := newMock(t, sqlaudit.Options{MaxRowsPerInsert: 2, Chain: true})
	mock.ExpectBegin()
	mock.ExpectQuery(reHead).WithArgs(int64(5)).WillReturnRows(sqlmock.NewRows([]string{"seq", "hash"}).AddRow(int64(15), nil))
	p := mock.ExpectPrepare(reInsert + `.*VALUES \(\?,(\?,){26}\?\),\(\?,(\?,){26}\?\)$`)
	p.ExpectExec().WillReturnResult(sqlmock.NewResult(0, 2))
	p.ExpectExec().WillReturnResult(sqlmock.NewResult(0, 2))
	mock.ExpectExec(reInsert + `.*VALUES \(\?,(\?,){26}\?\)$`).WillReturnResult(sqlmock.NewResult(0, 1))
	mock.ExpectExec(regexp.QuoteMeta("UPDATE m_audit_head SET hash = ?1 WHERE id = 1")).WillReturnResult(sqlmock.NewResult(0, 1))
	mock.ExpectCommit()
	require.NoError(t, s.RecordBatch(context.Background(), events(5)))
	require.NoError(t, mock.ExpectationsWereMet())
}

// jsonRows matches a JSON document of rows whose seq ("a") are these.
type jsonRows []int64

func (want jsonRows) Match(v driver.Value) bool {
	doc, ok := v.(string)
	if !ok {
		return false
	}
	var rows []struct {
		Seq int64 `json:"a"`
	}
	if json.Unmarshal([]byte(doc), &rows) != nil || len(rows) != len(want) {
		return false
	}
	for i, r := range rows {
		if r.Seq != want[i] {
			return false
		}
	}
	return true
}

func TestMockPostgresStatement(t *testing.T) {
	s, mock := newMock(t, sqlaudit.Options{Dialect: sqlstore.Postgres})
	mock.ExpectBegin()
	mock.ExpectQuery(regexp.QuoteMeta("UPDATE m_audit_head SET seq = seq + $1 WHERE id = 1 RETURNING seq, hash")).
		WillReturnRows(sqlmock.NewRows([]string{"seq", "hash"}).AddRow(int64(1), nil))
	mock.ExpectExec(reInsert + `.* FROM json_to_recordset\(\$1::json\) AS x\(.*\)$`).WithArgs(jsonRows{1}).WillReturnResult(sqlmock.NewResult(0, 1))
	mock.ExpectCommit()
	require.NoError(t, s.Record(context.Background(), events(1)[0]))
	require.NoError(t, mock.ExpectationsWereMet())
}

func TestMockPostgresBatchShape(t *testing.T) {
	s, mock := newMock(t, sqlaudit.Options{Dialect: sqlstore.Postgres, MaxRowsPerInsert: 2, Chain: true})
	mock.ExpectBegin()
	mock.ExpectQuery(regexp.QuoteMeta("UPDATE m_audit_head SET seq = seq + $1 WHERE id = 1 RETURNING seq, hash")).
		WithArgs(int64(5)).WillReturnRows(sqlmock.NewRows([]string{"seq", "hash"}).AddRow(int64(15), nil))
	p := mock.ExpectPrepare(reInsert + `.* FROM json_to_recordset\(\$1::json\)`)
	// 5 rows, 2 per statement: documents of 2, 2 and 1 rows, seq 11..15.
	p.ExpectExec().WithArgs(jsonRows{11, 12}).WillReturnResult(sqlmock.NewResult(0, 2))
	p.ExpectExec().WithArgs(jsonRows{13, 14}).WillReturnResult(sqlmock.NewResult(0, 2))
	p.ExpectExec().WithArgs(jsonRows{15}).WillReturnResult(sqlmock.NewResult(0, 1))
	mock.ExpectExec(regexp.QuoteMeta("UPDATE m_audit_head SET hash = $1 WHERE id = 1")).WillReturnResult(sqlmock.NewResult(0, 1))
	mock.ExpectCommit()
	require.NoError(t, s.RecordBatch(context.Background(), events(5)))
	require.NoError(t, mock.ExpectationsWereMet())
}

func TestMockSQLitePreparesOneRowInsert(t *testing.T) {
	s, mock := newMock(t, sqlaudit.Options{MaxRowsPerInsert: 1})
	mock.ExpectBegin()
	mock.ExpectQuery(reHead).WillReturnRows(sqlmock.NewRows([]string{"seq", "hash"}).AddRow(int64(3), nil))
	p := mock.ExpectPrepare(reInsert + `.*\(\?,\?,.*\?\)$`)
	for range 3 {
		p.ExpectExec().WillReturnResult(sqlmock.NewResult(0, 1))
	}
	mock.ExpectCommit()
	require.NoError(t, s.RecordBatch(context.Background(), events(3)))
	require.NoError(t, mock.ExpectationsWereMet())
}

func TestMockFailureMidBatchRollsBack(t *testing.T) {
	s, mock := newMock(t, sqlaudit.Options{MaxRowsPerInsert: 2})
	mock.ExpectBegin()
	mock.ExpectQuery(reHead).WillReturnRows(sqlmock.NewRows([]string{"seq", "hash"}).AddRow(int64(5), nil))
	p := mock.ExpectPrepare(reInsert)
	p.ExpectExec().WillReturnResult(sqlmock.NewResult(0, 2))
	p.ExpectExec().WillReturnError(errConnRefused)
	mock.ExpectRollback()
	err := s.RecordBatch(context.Background(), events(5))
	require.ErrorIs(t, err, errConnRefused)
	assert.Contains(t, err.Error(), "mcpauth/sqlaudit: record: insert")
	require.NoError(t, mock.ExpectationsWereMet())
}

func TestMockCommitFails(t *testing.T) {
	s, mock := newMock(t, sqlaudit.Options{})
	mock.ExpectBegin()
	mock.ExpectQuery(reHead).WillReturnRows(sqlmock.NewRows([]string{"seq", "hash"}).AddRow(int64(1), nil))
	mock.ExpectExec(reInsert).WillReturnResult(sqlmock.NewResult(0, 1))
	mock.ExpectCommit().WillReturnError(errConnRefused)
	err := s.Record(context.Background(), events(1)[0])
	require.ErrorIs(t, err, errConnRefused)
	require.NoError(t, mock.ExpectationsWereMet())
}

// expectFailedAttempts sets up attempts that all fail: the first halfway
// through the batch, the others at BEGIN.
func expectFailedAttempts(mock sqlmock.Sqlmock, attempts int) {
	mock.ExpectBegin()
	mock.ExpectQuery(reHead).WillReturnRows(sqlmock.NewRows([]string{"seq", "hash"}).AddRow(int64(3), nil))
	mock.ExpectExec(reInsert).WillReturnError(errConnRefused)
	mock.ExpectRollback()
	for range attempts - 1 {
		mock.ExpectBegin().WillReturnError(errConnRefused)
	}
}

func TestMockWriterBestEffortRetriesThenDrops(t *testing.T) {
	s, mock := newMock(t, sqlaudit.Options{})
	expectFailedAttempts(mock, 3)
	var reported int
	w, err := audit.NewWriter(s, &audit.WriterOptions{
		BatchSize: 3, FlushInterval: time.Hour, MaxRetries: 2, RetryBackoff: time.Millisecond,
		OnError: func(err error, n int) { reported += n },
	})
	require.NoError(t, err)
	for _, e := range events(3) {
		require.NoError(t, w.Record(context.Background(), e), "BestEffort requests never fail")
	}
	require.NoError(t, w.Close(context.Background()))
	st := w.Stats()
	assert.Equal(t, uint64(3), st.Failed, "the batch is counted as dropped")
	assert.Equal(t, uint64(2), st.Retries)
	assert.Zero(t, st.Written)
	assert.Equal(t, 3, reported)
	require.NoError(t, mock.ExpectationsWereMet())
}

func TestMockWriterStrictFailsRequests(t *testing.T) {
	s, mock := newMock(t, sqlaudit.Options{})
	expectFailedAttempts(mock, 2)
	// Then the database is back.
	mock.ExpectBegin()
	mock.ExpectQuery(reHead).WillReturnRows(sqlmock.NewRows([]string{"seq", "hash"}).AddRow(int64(1), nil))
	mock.ExpectExec(reInsert).WillReturnResult(sqlmock.NewResult(0, 1))
	mock.ExpectCommit()

	w, err := audit.NewWriter(s, &audit.WriterOptions{Mode: audit.Strict, MaxRetries: 1, RetryBackoff: time.Millisecond})
	require.NoError(t, err)
	err = w.Record(context.Background(), events(1)[0])
	require.ErrorIs(t, err, errConnRefused, "the request learns its event was not recorded")
	require.NoError(t, w.Record(context.Background(), events(1)[0]))
	require.NoError(t, w.Close(context.Background()))
	assert.Equal(t, audit.Stats{Written: 1, Failed: 1, Retries: 1, Batches: 1}, w.Stats())
	require.NoError(t, mock.ExpectationsWereMet())
}
