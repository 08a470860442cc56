package ratelimit_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth/mcpauth/ratelimit"
)

var (
	free = ratelimit.Limit{Rate: 60, Per: time.Minute}
	paid = ratelimit.Limit{Rate: 300, Per: time.Minute}
	team = ratelimit.Limit{Name: "team-plan", Rate: 300, Per: time.Minute, Burst: 600}
)

func tiered() *ratelimit.Policy {
	return &ratelimit.Policy{
		Tiers:      map[string]ratelimit.Limit{"free": free, "paid": paid, "team": team},
		TierScopes: map[string]string{"plan:paid": "paid", "plan:team": "team", "plan:free": "free"},
	}
}

func TestPolicyResolve(t *testing.T) {
	t.Parallel()
	withName := func(l ratelimit.Limit, n string) ratelimit.Limit { l.Name = n; return l }
	for _, tc := range []struct {
		name       string
		policy     *ratelimit.Policy
		subject    ratelimit.Subject
		wantBucket string
		wantLimit  ratelimit.Limit
	}{
		{"zero policy", &ratelimit.Policy{}, ratelimit.Subject{KeyID: "K1", UserID: "u1"},
			"k:K1", ratelimit.DefaultLimit},
		{"default without name", &ratelimit.Policy{Default: ratelimit.Limit{Rate: 5, Per: time.Second}},
			ratelimit.Subject{KeyID: "K1"}, "k:K1", ratelimit.Limit{Name: "default", Rate: 5, Per: time.Second}},
		{"metadata tier", tiered(), ratelimit.Subject{KeyID: "K1", Metadata: map[string]string{"tier": "paid"}},
			"k:K1", withName(paid, "paid")},
		{"tier keeps its own name", tiered(), ratelimit.Subject{KeyID: "K1", Metadata: map[string]string{"tier": "team"}},
			"k:K1", team},
		{"custom metadata key", func() *ratelimit.Policy { p := tiered(); p.TierMetadataKey = "plan"; return p }(),
			ratelimit.Subject{KeyID: "K1", Metadata: map[string]string{"plan": "free", "tier": "paid"}},
			"k:K1", withName(free, "free")},
		{"unknown metadata tier falls to scopes", tiered(),
			ratelimit.Subject{KeyID: "K1", Metadata: map[string]string{"tier": "gold"}, Scopes: []string{"plan:free"}},
			"k:K1", withName(free, "free")},
		{"unknown metadata tier falls to default", tiered(),
			ratelimit.Subject{KeyID: "K1", Metadata: map[string]string{"tier": "gold"}}, "k:K1", ratelimit.DefaultLimit},
		{"metadata wins over scopes", tiered(),
			ratelimit.Subject{KeyID: "K1", Metadata: map[string]string{"tier": "free"}, Scopes: []string{"plan:team"}},
			"k:K1", withName(free, "free")},
		{"scope tier", tiered(), ratelimit.Subject{KeyID: "K1", Scopes: []string{"read", "plan:paid"}},
			"k:K1", withName(paid, "paid")},
		{"most generous scope tier", tiered(), ratelimit.Subject{KeyID: "K1", Scopes: []string{"plan:free", "plan:team", "plan:paid"}},
			"k:K1", team},
		{"override wins", tiered(),
			ratelimit.Subject{KeyID: "K1", Override: 7, Metadata: map[string]string{"tier": "paid"}},
			"k:K1", ratelimit.Limit{Name: "key", Rate: 7, Per: time.Minute, Burst: 7}},
		{"by user", &ratelimit.Policy{By: ratelimit.ByUser}, ratelimit.Subject{KeyID: "K1", UserID: "K1"},
			"u:K1", ratelimit.DefaultLimit},
		{"by user without user falls back to key", &ratelimit.Policy{By: ratelimit.ByUser},
			ratelimit.Subject{KeyID: "K1"}, "k:K1", ratelimit.DefaultLimit},
		{"by user, override keeps its own bucket", &ratelimit.Policy{By: ratelimit.ByUser},
			ratelimit.Subject{KeyID: "K1", UserID: "u1", Override: 10},
			"k:K1", ratelimit.Limit{Name: "key", Rate: 10, Per: time.Minute, Burst: 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.NoError(t, tc.policy.Validate())
			bucket, got := tc.policy.Resolve(tc.subject)
			assert.Equal(t, tc.wantBucket, bucket)
			assert.Equal(t, tc.wantLimit, got)
		})
	}
}

func TestPolicyBucketsDoNotCollide(t *testing.T) {
	byKey := &ratelimit.Policy{}
	byUser := &ratelimit.Policy{By: ratelimit.ByUser}
	k, _ := byKey.Resolve(ratelimit.Subject{KeyID: "same"})
	u, _ := byUser.Resolve(ratelimit.Subject{KeyID: "other", UserID: "same"})
	assert.NotEqual(t, k, u)
}

func TestPolicyCost(t *testing.T) {
	p := &ratelimit.Policy{Costs: map[string]int{
		"tools/call:search_documents": 5,
		"tools/call":                  2,
		"ping":                        0,
		"initialize":                  3,
	}}
	for _, tc := range []struct {
		method, name string
		want         int
	}{
		{"tools/call", "search_documents", 5},
		{"tools/call", "echo", 2},
		{"tools/call", "", 2},
		{"ping", "", 0},
		{"resources/read", "file:///x", 1},
		{"initialize", "", 3}, // configured
		{"notifications/initialized", "", 0},
		{"GET", "", 0},
		{"prompts/get", "p", 1},
	} {
		assert.Equal(t, tc.want, p.Cost(tc.method, tc.name), "%s %s", tc.method, tc.name)
	}
	assert.Equal(t, 1, (&ratelimit.Policy{}).Cost("tools/call", "x"))
	for _, m := range ratelimit.FreeMethods {
		assert.Zero(t, (&ratelimit.Policy{}).Cost(m, ""), "%s is free by default", m)
	}
	for _, m := range []string{"tools/call", "resources/read", "prompts/get", "tools/list", "completion/complete", "notifications/progress"} {
		assert.Equal(t, 1, (&ratelimit.Policy{}).Cost(m, ""), "%s costs 1 by default", m)
	}

	allocs := testing.AllocsPerRun(100, func() { p.Cost("tools/call", "search_documents") })
	assert.Zero(t, allocs)
}

func TestPolicyValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		policy ratelimit.Policy
	}{
		{"bad default", ratelimit.Policy{Default: ratelimit.Limit{Rate: 1}}},
		{"bad tier", ratelimit.Policy{Tiers: map[string]ratelimit.Limit{"x": {Rate: -1, Per: time.Second}}}},
		{"empty tier name", ratelimit.Policy{Tiers: map[string]ratelimit.Limit{"": free}}},
		{"non-ASCII tier name", ratelimit.Policy{Tiers: map[string]ratelimit.Limit{"grün": free}}},
		{"non-ASCII limit name", ratelimit.Policy{Default: ratelimit.Limit{Name: "a\nb", Rate: 1, Per: time.Second}}},
		{"scope names unknown tier", ratelimit.Policy{TierScopes: map[string]string{"s": "gold"}}},
		{"negative cost", ratelimit.Policy{Costs: map[string]int{"ping": -1}}},
		{"unknown by", ratelimit.Policy{By: 9}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.ErrorIs(t, tc.policy.Validate(), ratelimit.ErrInvalid)
		})
	}
	require.NoError(t, tiered().Validate())
}
