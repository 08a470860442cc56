package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mcpauth/mcpauth/store/sqlstore"
)

// document is one of a user's documents.
type document struct {
	ID        int64
	UserID    string
	Title     string
	Body      string
	CreatedAt time.Time
}

// hit is a search result: a document's title and date, and the passage of
// its body that matched.
type hit struct {
	ID        int64
	Title     string
	CreatedAt time.Time
	Snippet   string
}

// errNoDocument is the answer for a document ID the user does not own,
// whether it exists for someone else or not at all: the two are
// indistinguishable by design.
var errNoDocument = errors.New("no such document")

// Limits on what a user (or their agent) may store.
const (
	maxTitleLen  = 200
	maxBodyBytes = 100 << 10
	maxHits      = 10
)

// documents is the document store. Every method takes the owner's user ID
// and every statement filters by it: there is no way to reach a document
// without naming its owner, and the owner always comes from the session or
// the API key, never from a request's arguments.
type documents struct {
	d   *database
	now func() time.Time
}

func (s *documents) list(ctx context.Context, userID string) ([]document, error) {
	rows, err := s.d.db.QueryContext(ctx, s.d.q(`SELECT id, user_id, title, body, created_at FROM documents
		WHERE user_id = $1 ORDER BY created_at DESC, id DESC`), userID)
	if err != nil {
		return nil, fmt.Errorf("list documents: %w", err)
	}
	defer rows.Close()
	var out []document
	for rows.Next() {
		var doc document
		var created int64
		if err := rows.Scan(&doc.ID, &doc.UserID, &doc.Title, &doc.Body, &created); err != nil {
			return nil, fmt.Errorf("list documents: %w", err)
		}
		doc.CreatedAt = time.Unix(created, 0).UTC()
		out = append(out, doc)
	}
	return out, rows.Err()
}

// get returns the user's document id, or errNoDocument.
func (s *documents) get(ctx context.Context, userID string, id int64) (document, error) {
	doc := document{ID: id, UserID: userID}
	var created int64
	err := s.d.db.QueryRowContext(ctx, s.d.q(`SELECT title, body, created_at FROM documents WHERE id = $1 AND user_id = $2`),
		id, userID).Scan(&doc.Title, &doc.Body, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return document{}, errNoDocument
	}
	if err != nil {
		return document{}, fmt.Errorf("get document: %w", err)
	}
	doc.CreatedAt = time.Unix(created, 0).UTC()
	return doc, nil
}

// create stores a new document for the user. Errors for bad input name the
// field.
func (s *documents) create(ctx context.Context, userID, title, body string) (document, error) {
	title, body = strings.TrimSpace(title), strings.TrimSpace(body)
	switch {
	case title == "":
		return document{}, fieldError{"title", "is empty"}
	case utf8.RuneCountInString(title) > maxTitleLen:
		return document{}, fieldError{"title", fmt.Sprintf("is longer than %d characters", maxTitleLen)}
	case body == "":
		return document{}, fieldError{"body", "is empty"}
	case len(body) > maxBodyBytes:
		return document{}, fieldError{"body", fmt.Sprintf("is larger than %d KiB", maxBodyBytes>>10)}
	case !utf8.ValidString(title + body):
		return document{}, fieldError{"body", "is not valid UTF-8"}
	}
	return s.insert(ctx, document{UserID: userID, Title: title, Body: body, CreatedAt: s.now().UTC().Truncate(time.Second)})
}

// insert writes doc as it is (the demo seed uses it for past dates).
func (s *documents) insert(ctx context.Context, doc document) (document, error) {
	err := s.d.db.QueryRowContext(ctx, s.d.q(`INSERT INTO documents (user_id, title, body, created_at) VALUES ($1, $2, $3, $4) RETURNING id`),
		doc.UserID, doc.Title, doc.Body, doc.CreatedAt.Unix()).Scan(&doc.ID)
	if err != nil {
		return document{}, fmt.Errorf("create document: %w", err)
	}
	return doc, nil
}

