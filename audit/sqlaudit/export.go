package sqlaudit

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/mcpauth/mcpauth/audit"
)

// Format is an export format.
type Format int

const (
	// JSONLines writes one JSON object per line, as audit.Event.MarshalJSON
	// (and audit.NewJSONSink) does.
	JSONLines Format = iota
	// CSV writes a header line then one line per event; see CSVHeader.
	CSV
)

// CSVHeader is the first line of a CSV export. time is RFC 3339 in UTC;
// arguments and attributes are JSON; count is audit.Event.Count (0 for an
// ordinary event); instance, actor and credential are audit.Event.Instance,
// Actor and Credential.
var CSVHeader = []string{
	"time", "id", "request_id", "user_id", "key_id", "outcome", "reason", "action",
	"method", "tool", "resource_uri", "prompt", "rpc_id", "session_id", "protocol_version",
	"status", "duration_ns", "client_ip", "user_agent", "arguments", "attributes", "count",
	"instance", "actor", "credential",
}

// Export writes every event matching f (newest first, starting at f.Cursor;
// f.Limit is ignored) to w in the given format, reading the database a page
// at a time. It returns the number of events written.
//
// In CSV, text cells that a spreadsheet would take for a formula (starting
// with =, +, -, @, tab or carriage return) are prefixed with a single quote,
// since user agents and tool names come from clients.
func (s *Store) Export(ctx context.Context, w io.Writer, f audit.Filter, format Format) (int64, error) {
	if format != JSONLines && format != CSV {
		return 0, fmt.Errorf("%w: unknown export format %d", ErrInvalidFilter, int(format))
	}
	bw := bufio.NewWriter(w)
	var cw *csv.Writer
	if format == CSV {
		cw = csv.NewWriter(bw)
		if err := cw.Write(CSVHeader); err != nil {
			return 0, fmt.Errorf("mcpauth/sqlaudit: export: %w", err)
		}
	}
	f.Limit = maxLimit
	var n int64
	for {
		page, err := s.Query(ctx, f)
		if err != nil {
			return n, err
		}
		for _, e := range page.Events {
			if format == CSV {
				err = cw.Write(csvRecord(e))
			} else {
				var b []byte
				if b, err = e.MarshalJSON(); err == nil {
					b = append(b, '\n')
					_, err = bw.Write(b)
				}
			}
			if err != nil {
				return n, fmt.Errorf("mcpauth/sqlaudit: export: %w", err)
			}
			n++
		}
		if page.Next == "" {
			break
		}
		f.Cursor = page.Next
	}
	if cw != nil {
		cw.Flush()
		if err := cw.Error(); err != nil {
			return n, fmt.Errorf("mcpauth/sqlaudit: export: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("mcpauth/sqlaudit: export: %w", err)
	}
	return n, nil
}

func csvRecord(e audit.Event) []string {
	attrs := ""
	if len(e.Attributes) > 0 {
		b, _ := json.Marshal(e.Attributes)
		attrs = string(b)
	}
	count := 0 // ordinary event
	if e.Count > 1 {
		count = e.Count
	}
	rec := []string{
		e.Time.UTC().Format(time.RFC3339Nano), e.ID, e.RequestID, e.UserID, e.KeyID,
		string(e.Outcome), e.Reason, string(e.Action), e.Method, e.Tool, e.ResourceURI,
		e.Prompt, e.RPCID, e.SessionID, e.ProtocolVersion, strconv.Itoa(e.Status),
		strconv.FormatInt(int64(e.Duration), 10), e.ClientIP, e.UserAgent,
		string(e.Arguments), attrs, strconv.Itoa(count), e.Instance, e.Actor, e.Credential,
	}
	for i, v := range rec {
		if i == 15 || i == 16 || i == 21 || v == "" {
			continue // numbers
		}
		switch v[0] {
		case '=', '+', '-', '@', '\t', '\r':
			rec[i] = "'" + v
		}
	}
	return rec
}
