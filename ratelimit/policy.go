package ratelimit

import (
	"fmt"
	"maps"
	"sort"
	"time"
)

// DefaultLimit is the budget used when a Policy sets none: 100 requests per
// minute, named "default".
var DefaultLimit = Limit{Name: "default", Rate: 100, Per: time.Minute, Burst: 100}

// By chooses whose budget a request spends.
type By int

const (
	// ByKey gives every API key its own budget (the default).
	ByKey By = iota
	// ByUser makes all keys of one user share one budget.
	ByUser
)

// Subject is what a Policy knows about the caller.
type Subject struct {
	KeyID    string
	UserID   string
	Scopes   []string
	Metadata map[string]string
	// Override is the key's own limit in requests per minute
	// (store.Key.RateLimit); 0 means none.
	Override int
}

// Policy chooses the bucket and the limit for a caller, and the cost of an
// operation. The zero Policy limits each key to DefaultLimit with every
// operation costing 1. A Policy is read-only once in use; its methods are
// pure and safe for concurrent use.
type Policy struct {
	// Default applies when no override or tier does. Zero means DefaultLimit.
	// An empty Name means "default".
	Default Limit
	// Tiers maps tier names to limits ("free": 60/min, "paid": 300/min). An
	// empty Limit.Name means the tier name.
	Tiers map[string]Limit
	// TierMetadataKey is the key metadata entry naming the tier. Default
	// "tier". A metadata tier wins over TierScopes; an unknown tier name
	// falls through to TierScopes, then Default.
	TierMetadataKey string
	// TierScopes maps a scope to a tier name: a key holding the scope gets
	// that tier. When several match, the most generous tier wins.
	TierScopes map[string]string
	// By selects per-key (default) or per-user budgets. With ByUser, a key
	// that has its own Override keeps its own budget, and the tier should
	// be a property of the user: keys of one user share one bucket, whose
	// limit follows the key last used.
	By By
	// Costs maps operations to costs: "tools/call:search_documents" (method
	// and tool, prompt or resource name), then "tools/call" (method), are
	// looked up in that order; "GET" and "DELETE" are the session's stream
	// and its end. Without an entry, the protocol messages in FreeMethods
	// cost 0 and anything else costs 1. Zero makes an operation free.
	Costs map[string]int
}

// Clone returns a deep copy of p (nil for nil): callers that keep a Policy
// (mcpauth.New does) clone it, so that changing the caller's maps later
// changes nothing and races with nothing.
func (p *Policy) Clone() *Policy {
	if p == nil {
		return nil
	}
	c := *p
	c.Tiers = maps.Clone(p.Tiers)
	c.TierScopes = maps.Clone(p.TierScopes)
	c.Costs = maps.Clone(p.Costs)
	return &c
}

// OverrideName is the policy name of a per-key override in headers.
const OverrideName = "key"

