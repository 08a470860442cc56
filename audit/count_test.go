package audit_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/audit"
)

// TestEventCountEncoding: an aggregated event's Count is in JSON and slog
// under mcpauth.event.count; an ordinary event's (below 2) is left out and
// reads back as 0.
func TestEventCountEncoding(t *testing.T) {
	cases := []struct {
		count, want, messages int
	}{{0, 0, 1}, {1, 0, 1}, {-4, 0, 1}, {2, 2, 2}, {279620, 279620, 279620}}
	for _, c := range cases {
		e := audit.Event{Time: time.Unix(0, 0), ID: "x", Count: c.count}
		assert.Equal(t, c.messages, e.Messages())
		b, err := e.MarshalJSON()
		require.NoError(t, err)
		assert.Equal(t, c.want != 0, strings.Contains(string(b), `"`+audit.KeyCount+`":`), "%d: %s", c.count, b)
		var back audit.Event
		require.NoError(t, back.UnmarshalJSON(b))
		assert.Equal(t, c.want, back.Count)

		var slogCount slog.Value
		for _, a := range e.Attrs() {
			if a.Key == audit.KeyCount {
				slogCount = a.Value
			}
		}
		if c.want == 0 {
			assert.Equal(t, slog.KindAny, slogCount.Kind(), "%d: no slog attribute", c.count)
		} else {
			assert.Equal(t, int64(c.want), slogCount.Int64())
		}
	}
	var back audit.Event
	require.NoError(t, back.UnmarshalJSON([]byte(`{"mcpauth.event.count":1}`)))
	assert.Zero(t, back.Count, "below 2 reads back as 0")
}
