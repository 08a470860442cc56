package sqlaudit

import (
	"encoding/hex"
	"math/bits"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/audit/audittest"
)

// TestCanonicalHashOfOrdinaryEventsUnchanged pins the chain hashes of an
// ordinary event (Count below 2, no Instance, Actor or Credential) to the values
// computed before the event_count, instance and actor columns existed:
// chains written by older versions must keep verifying. An aggregated
// event's count, the instance and the actor are covered by its hash.
func TestCanonicalHashOfOrdinaryEventsUnchanged(t *testing.T) {
	const first = "5b125d213b0bc9bc4915d45f7f06bcc0973d4c203604587db89a63d209640960"
	const second = "f748b12aef6c917a82ba45fa069c1e1696c532c1282a70f061f028585f1eae37"
	for _, count := range []int{0, 1, -5} {
		e := audittest.FullEvent("golden1")
		e.Count, e.Instance, e.Actor, e.Credential = count, "", "", ""
		r := toRow(e, time.Now)
		r.seq = 42
		h := computeHash(nil, &r)
		assert.Equal(t, first, hex.EncodeToString(h), "count %d", count)
		assert.Equal(t, second, hex.EncodeToString(computeHash(h, &r)), "count %d", count)
	}
	hashes := map[string]int{}
	for _, count := range []int{0, 2, 3, 279620} {
		e := audittest.FullEvent("golden1")
		e.Count, e.Credential = count, ""
		r := toRow(e, time.Now)
		r.seq = 42
		hashes[hex.EncodeToString(computeHash(nil, &r))] = count
	}
	assert.Len(t, hashes, 4, "every count hashes differently")

	// Version 2: instance and actor are hashed, and cannot be moved from one
	// field to the other, nor into the count, unnoticed.
	v2 := map[string]string{}
	for _, c := range []struct {
		name            string
		count           int
		instance, actor string
	}{
		{"none", 0, "", ""},
		{"instance", 0, "a:1", ""},
		{"actor", 0, "", "a:1"},
		{"both", 0, "a", ":1"},
		{"both swapped", 0, ":1", "a"},
		{"count and instance", 2, "a:1", ""},
	} {
		e := audittest.FullEvent("golden1")
		e.Count, e.Instance, e.Actor, e.Credential = c.count, c.instance, c.actor, ""
		r := toRow(e, time.Now)
		r.seq = 42
		v2[hex.EncodeToString(computeHash(nil, &r))] = c.name
	}
	assert.Len(t, v2, 6, "every instance and actor hashes differently: %v", v2)

	// Version 3: the credential kind is hashed too, only when set, and
	// cannot be traded with the actor unnoticed.
	v3 := map[string]string{}
	for _, c := range []struct{ name, actor, credential string }{
		{"none", "", ""},
		{"credential", "", "jwt"},
		{"other credential", "", "api_key"},
		{"as actor", "jwt", ""},
		{"both", "jwt", "jwt"},
	} {
		e := audittest.FullEvent("golden1")
		e.Actor, e.Credential = c.actor, c.credential
		r := toRow(e, time.Now)
		r.seq = 42
		v3[hex.EncodeToString(computeHash(nil, &r))] = c.name
		assert.Equal(t, c.credential, r.event().Credential, "round trip")
	}
	assert.Len(t, v3, 5, "every credential kind hashes differently: %v", v3)
}

// TestSetArgsLeaveOutOnlyDefaults checks SQLite's per-row column choice
// against appendArgs, which binds every column: each value kept is the one
// appendArgs binds at that column, each value left out is the column's
// default (” or 0, or NULL for arguments, attributes and hashes), and the
// statement names exactly the kept columns in order.
func TestSetArgsLeaveOutOnlyDefaults(t *testing.T) {
	e := audittest.FullEvent("e1")
	e.Action = audit.ActionRotated // FullEvent leaves it unset
	full := toRow(e, time.Now)
	full.seq, full.count = 7, 3
	full.prevHash, full.hash = []byte{1}, []byte{2}
	plain := toRow(audit.Event{ID: "e2", Time: time.Unix(5, 0)}, time.Now)
	plain.seq = 8
	zeroHash := plain
	zeroHash.prevHash, zeroHash.hash = []byte{}, []byte{} // empty but not NULL: kept
	names := strings.Split(columns, ", ")
	require.Len(t, names, nColumns)
	s := &Store{prefix: "p_", insertByColumns: map[uint32]string{}}
	for _, c := range []struct {
		name string
		r    row
		kept int
	}{{"every field", full, nColumns}, {"id and time", plain, 3}, {"empty hashes", zeroHash, 5}} {
		all := appendArgs(nil, &c.r)
		kept, cols := appendSetArgs(nil, &c.r)
		assert.Len(t, kept, c.kept, c.name)
		assert.Equal(t, bits.OnesCount32(cols), len(kept), c.name)
		var want []string
		k := 0
		for i, v := range all {
			if cols&(1<<i) != 0 {
				assert.Equal(t, v, kept[k], "%s: column %s", c.name, names[i])
				want = append(want, names[i])
				k++
				continue
			}
			switch v := v.(type) {
			case nil:
			case string:
				assert.Empty(t, v, "%s: column %s left out", c.name, names[i])
			case int64:
				assert.Zero(t, v, "%s: column %s left out", c.name, names[i])
			default:
				t.Errorf("%s: column %s left out with value %v", c.name, names[i], v)
			}
		}
		q := s.insertColumnsStatement(cols)
		assert.Equal(t, "INSERT INTO p_audit_events ("+strings.Join(want, ", ")+") VALUES ("+strings.TrimSuffix(strings.Repeat("?,", len(want)), ",")+")", q, c.name)
	}
}
