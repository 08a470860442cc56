package ratelimit_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/ratelimit"
)

func TestSetHeaders(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		d      ratelimit.Decision
		legacy bool
		want   map[string]string
	}{
		{
			name: "allowed",
			d:    ratelimit.Decision{Allowed: true, Limit: 100, Remaining: 42, Window: time.Minute, ResetAfter: 17*time.Second + time.Millisecond, Policy: "default"},
			want: map[string]string{
				"RateLimit-Policy":  `"default";q=100;w=60`,
				"RateLimit":         `"default";r=42;t=18`,
				"Retry-After":       "",
				"X-RateLimit-Limit": "",
			},
		},
		{
			name:   "allowed with legacy",
			d:      ratelimit.Decision{Allowed: true, Limit: 60, Remaining: 59, Window: time.Minute, ResetAfter: time.Second, Policy: "free"},
			legacy: true,
			want: map[string]string{
				"RateLimit-Policy":      `"free";q=60;w=60`,
				"RateLimit":             `"free";r=59;t=1`,
				"X-RateLimit-Limit":     "60",
				"X-RateLimit-Remaining": "59",
				"X-RateLimit-Reset":     "1",
				"Retry-After":           "",
			},
		},
		{
			name: "denied rounds Retry-After up",
			d:    ratelimit.Decision{Limit: 100, Window: time.Minute, ResetAfter: time.Minute, RetryAfter: 600*time.Millisecond + time.Microsecond, Policy: "default"},
			want: map[string]string{
				"RateLimit":   `"default";r=0;t=60`,
				"Retry-After": "1",
			},
		},
		{
			name: "denied exact seconds",
			d:    ratelimit.Decision{Limit: 5, Window: time.Hour, ResetAfter: time.Hour, RetryAfter: 12 * time.Minute, Policy: "slow"},
			want: map[string]string{
				"RateLimit-Policy": `"slow";q=5;w=3600`,
				"Retry-After":      "720",
			},
		},
		{
			name: "denied with a tiny wait still says 1",
			d:    ratelimit.Decision{Limit: 5, Window: time.Second, RetryAfter: time.Nanosecond, Policy: "x"},
			want: map[string]string{"Retry-After": "1"},
		},
		{
			name: "sub-second window is left out",
			d:    ratelimit.Decision{Allowed: true, Limit: 10, Remaining: 9, Window: 100 * time.Millisecond, ResetAfter: 10 * time.Millisecond, Policy: "fast"},
			want: map[string]string{
				"RateLimit-Policy": `"fast";q=10`,
				"RateLimit":        `"fast";r=9;t=1`,
			},
		},
		{
			name: "name is escaped as an sf-string",
			d:    ratelimit.Decision{Allowed: true, Limit: 1, Window: time.Second, Policy: "a\"b\\c\x01é"},
			want: map[string]string{"RateLimit-Policy": `"a\"b\\c???";q=1;w=1`},
		},
		{
			name: "empty name is default",
			d:    ratelimit.Decision{Allowed: true, Limit: 1, Window: time.Second},
			want: map[string]string{"RateLimit": `"default";r=0;t=0`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			h.Set("RateLimit", "stale")
			ratelimit.SetHeaders(h, tc.d, tc.legacy)
			for k, want := range tc.want {
				assert.Equal(t, want, h.Get(k), k)
			}
		})
	}
}

// Many policies (more than the cache of RateLimit-Policy values holds) each
// get their own value, however they share its slots.
func TestSetHeadersManyPolicies(t *testing.T) {
	for round := range 2 {
		for i := range 300 {
			name := "p" + strconv.Itoa(i)
			d := ratelimit.Decision{Allowed: true, Limit: i + 1, Remaining: i, Window: time.Duration(1+i%3) * time.Minute, Policy: name}
			h := http.Header{}
			ratelimit.SetHeaders(h, d, false)
			want := `"` + name + `";q=` + strconv.Itoa(i+1) + `;w=` + strconv.Itoa(60*(1+i%3))
			require.Equal(t, want, h.Get("RateLimit-Policy"), "round %d", round)
			require.Equal(t, `"`+name+`";r=`+strconv.Itoa(i)+`;t=0`, h.Get("RateLimit"))
		}
	}
}

// With its HeaderValues in memory of the caller's, writing the headers of
// a known policy allocates nothing; SetHeaders allocates only its
// HeaderValues. Long policy names still work.
func TestHeaderValuesAllocations(t *testing.T) {
	d := ratelimit.Decision{Allowed: true, Limit: 100, Remaining: 42, Window: time.Minute, ResetAfter: 18 * time.Second, Policy: "default"}
	h := http.Header{}
	var hv ratelimit.HeaderValues
	hv.Set(h, d, false) // fills the policy cache
	allocs := testing.AllocsPerRun(100, func() { hv.Set(h, d, false) })
	assert.Zero(t, allocs)
	allocs = testing.AllocsPerRun(100, func() { ratelimit.SetHeaders(h, d, false) })
	assert.Equal(t, 1.0, allocs)
	assert.Equal(t, []string{`"default";r=42;t=18`}, h[ratelimit.HeaderRateLimit])

	long := strings.Repeat("n", 200)
	d.Policy = long
	hv = ratelimit.HeaderValues{}
	hv.Set(h, d, false)
	assert.Equal(t, `"`+long+`";r=42;t=18`, h.Get("RateLimit"))
	assert.Equal(t, `"`+long+`";q=100;w=60`, h.Get("RateLimit-Policy"))
}
