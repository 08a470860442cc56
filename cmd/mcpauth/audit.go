package main

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/audit/sqlaudit"
)

// filterFlags select audit events; tail, query and export share them.
type filterFlags struct {
	user, key, outcome, method, tool, action string
	from, to                                 timeFlag
}

var actions = []audit.Action{audit.ActionCreated, audit.ActionRotated, audit.ActionRevoked, audit.ActionExpiredKeyUsed}

func (f *filterFlags) register(fs *flag.FlagSet, withTime bool) {
	fs.StringVar(&f.user, "user", "", "only events of this user `ID`")
	fs.StringVar(&f.key, "key", "", "only events of this key `ID`")
	fs.StringVar(&f.outcome, "outcome", "", "only this `outcome`: allowed, denied, unauthenticated, rate_limited or error")
	fs.StringVar(&f.method, "method", "", "only this MCP `method`, such as tools/call")
	fs.StringVar(&f.tool, "tool", "", "only calls of this `tool`")
	fs.StringVar(&f.action, "action", "", "only this key `action`: created, rotated, revoked or expired_key_used")
	if withTime {
		fs.Var(&f.from, "from", "only events at or after this `time`: RFC 3339, a date, or a duration ago (24h, 7d)")
		fs.Var(&f.to, "to", "only events before this `time`: RFC 3339, a date, or a duration ago")
	}
}

func (f *filterFlags) filter(cmd string, now time.Time) (audit.Filter, error) {
	out := audit.Filter{
		UserID: f.user, KeyID: f.key, Outcome: audit.Outcome(f.outcome), Method: f.method, Tool: f.tool,
		Action: audit.Action(f.action), From: f.from.at(now), To: f.to.at(now),
	}
	if f.outcome != "" && !out.Outcome.Valid() {
		return out, usagef("%s: --outcome %q: want allowed, denied, unauthenticated, rate_limited or error", cmd, f.outcome)
	}
	if f.action != "" && !slices.Contains(actions, out.Action) {
		return out, usagef("%s: --action %q: want created, rotated, revoked or expired_key_used", cmd, f.action)
	}
	if !out.From.IsZero() && !out.To.IsZero() && !out.From.Before(out.To) {
		return out, usagef("%s: --from must be before --to", cmd)
	}
	return out, nil
}

func (a *app) auditStore() (*sqlaudit.Store, error) {
	r, err := a.open(false)
	if err != nil {
		return nil, err
	}
	return r.audit, nil
}

// what summarises an event: its key action or its MCP method and target.
func what(e audit.Event) string {
	if e.Action != "" {
		return "key." + string(e.Action)
	}
	s := e.Method
	for _, t := range []string{e.Tool, e.ResourceURI, e.Prompt} {
		if t != "" {
			s += " " + t
			break
		}
	}
	return orDash(s)
}

const eventTime = "2006-01-02T15:04:05.000Z"

func printEvents(w io.Writer, events []audit.Event, header bool) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if header {
		fmt.Fprintln(tw, "TIME\tUSER\tKEY\tOUTCOME\tWHAT\tSTATUS\tREASON\tCLIENT")
	}
	for _, e := range events {
		status := "-"
		if e.Status != 0 {
			status = strconv.Itoa(e.Status)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.UTC().Format(eventTime), orDash(e.UserID), orDash(e.KeyID),
			orDash(string(e.Outcome)), what(e), status, orDash(e.Reason), orDash(e.ClientIP))
	}
	return tw.Flush()
}

func writeJSONLines(w io.Writer, events []audit.Event) error {
	for _, e := range events {
		b, err := e.MarshalJSON()
		if err != nil {
			return err
		}
		if _, err := w.Write(append(b, '\n')); err != nil {
			return err
		}
	}
	return nil
}

