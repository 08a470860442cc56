package audit_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/mcpauth/mcpauth/audit"
)

func TestAppendEventID(t *testing.T) {
	var buf [audit.EventIDLen]byte
	allocs := testing.AllocsPerRun(100, func() { audit.AppendEventID(buf[:0]) })
	assert.Zero(t, allocs)
	a, b := string(audit.AppendEventID(nil)), audit.NewEventID()
	assert.Len(t, a, audit.EventIDLen)
	assert.Len(t, b, audit.EventIDLen)
	assert.Less(t, a, b, "IDs increase within a process")
	assert.Equal(t, a[:10], b[:10], "one prefix per process")
}

// An ID's last 10 characters are the process's counter, 5 bits a
// character, most significant first: consecutive IDs count up by one
// (across carries in every character).
func TestEventIDCounter(t *testing.T) {
	const alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
	counter := func(id string) uint64 {
		var n uint64
		for _, c := range []byte(id[10:]) {
			i := strings.IndexByte(alphabet, c)
			if i < 0 {
				t.Fatalf("%q: %q is not in the alphabet", id, c)
			}
			n = n<<5 | uint64(i)
		}
		return n
	}
	prev := counter(string(audit.AppendEventID(nil)))
	for range 5000 {
		n := counter(audit.NewEventID())
		if n != (prev+1)&(1<<50-1) {
			t.Fatalf("counter went from %d to %d", prev, n)
		}
		prev = n
	}
}
