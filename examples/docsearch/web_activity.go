package main

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mcpauth/mcpauth/audit"
)

// The Activity page: the signed-in user's own audit events, newest first,
// from the hash-chained log: what their agents (and the assistant) did,
// when, from where, allowed or refused, and their key changes.

type activityRow struct {
	Time     time.Time
	KeyID    string
	KeyName  string
	What     string
	Outcome  string
	Allowed  bool
	Reason   string
	ClientIP string
	Status   int
}

// activityLimit is how many events the page shows.
const activityLimit = 100

func (p *pages) activity(w http.ResponseWriter, r *http.Request, u user) {
	page, err := p.a.cfg.db.audit.Query(r.Context(), audit.Filter{UserID: u.ID, Limit: activityLimit})
	if err != nil {
		p.fail(w, r, err)
		return
	}
	keys, err := p.a.keys.List(r.Context(), u.ID)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	names := map[string]string{}
	for _, k := range keys {
		names[k.ID] = k.Name
	}
	rows := make([]activityRow, 0, len(page.Events))
	for _, e := range page.Events {
		rows = append(rows, activityRow{
			Time: e.Time, KeyID: e.KeyID, KeyName: names[e.KeyID], What: describeEvent(e),
			Outcome: string(e.Outcome), Allowed: e.Outcome == audit.OutcomeAllowed,
			Reason: e.Reason, ClientIP: e.ClientIP, Status: e.Status,
		})
	}
	p.render(w, r, http.StatusOK, "activity", view{Title: "Activity", Data: rows})
}

// describeEvent says in a few words what an event was.
func describeEvent(e audit.Event) string {
	var parts []string
	if e.Action != "" {
		parts = append(parts, "key "+string(e.Action))
	}
	switch {
	case e.Tool != "":
		parts = append(parts, e.Method+" "+e.Tool)
	case e.ResourceURI != "":
		parts = append(parts, e.Method+" "+e.ResourceURI)
	case e.Prompt != "":
		parts = append(parts, e.Method+" "+e.Prompt)
	case e.Method != "":
		parts = append(parts, e.Method)
	}
	if e.Count > 1 {
		parts = append(parts, "(×"+strconv.Itoa(e.Count)+")")
	}
	return strings.Join(parts, " ")
}