func (a *app) auditQuery(name string, args []string) error {
	fs := a.flagSet(name, "[flags]", `Lists audit events matching the filters, newest first, one page at a
time. The cursor printed after a full page (or "next" with --json) gets the
following page with --cursor and the same filters.`)
	var ff filterFlags
	ff.register(fs, true)
	limit := fs.Int("limit", 100, "page size, at most 1000")
	cur := fs.String("cursor", "", "continue after the page that printed this `cursor`")
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	f, err := ff.filter(name, a.deps.now())
	if err != nil {
		return err
	}
	if *limit < 1 || *limit > 1000 {
		return usagef("%s: --limit must be between 1 and 1000", name)
	}
	f.Limit, f.Cursor = *limit, *cur
	s, err := a.auditStore()
	if err != nil {
		return err
	}
	page, err := s.Query(a.ctx, f)
	if errors.Is(err, sqlaudit.ErrInvalidCursor) {
		return usagef("%s: --cursor %q was not printed by this command", name, *cur)
	}
	if err != nil {
		return err
	}
	if a.g.json {
		events := page.Events
		if events == nil {
			events = []audit.Event{}
		}
		return writeJSON(a.stdout, struct {
			Events []audit.Event `json:"events"`
			Next   string        `json:"next,omitempty"`
		}{events, page.Next})
	}
	if len(page.Events) == 0 {
		fmt.Fprintln(a.stderr, "no matching events")
		return nil
	}
	if err := printEvents(a.stdout, page.Events, true); err != nil {
		return err
	}
	if page.Next != "" {
		fmt.Fprintf(a.stderr, "more events: add --cursor %s\n", page.Next)
	}
	return nil
}

func (a *app) auditTail(name string, args []string) error {
	fs := a.flagSet(name, "[-n 20] [--follow] [flags]", `Prints the latest audit events matching the filters, oldest first; with
--follow, keeps polling for new ones until interrupted: each poll reads the
events stamped from --lookback before the newest one printed, so an event
written later than that (a long stream) is not printed; use "audit query"
for a complete listing. With --json, one JSON object per line.`)
	var ff filterFlags
	ff.register(fs, false)
	n := fs.Int("n", 20, "how many of the latest events to print, at most 1000")
	follow := fs.Bool("follow", false, "keep printing new events until interrupted")
	interval := durationFlag{d: 2 * time.Second}
	fs.Var(&interval, "interval", "how often --follow polls the database")
	lookback := durationFlag{d: 30 * time.Second}
	fs.Var(&lookback, "lookback", "with --follow, also print events that reach the database up to this long after newer ones (slow requests)")
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	f, err := ff.filter(name, a.deps.now())
	if err != nil {
		return err
	}
	if *n < 0 || *n > 1000 {
		return usagef("%s: -n must be between 0 and 1000", name)
	}
	if interval.d < 10*time.Millisecond {
		return usagef("%s: --interval must be at least 10ms", name)
	}
	s, err := a.auditStore()
	if err != nil {
		return err
	}
	var events []audit.Event
	if *n > 0 {
		f.Limit = *n
		page, err := s.Query(a.ctx, f)
		if err != nil {
			return err
		}
		events = page.Events
		slices.Reverse(events)
	}
	header := !a.g.json
	if err := a.printTail(events, &header); err != nil {
		return err
	}
	if !*follow {
		return nil
	}
	// Follow: every poll reads the events stamped from lookback before the
	// newest one seen (an event is stamped when its request arrived and
	// written after its response, so it can land in the database after
	// newer ones) and prints those not printed yet.
	seen := map[string]time.Time{}
	var newest time.Time
	mark := func(evs []audit.Event) {
		for _, e := range evs {
			seen[e.ID] = e.Time
			if e.Time.After(newest) {
				newest = e.Time
			}
		}
	}
	mark(events)
	if newest.IsZero() {
		newest = a.deps.now()
	}
	for {
		if err := a.deps.sleep(a.ctx, interval.d); err != nil {
			return nil // interrupted: the normal end of --follow
		}
		f.From, f.Limit, f.Cursor = newest.Add(-lookback.d), 1000, ""
		var fresh []audit.Event
		for {
			page, err := s.Query(a.ctx, f)
			if err != nil {
				if a.ctx.Err() != nil {
					return nil
				}
				return err
			}
			for _, e := range page.Events {
				if _, ok := seen[e.ID]; !ok {
					fresh = append(fresh, e)
				}
			}
			if page.Next == "" {
				break
			}
			f.Cursor = page.Next
		}
		slices.Reverse(fresh)
		if err := a.printTail(fresh, &header); err != nil {
			return err
		}
		mark(fresh)
		for id, t := range seen {
			if t.Before(newest.Add(-lookback.d)) {
				delete(seen, id)
			}
		}
	}
}

func (a *app) printTail(events []audit.Event, header *bool) error {
	if a.g.json {
		return writeJSONLines(a.stdout, events)
	}
	if len(events) == 0 {
		return nil
	}
	err := printEvents(a.stdout, events, *header)
	*header = false
	return err
}

