package ratelimit_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

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