// delete removes the user's document id, or returns errNoDocument.
func (s *documents) delete(ctx context.Context, userID string, id int64) error {
	res, err := s.d.db.ExecContext(ctx, s.d.q(`DELETE FROM documents WHERE id = $1 AND user_id = $2`), id, userID)
	if err != nil {
		return fmt.Errorf("delete document: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("delete document: %w", err)
	} else if n == 0 {
		return errNoDocument
	}
	return nil
}

// search ranks the user's documents against a natural-language query: SQLite
// FTS5 with bm25 (titles weigh five times the body) and snippet(), or
// PostgreSQL's full-text search with ts_rank_cd and ts_headline. Any word of
// the query may match (OR), so a question finds documents that share its
// significant words; stop words are dropped first.
func (s *documents) search(ctx context.Context, userID, query string, limit int) ([]hit, error) {
	if limit <= 0 || limit > maxHits {
		limit = maxHits
	}
	terms := searchTerms(query)
	if len(terms) == 0 {
		return nil, nil
	}
	var stmt, match string
	if s.d.dialect == sqlstore.Postgres {
		// Terms are letters and digits only, so they cannot be tsquery syntax.
		match = strings.Join(terms, " | ")
		stmt = `SELECT id, title, created_at,
			ts_headline('english', body, to_tsquery('english', $1), 'StartSel=, StopSel=, MaxWords=40, MinWords=20, MaxFragments=1')
			FROM documents WHERE user_id = $2 AND search @@ to_tsquery('english', $1)
			ORDER BY ts_rank_cd(search, to_tsquery('english', $1)) DESC, id DESC LIMIT $3`
	} else {
		quoted := make([]string, len(terms))
		for i, t := range terms {
			quoted[i] = `"` + t + `"`
		}
		match = strings.Join(quoted, " OR ")
		stmt = `SELECT d.id, d.title, d.created_at, snippet(documents_fts, 1, '', '', '…', 40)
			FROM documents_fts JOIN documents d ON d.id = documents_fts.rowid
			WHERE documents_fts MATCH ?1 AND d.user_id = ?2
			ORDER BY bm25(documents_fts, 5.0, 1.0), d.id DESC LIMIT ?3`
	}
	rows, err := s.d.db.QueryContext(ctx, stmt, match, userID, limit)
	if err != nil {
		return nil, fmt.Errorf("search documents: %w", err)
	}
	defer rows.Close()
	var out []hit
	for rows.Next() {
		var h hit
		var created int64
		if err := rows.Scan(&h.ID, &h.Title, &created, &h.Snippet); err != nil {
			return nil, fmt.Errorf("search documents: %w", err)
		}
		h.CreatedAt = time.Unix(created, 0).UTC()
		h.Snippet = strings.Join(strings.Fields(h.Snippet), " ")
		out = append(out, h)
	}
	return out, rows.Err()
}

// searchTerms splits a query into lower-case words of letters and digits,
// without stop words or duplicates, at most 16.
func searchTerms(query string) []string {
	var out []string
	seen := map[string]bool{}
	for _, w := range strings.FieldsFunc(strings.ToLower(query), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	}) {
		if utf8.RuneCountInString(w) < 2 || stopWords[w] || seen[w] {
			continue
		}
		seen[w] = true
		out = append(out, w)
		if len(out) == 16 {
			break
		}
	}
	return out
}

// stopWords are words too common to say what a question is about.
var stopWords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`a an and are as at be been but by can could did do does for from had has have how
		i if in into is it its me my no not of on or our ours so than that the their them then there these they this
		to us was we were what when where which who whom why will with would you your yours about any all tell show
		find give much many please`) {
		m[w] = true
	}
	return m
}()

// fieldError is bad input, naming the field.
type fieldError struct{ field, problem string }

func (e fieldError) Error() string { return e.field + " " + e.problem }