func (a *app) auditExport(name string, args []string) error {
	fs := a.flagSet(name, "[--format jsonl|csv] [--output FILE] [flags]", `Writes every audit event matching the filters, newest first, as JSON lines
(the format of audit.NewJSONSink) or CSV, to stdout or a file (created with
mode 0600). The count goes to stderr.`)
	var ff filterFlags
	ff.register(fs, true)
	format := fs.String("format", "jsonl", "`format`: jsonl or csv")
	output := fs.String("output", "-", "write to this `file` instead of stdout")
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	f, err := ff.filter(name, a.deps.now())
	if err != nil {
		return err
	}
	var fm sqlaudit.Format
	switch *format {
	case "jsonl", "json":
		fm = sqlaudit.JSONLines
	case "csv":
		fm = sqlaudit.CSV
	default:
		return usagef("%s: --format %q: want jsonl or csv", name, *format)
	}
	if *output == "" {
		return usagef("%s: --output must not be empty (use - for stdout)", name)
	}
	s, err := a.auditStore()
	if err != nil {
		return err
	}
	w := a.stdout
	var file *os.File
	if *output != "-" {
		file, err = os.OpenFile(*output, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		w = file
	}
	n, err := s.Export(a.ctx, w, f, fm)
	if file != nil {
		if cerr := file.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("export stopped after %d events: %w", n, err)
	}
	if a.g.json && file != nil {
		return writeJSON(a.stdout, map[string]any{"exported": n, "output": *output, "format": *format})
	}
	fmt.Fprintf(a.stderr, "exported %d events\n", n)
	return nil
}

func (a *app) auditVerify(name string, args []string) error {
	fs := a.flagSet(name, "[--from TIME] [--to TIME]", `Checks the audit log's hash chain: recomputes every event's hash and its
link to the one before, and finds edited, deleted or reordered rows. The
server must write with sqlaudit Options.Chain. Prints the head (last
sequence number and hash): keep it outside the database to detect a
rewrite of the whole tail. Exits 4 when the chain is broken.`)
	var from, to timeFlag
	fs.Var(&from, "from", "check events at or after this `time`: RFC 3339, a date, or a duration ago")
	fs.Var(&to, "to", "check events before this `time`")
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	now := a.deps.now()
	s, err := a.auditStore()
	if err != nil {
		return err
	}
	v, verr := s.Verify(a.ctx, from.at(now), to.at(now))
	var ce *sqlaudit.ChainError
	if verr != nil && !errors.As(verr, &ce) {
		return verr
	}
	seq, hash, err := s.Head(a.ctx)
	if err != nil {
		return err
	}
	if a.g.json {
		out := map[string]any{"ok": ce == nil, "events": v.Events, "first": v.First, "last": v.Last,
			"head": map[string]any{"seq": seq, "hash": hex.EncodeToString(hash)}}
		if ce != nil {
			out["broken"] = map[string]any{"seq": ce.Seq, "event_id": ce.EventID, "reason": ce.Reason}
		}
		if err := writeJSON(a.stdout, out); err != nil {
			return err
		}
	} else if ce != nil {
		fmt.Fprintf(a.stdout, "audit chain BROKEN at seq %d", ce.Seq)
		if ce.EventID != "" {
			fmt.Fprintf(a.stdout, " (event %s)", ce.EventID)
		}
		fmt.Fprintf(a.stdout, ": %s\n", ce.Reason)
		if v.Events > 0 {
			fmt.Fprintf(a.stdout, "the %d events before it hold (seq %d..%d)\n", v.Events, v.First, v.Last)
		}
		if ce.Reason == "not chained" {
			fmt.Fprintln(a.stdout, "the event was written without a hash: the server must use sqlaudit Options.Chain from the first event on")
		}
	} else if v.Events == 0 {
		fmt.Fprintln(a.stdout, "audit chain OK: no events in range")
	} else {
		fmt.Fprintf(a.stdout, "audit chain OK: %d events checked (seq %d..%d)\n", v.Events, v.First, v.Last)
	}
	if !a.g.json {
		fmt.Fprintf(a.stdout, "head: seq %d hash %s\n", seq, orDash(hex.EncodeToString(hash)))
	}
	if ce != nil {
		return errTampered
	}
	return nil
}
