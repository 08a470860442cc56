package audit

import (
	"context"
	"time"
)

// Filter selects events for a Querier. Empty fields match everything; set
// fields must all match.
type Filter struct {
	UserID  string
	KeyID   string
	Outcome Outcome
	Method  string
	Tool    string
	Action  Action
	// Instance selects the events one process recorded (audit.Event.Instance).
	Instance string
	// From and To bound the event Time: From <= Time < To. Zero means
	// unbounded.
	From, To time.Time
	// Limit is the page size. Default 100; at most 1000.
	Limit int
	// Cursor continues a listing: pass the Next of the previous page with
	// the same filter. Empty starts from the newest event.
	Cursor string
}

// Page is one page of events, newest first.
type Page struct {
	Events []Event
	// Next is the cursor of the following (older) page; empty on the last.
	Next string
}

// Querier is an optional interface for sinks that can list what they
// recorded. Pages are ordered by event Time then write order, newest first,
// and a cursor keeps its place when events are added meanwhile: no event is
// returned twice and none older than the cursor is skipped.
type Querier interface {
	Query(ctx context.Context, f Filter) (Page, error)
}
