package audit_test

import (
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