// Validate reports a policy the limiters would refuse or that cannot mean
// what it says, with an error wrapping ErrInvalid.
func (p *Policy) Validate() error {
	if p.Default != (Limit{}) {
		if err := p.Default.Validate(); err != nil {
			return fmt.Errorf("default limit: %w", err)
		}
	}
	for _, name := range sortedKeys(p.Tiers) {
		if name == "" {
			return fmt.Errorf("%w: empty tier name", ErrInvalid)
		}
		if err := p.Tiers[name].Validate(); err != nil {
			return fmt.Errorf("tier %q: %w", name, err)
		}
		if err := (Limit{Name: name, Rate: 1, Per: 1}).Validate(); err != nil {
			return fmt.Errorf("tier %q: %w", name, err)
		}
	}
	for _, scope := range sortedKeys(p.TierScopes) {
		if _, ok := p.Tiers[p.TierScopes[scope]]; !ok {
			return fmt.Errorf("%w: scope %q names unknown tier %q", ErrInvalid, scope, p.TierScopes[scope])
		}
	}
	for _, op := range sortedKeys(p.Costs) {
		if p.Costs[op] < 0 {
			return fmt.Errorf("%w: cost of %q is negative", ErrInvalid, op)
		}
	}
	if p.By != ByKey && p.By != ByUser {
		return fmt.Errorf("%w: unknown By %d", ErrInvalid, p.By)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Resolve returns the bucket s spends from and its limit. Buckets are
// "k:<key ID>" or "u:<user ID>", so a key ID never collides with a user
// ID. Precedence: the key's Override (Rate Override per minute, burst
// Override, name "key"), then the metadata tier, then the scope tiers, then
// Default.
func (p *Policy) Resolve(s Subject) (bucket string, limit Limit) {
	bucket = "k:" + s.KeyID
	if p.By == ByUser && s.UserID != "" && s.Override <= 0 {
		bucket = "u:" + s.UserID
	}
	if s.Override > 0 {
		return bucket, Limit{Name: OverrideName, Rate: s.Override, Per: time.Minute, Burst: s.Override}
	}
	if l, ok := p.tier(s); ok {
		return bucket, l
	}
	l := p.Default
	if l == (Limit{}) {
		l = DefaultLimit
	}
	if l.Name == "" {
		l.Name = "default"
	}
	return bucket, l
}

func (p *Policy) tier(s Subject) (Limit, bool) {
	if len(p.Tiers) == 0 {
		return Limit{}, false
	}
	mk := p.TierMetadataKey
	if mk == "" {
		mk = "tier"
	}
	if name, ok := s.Metadata[mk]; ok {
		if l, ok := p.Tiers[name]; ok {
			return named(l, name), true
		}
	}
	var best Limit
	found := false
	for _, sc := range s.Scopes {
		name, ok := p.TierScopes[sc]
		if !ok {
			continue
		}
		l, ok := p.Tiers[name]
		if !ok {
			continue
		}
		l = named(l, name)
		if !found || more(l, best) {
			best, found = l, true
		}
	}
	return best, found
}

func named(l Limit, name string) Limit {
	if l.Name == "" {
		l.Name = name
	}
	return l
}

// more reports whether a is more generous than b: a higher rate, then a
// larger burst, then (for determinism) the smaller name.
func more(a, b Limit) bool {
	ra, rb := float64(a.Rate)/a.Per.Seconds(), float64(b.Rate)/b.Per.Seconds()
	if ra != rb {
		return ra > rb
	}
	if ba, bb := a.EffectiveBurst(), b.EffectiveBurst(); ba != bb {
		return ba > bb
	}
	return a.Name < b.Name
}

// FreeMethods are the protocol messages that cost nothing unless
// Policy.Costs names them: connecting, keeping alive and closing a session
// never spends the budget meant for tool calls, reads and prompts. "GET"
// (the session's event stream) and "DELETE" (its end) are HTTP methods.
var FreeMethods = []string{
	"initialize", "notifications/initialized", "server/discover", "ping",
	"notifications/cancelled", "GET", "DELETE",
}

// defaultCost is the cost of an operation Costs does not name.
func defaultCost(method string) int {
	switch method {
	case "initialize", "notifications/initialized", "server/discover", "ping",
		"notifications/cancelled", "GET", "DELETE":
		return 0
	}
	return 1
}

// Cost returns the cost of one MCP operation: Costs["method:name"], else
// Costs["method"], else 0 for FreeMethods and 1 for the rest. name is the
// tool, prompt or resource name, or empty. Cost does not allocate for names
// up to about 100 bytes.
func (p *Policy) Cost(method, name string) int {
	if len(p.Costs) == 0 {
		return defaultCost(method)
	}
	if name != "" {
		var buf [128]byte
		b := append(buf[:0], method...)
		b = append(b, ':')
		b = append(b, name...)
		if c, ok := p.Costs[string(b)]; ok {
			return c
		}
	}
	if c, ok := p.Costs[method]; ok {
		return c
	}
	return defaultCost(method)
}
