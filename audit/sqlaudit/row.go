package sqlaudit

import (
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mcpauth/mcpauth/audit"
)

// row is an event as stored: strings made safe for every database, the
// time in microseconds, arguments and attributes as JSON text. The chain
// hashes this form, so Verify can recompute it from what it reads back.
type row struct {
	seq        int64
	id         string
	timeUS     int64
	strs       [nStr]string // request_id ... user_agent, in column order
	status     int64
	durationNS int64
	arguments  string // "" for none
	attributes string // "" for none
	count      int64  // Event.Count; 0 below 2
	instance   string // Event.Instance
	actor      string // Event.Actor
	credential string // Event.Credential
	prevHash   []byte
	hash       []byte
}

// nStr is the number of text columns between event_time and status.
const nStr = 15

// columns lists every column of the events table in row order.
const columns = "seq, id, event_time, request_id, user_id, key_id, outcome, reason, action, method, tool, " +
	"resource_uri, prompt, rpc_id, session_id, protocol_version, client_ip, user_agent, " +
	"status, duration_ns, arguments, attributes, event_count, instance, actor, credential, prev_hash, hash"

const nColumns = 28

// clean makes s storable as TEXT everywhere: valid UTF-8 without NUL
// (PostgreSQL refuses both).
func clean(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

func toRow(e audit.Event, now func() time.Time) row {
	if e.ID == "" {
		e.ID = audit.NewEventID()
	}
	if e.Time.IsZero() {
		e.Time = now()
	}
	r := row{
		id:         clean(e.ID),
		timeUS:     e.Time.UnixMicro(),
		status:     int64(e.Status),
		durationNS: int64(e.Duration),
		instance:   clean(e.Instance),
		actor:      clean(e.Actor),
		credential: clean(e.Credential),
	}
	if e.Count > 1 {
		r.count = int64(e.Count)
	}
	for i, v := range [nStr]string{
		e.RequestID, e.UserID, e.KeyID, string(e.Outcome), e.Reason, string(e.Action), e.Method, e.Tool,
		e.ResourceURI, e.Prompt, e.RPCID, e.SessionID, e.ProtocolVersion, e.ClientIP, e.UserAgent,
	} {
		r.strs[i] = clean(v)
	}
	if len(e.Arguments) > 0 {
		if json.Valid(e.Arguments) {
			r.arguments = clean(string(e.Arguments))
		} else {
			b, _ := json.Marshal(string(e.Arguments))
			r.arguments = string(b)
		}
	}
	if len(e.Attributes) > 0 {
		b, _ := json.Marshal(e.Attributes) // sorted keys: deterministic
		r.attributes = clean(string(b))
	}
	return r
}

func (r *row) event() audit.Event {
	e := audit.Event{
		ID:              r.id,
		Time:            time.UnixMicro(r.timeUS).UTC(),
		RequestID:       r.strs[0],
		UserID:          r.strs[1],
		KeyID:           r.strs[2],
		Outcome:         audit.Outcome(r.strs[3]),
		Reason:          r.strs[4],
		Action:          audit.Action(r.strs[5]),
		Method:          r.strs[6],
		Tool:            r.strs[7],
		ResourceURI:     r.strs[8],
		Prompt:          r.strs[9],
		RPCID:           r.strs[10],
		SessionID:       r.strs[11],
		ProtocolVersion: r.strs[12],
		ClientIP:        r.strs[13],
		UserAgent:       r.strs[14],
		Status:          int(r.status),
		Duration:        time.Duration(r.durationNS),
		Instance:        r.instance,
		Actor:           r.actor,
		Credential:      r.credential,
	}
	if r.count > 1 {
		e.Count = int(r.count)
	}
	if r.arguments != "" {
		e.Arguments = json.RawMessage(r.arguments)
	}
	if r.attributes != "" {
		_ = json.Unmarshal([]byte(r.attributes), &e.Attributes)
	}
	return e
}

// canonicalVersion starts the canonical form of rows without an instance,
// actor or credential kind, canonicalVersion2 that of rows with an instance
// or actor, canonicalVersion3 that of rows with a credential kind, so that
// each format can be told apart.
const (
	canonicalVersion  = "mcpauth-audit-v1"
	canonicalVersion2 = "mcpauth-audit-v2"
	canonicalVersion3 = "mcpauth-audit-v3"
)

// computeHash returns SHA-256(prev || canonical form of r). A missing prev
// (the first event) is 32 zero bytes.
//
// Version 1, for rows with neither instance nor actor: the version tag,
// then seq, time, status and duration as 8-byte big-endian integers, then
// each text field (id, the 15 strs, arguments, attributes) as a uvarint
// length and its bytes, then, only for an aggregated event (count 2 or
// more), the count as an 8-byte big-endian integer. The count comes last
// and only when set, so that rows written before the event_count column
// existed (count 0) hash exactly as they did then; the text fields are
// length-prefixed, so whatever follows the attributes is the count.
//
// Version 2, for rows with an instance or an actor: the same up to the
// attributes, then the count as an 8-byte integer (always), then instance
// and actor as length-prefixed text. Rows written before those columns
// existed have neither, so they keep hashing as version 1 and their chains
// keep verifying; the version tag tells the two forms apart.
//
// Version 3, for rows with a credential kind (Event.Credential): version 2,
// then the credential kind as length-prefixed text. Rows written before the
// credential column existed have none and keep their version.
func computeHash(prev []byte, r *row) []byte {
	sum := sha256.Sum256(appendCanonical(make([]byte, 0, 512), prev, r))
	return sum[:]
}

// appendCanonical appends prev (32 zero bytes when empty) and the canonical
// form of r to buf: the bytes computeHash hashes.
func appendCanonical(buf, prev []byte, r *row) []byte {
	var zero [sha256.Size]byte
	if len(prev) == 0 {
		prev = zero[:]
	}
	v3 := r.credential != ""
	v2 := v3 || r.instance != "" || r.actor != ""
	buf = append(buf, prev...)
	switch {
	case v3:
		buf = append(buf, canonicalVersion3...)
	case v2:
		buf = append(buf, canonicalVersion2...)
	default:
		buf = append(buf, canonicalVersion...)
	}
	buf = binary.BigEndian.AppendUint64(buf, uint64(r.seq))
	buf = binary.BigEndian.AppendUint64(buf, uint64(r.timeUS))
	buf = binary.BigEndian.AppendUint64(buf, uint64(r.status))
	buf = binary.BigEndian.AppendUint64(buf, uint64(r.durationNS))
	buf = appendLenPrefixed(buf, r.id)
	for _, s := range r.strs {
		buf = appendLenPrefixed(buf, s)
	}
	buf = appendLenPrefixed(buf, r.arguments)
	buf = appendLenPrefixed(buf, r.attributes)
	switch {
	case v2:
		buf = binary.BigEndian.AppendUint64(buf, uint64(r.count))
		buf = appendLenPrefixed(buf, r.instance)
		buf = appendLenPrefixed(buf, r.actor)
		if v3 {
			buf = appendLenPrefixed(buf, r.credential)
		}
	case r.count > 1:
		buf = binary.BigEndian.AppendUint64(buf, uint64(r.count))
	}
	return buf
}

func appendLenPrefixed(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

// scanRow reads the columns of `columns` into r.
func scanRow(sc interface{ Scan(...any) error }, r *row) error {
	var t timeCol
	var args, attrs sql.NullString
	dest := make([]any, 0, nColumns)
	dest = append(dest, &r.seq, &r.id, &t)
	for i := range nStr {
		dest = append(dest, &r.strs[i])
	}
	dest = append(dest, &r.status, &r.durationNS, &args, &attrs, &r.count, &r.instance, &r.actor, &r.credential, &r.prevHash, &r.hash)
	if err := sc.Scan(dest...); err != nil {
		return err
	}
	r.timeUS = t.us
	r.arguments = args.String
	r.attributes = attrs.String
	return nil
}
