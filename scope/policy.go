package scope

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// MCP methods the policy knows. Every other method (initialize, ping,
// notifications/*, tools/list, ...) and every response needs only a valid
// key.
const (
	MethodToolsCall            = "tools/call"
	MethodResourcesRead        = "resources/read"
	MethodResourcesSubscribe   = "resources/subscribe"
	MethodResourcesUnsubscribe = "resources/unsubscribe"
	MethodPromptsGet           = "prompts/get"
	MethodCompletionComplete   = "completion/complete"
)

// Completion reference types (params.ref.type of completion/complete).
const (
	RefPrompt   = "ref/prompt"
	RefResource = "ref/resource"
)

// Kind is what Visible is asked about.
type Kind string

// Kinds of listed items.
const (
	KindTool     Kind = "tool"
	KindResource Kind = "resource" // resources and resource templates (by URI or URI template)
	KindPrompt   Kind = "prompt"
)

// Operation is what one JSON-RPC message asks for, as far as the policy
// cares.
type Operation struct {
	// Method is the JSON-RPC method; "" for a response.
	Method string
	// Name is params.name (tools/call, prompts/get).
	Name string
	// URI is params.uri (resources/read, subscribe, unsubscribe).
	URI string
	// Ref is params.ref.name or params.ref.uri (completion/complete).
	Ref string
	// RefType is params.ref.type ("ref/prompt", "ref/resource"). A
	// completion whose Ref no completion rule matches is decided like
	// prompts/get (ref/prompt) or resources/read (ref/resource) of the Ref;
	// any other RefType follows UnlistedCompletions.
	RefType string
}

// Verdict is the policy's answer for one operation.
type Verdict struct {
	// Allowed is true when the operation may proceed.
	Allowed bool
	// Blocked is true when a blocklist pattern matched, or when a resource
	// URI was refused as unparseable or ambiguous (see Rule.Match): no
	// scope, admin included, can allow the operation.
	Blocked bool
	// Required are the scopes the operation needs (all of them), nil when
	// a valid key suffices or nothing can allow it. Read-only: the slice is
	// shared by every verdict of the same rule.
	Required []Scope
	// Reason says why the operation was refused, in words a model can act
	// on ("tool \"delete_document\" requires scope documents:delete"); ""
	// when allowed.
	Reason string
}

// Scope returns Required joined by spaces, the value of the scope
// parameter of a WWW-Authenticate insufficient_scope challenge.
func (v Verdict) Scope() string { return Join(v.Required) }

// Rule requires scopes for the tools, resources, prompts or completion refs
// that Match names.
type Rule struct {
	// Match is an exact tool name, prompt name, resource URI or completion
	// ref, or a glob where "*" matches any run of characters, "/" included
	// ("search_*", "file:///reports/*"). Exact matches win over globs;
	// among globs the first listed wins. Matching is case-sensitive.
	//
	// Resource URIs are matched in canonical form: scheme and host
	// lower-cased, query and fragment dropped, default ports (http 80,
	// https 443, ws 80, wss 443) dropped, host and path percent-decoded
	// until nothing changes, backslashes read as slashes, repeated slashes
	// collapsed, dot segments resolved, trailing slash dropped. Write
	// resource rules in that form ("docs://documents/*", not
	// "DOCS://documents/./*"); a rule in another form never matches.
	//
	// A URI is refused (Verdict.Blocked, whatever the scopes) when it has
	// no scheme, user information ("docs://x@users/..."), a control byte
	// (raw or encoded, "%00"), a non-ASCII or malformed host, a port on a
	// scheme other than http, https, ws and wss that no resource rule
	// names with that port ("docs://users:80/..."), more than four levels
	// of percent-encoding, or ".." segments that climb above the root or
	// back out of the literal prefix of the rule it matches
	// ("docs://documents/..%2F..%2Fusers/..." or
	// "file:///reports/../reports/x" for "file:///reports/*"): servers
	// disagree on what such URIs name, so none is guessed.
	//
	// The path stays case-sensitive: "file:///Reports/x" does not match
	// "file:///reports/*". On a server whose resources are case-insensitive
	// (macOS or Windows file systems), keep unlisted_resources at its
	// default (deny), or case variants of a scoped path are reachable as
	// unlisted resources.
	Match string `json:"match"`
	// Scopes are all required. Empty means a valid key suffices.
	Scopes []string `json:"scopes"`
}

// Unlisted says what happens to a tool, resource, prompt or completion that
// no rule matches. The zero value denies it.
type Unlisted struct {
	// Allow lets any valid key through.
	Allow bool `json:"allow,omitempty"`
	// Scopes, if set, are required (all of them). Exclusive with Allow.
	Scopes []string `json:"scopes,omitempty"`
}

// Blocklist holds patterns that can never be reached, whatever the scopes.
// A pattern is a glob ("*" matches any run of characters) matched
// case-insensitively (ASCII) against the whole name or URI, or, prefixed
// with "re:", a Go regular expression (RE2, unanchored unless you anchor
// it: "re:^user:.*:password$") matched case-insensitively too (it is
// compiled with the (?i) flag; Unicode simple folding, so "K" also
// matches the Kelvin sign). Case-insensitive blocking is deliberate: a
// blocklist that over-blocks a resource differing only in case is safe,
// one that misses "docs://users/Alice/API_KEYS" on a case-insensitive
// server is not. Write "(?-i)" inside a pattern to match case exactly.
//
// Resource patterns are matched against the canonical form of the URI
// (see Rule.Match; scheme and host are lower-cased there anyway), and
// also against the URI as sent and, when a non-default port was kept,
// against the canonical form without the port.
type Blocklist struct {
	Tools     []string `json:"tools,omitempty"`
	Resources []string `json:"resources,omitempty"`
	Prompts   []string `json:"prompts,omitempty"`
}

// DefaultBlocked are resource URI patterns for secrets no AI agent should
// read: environment files, private keys and keystores, SSH and GnuPG
// directories (~/.ssh, /root/.ssh, /home/*/.ssh, authorized_keys), system
// password files (/etc/passwd, /etc/shadow*, /etc/gshadow*, /etc/sudoers*),
// cloud credentials (AWS, gcloud, Azure), Kubernetes credentials
// (~/.kube, service-account tokens under /var/run/secrets), Docker,
// Git and package-registry credentials, process environments. They are
// globs matched case-insensitively against the canonical URI (see
// Rule.Match), so "FILE:///ETC/%73hadow" and "file:///x/../etc/shadow" are
// blocked like "file:///etc/shadow". A policy blocks them unless
// PolicyConfig.UnsafeNoDefaultBlocked is set. The slice is a copy each call.
func DefaultBlocked() []string {
	return []string{
		"*/.env", "*/.env.*", "*/.envrc",
		"*/id_rsa*", "*/id_dsa*", "*/id_ecdsa*", "*/id_ed25519*", "*/authorized_keys*", "*/known_hosts",
		"*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore",
		"*/.ssh", "*/.ssh/*", "*/.gnupg", "*/.gnupg/*",
		"*/etc/passwd", "*/etc/shadow*", "*/etc/gshadow*", "*/etc/sudoers*", "*/etc/master.passwd",
		"*/.aws/credentials", "*/.aws/config", "*/.aws/sso/*", "*/.config/gcloud", "*/.config/gcloud/*", "*/.azure", "*/.azure/*",
		"*/.kube/config", "*/.kube/*", "*/var/run/secrets/*", "*/run/secrets/*",
		"*/.docker/config.json",
		"*/.netrc", "*/.git-credentials", "*/.pgpass", "*/.npmrc", "*/.pypirc",
		"*/proc/*/environ",
	}
}

// PolicyConfig is a policy as written by hand or loaded from JSON. Field
// paths in errors use the JSON names.
type PolicyConfig struct {
	Tools       []Rule `json:"tools,omitempty"`
	Resources   []Rule `json:"resources,omitempty"`
	Prompts     []Rule `json:"prompts,omitempty"`
	Completions []Rule `json:"completions,omitempty"`

	// UnlistedTools applies to tools/call of a tool no rule matches.
	// Default: deny, so a tool added to the server without a rule is not
	// callable until someone decides which scope it needs.
	UnlistedTools Unlisted `json:"unlisted_tools"`
	// UnlistedResources applies to resources/read, subscribe and
	// unsubscribe of a URI no rule matches. Default: deny.
	UnlistedResources Unlisted `json:"unlisted_resources"`
	// UnlistedPrompts applies to prompts/get of a prompt no rule matches.
	// Default: deny.
	UnlistedPrompts Unlisted `json:"unlisted_prompts"`
	// UnlistedCompletions applies to completion/complete whose ref matches
	// no completion rule and is neither a ref/prompt nor a ref/resource
	// (those follow the prompt and resource rules). Default: deny.
	UnlistedCompletions Unlisted `json:"unlisted_completions"`

	// Blocked patterns can never be reached, admin included.
	Blocked Blocklist `json:"blocked"`
	// UnsafeNoDefaultBlocked turns off DefaultBlocked. Default false: the
	// default patterns are blocked on top of Blocked.Resources.
	UnsafeNoDefaultBlocked bool `json:"unsafe_no_default_blocked,omitempty"`
}

// Policy decides which MCP operations a set of scopes may perform. Build
// it with NewPolicy or LoadPolicy; it is immutable and safe for concurrent
// use.
type Policy struct {
	tools, resources, prompts, completions   ruleSet
	blockTools, blockResources, blockPrompts blocklist
	// ports are the "scheme://host:port" authorities that resource rules
	// name, for schemes without a known default port: the only ports of
	// those schemes a URI may carry.
	ports map[string]bool
}

type decision struct {
	deny     bool // unlisted and denied
	required []Scope
}

type ruleSet struct {
	noun     string // "tool", "resource", ... for reasons
	exact    map[string]*decision
	globs    []globRule
	unlisted decision
}

type globRule struct {
	g glob
	d *decision
	// prefix is the length of the pattern's literal prefix (before its
	// first "*").
	prefix int
}

type blocklist struct {
	globs []glob
	res   []*regexp.Regexp
}

// NewPolicy validates cfg and compiles it. Errors wrap ErrInvalidPolicy and
// name the field: `tools[2].scopes[0]: invalid scope "docs::read": ...`.
func NewPolicy(cfg PolicyConfig) (*Policy, error) {
	p := &Policy{}
	var err error
	if p.tools, err = compileRules("tools", "tool", cfg.Tools, cfg.UnlistedTools, "unlisted_tools"); err != nil {
		return nil, err
	}
	if p.resources, err = compileRules("resources", "resource", cfg.Resources, cfg.UnlistedResources, "unlisted_resources"); err != nil {
		return nil, err
	}
	if p.prompts, err = compileRules("prompts", "prompt", cfg.Prompts, cfg.UnlistedPrompts, "unlisted_prompts"); err != nil {
		return nil, err
	}
	if p.completions, err = compileRules("completions", "completion ref", cfg.Completions, cfg.UnlistedCompletions, "unlisted_completions"); err != nil {
		return nil, err
	}
	if p.blockTools, err = compileBlocks("blocked.tools", cfg.Blocked.Tools); err != nil {
		return nil, err
	}
	res := cfg.Blocked.Resources
	if !cfg.UnsafeNoDefaultBlocked {
		res = append(DefaultBlocked(), res...)
	}
	if p.blockResources, err = compileBlocks("blocked.resources", res); err != nil {
		if !cfg.UnsafeNoDefaultBlocked {
			// Re-number to the caller's own list.
			var fe *FieldError
			if errors.As(err, &fe) {
				fe.Field = renumber(fe.Field, "blocked.resources", len(DefaultBlocked()))
			}
		}
		return nil, err
	}
	if p.blockPrompts, err = compileBlocks("blocked.prompts", cfg.Blocked.Prompts); err != nil {
		return nil, err
	}
	p.ports = portAuthorities(cfg.Resources)
	return p, nil
}

// portAuthorities collects "scheme://host:port" of the resource rules
// whose scheme has no known default port.
func portAuthorities(rules []Rule) map[string]bool {
	var m map[string]bool
	for _, r := range rules {
		scheme, rest, ok := strings.Cut(r.Match, "://")
		if !ok {
			continue
		}
		scheme = strings.ToLower(scheme)
		if _, known := defaultPorts[scheme]; known {
			continue
		}
		authority := rest
		if i := strings.IndexAny(rest, "/*"); i >= 0 {
			authority = rest[:i]
		}
		host, port, why := splitAuthority(authority)
		if why != "" || port == "" {
			continue
		}
		if m == nil {
			m = make(map[string]bool)
		}
		m[scheme+"://"+host+":"+port] = true
	}
	return m
}

func renumber(field, prefix string, off int) string {
	rest, ok := strings.CutPrefix(field, prefix+"[")
	if !ok {
		return field
	}
	n, tail, ok := strings.Cut(rest, "]")
	i, err := strconv.Atoi(n)
	if !ok || err != nil {
		return field
	}
	return prefix + "[" + strconv.Itoa(i-off) + "]" + tail
}

func policyErr(field string, err error) error {
	return &FieldError{Field: field, Err: err, policy: true}
}

func parseScopes(field string, in []string) ([]Scope, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]Scope, 0, len(in))
	for i, s := range in {
		sc, err := Parse(s)
		if err != nil {
			return nil, policyErr(field+"["+strconv.Itoa(i)+"]", err)
		}
		out = append(out, sc)
	}
	return out, nil
}

func compileRules(field, noun string, rules []Rule, unlisted Unlisted, unlistedField string) (ruleSet, error) {
	rs := ruleSet{noun: noun, exact: make(map[string]*decision)}
	seen := make(map[string]int)
	for i, r := range rules {
		f := field + "[" + strconv.Itoa(i) + "]"
		if r.Match == "" {
			return rs, policyErr(f+".match", errors.New("empty"))
		}
		if j, dup := seen[r.Match]; dup {
			return rs, policyErr(f+".match", fmt.Errorf("%q already listed at %s[%d]", r.Match, field, j))
		}
		seen[r.Match] = i
		req, err := parseScopes(f+".scopes", r.Scopes)
		if err != nil {
			return rs, err
		}
		d := &decision{required: req}
		if isGlob(r.Match) {
			rs.globs = append(rs.globs, globRule{g: compileGlob(r.Match, false), d: d, prefix: strings.IndexByte(r.Match, '*')})
		} else {
			rs.exact[r.Match] = d
		}
	}
	if unlisted.Allow && len(unlisted.Scopes) > 0 {
		return rs, policyErr(unlistedField, errors.New("allow and scopes are exclusive"))
	}
	req, err := parseScopes(unlistedField+".scopes", unlisted.Scopes)
	if err != nil {
		return rs, err
	}
	rs.unlisted = decision{deny: !unlisted.Allow && len(req) == 0, required: req}
	return rs, nil
}

func compileBlocks(field string, patterns []string) (blocklist, error) {
	var bl blocklist
	for i, p := range patterns {
		f := field + "[" + strconv.Itoa(i) + "]"
		if expr, ok := strings.CutPrefix(p, "re:"); ok {
			if expr == "" {
				return bl, policyErr(f, errors.New("empty regular expression"))
			}
			if _, err := regexp.Compile(expr); err != nil {
				return bl, policyErr(f, fmt.Errorf("invalid regular expression %q: %v", expr, err))
			}
			// Valid on its own, valid with a leading flag group.
			bl.res = append(bl.res, regexp.MustCompile("(?i)"+expr))
			continue
		}
		if p == "" {
			return bl, policyErr(f, errors.New("empty pattern"))
		}
		bl.globs = append(bl.globs, compileGlob(p, true))
	}
	return bl, nil
}

func (b *blocklist) match(s string) bool {
	for _, g := range b.globs {
		if g.match(s) {
			return true
		}
	}
	for _, re := range b.res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

func (rs *ruleSet) lookup(name string) *decision {
	d, _ := rs.lookupPrefix(name)
	return d
}

// lookupPrefix is lookup that also returns the length of the literal
// prefix the matching rule fixes: the whole name for an exact rule, the
// part before the first "*" for a glob, 0 for unlisted.
func (rs *ruleSet) lookupPrefix(name string) (*decision, int) {
	if d, ok := rs.exact[name]; ok {
		return d, len(name)
	}
	for _, gr := range rs.globs {
		if gr.g.match(name) {
			return gr.d, gr.prefix
		}
	}
	return &rs.unlisted, 0
}

// Decide says whether a key holding granted may perform op. It is a pure
// function; for an allowed operation it does not allocate (resource URIs
// not already in canonical form aside, see Rule.Match).
func (p *Policy) Decide(op Operation, granted Set) Verdict {
	switch op.Method {
	case MethodToolsCall:
		return p.decideName(&p.tools, &p.blockTools, op.Name, granted)
	case MethodPromptsGet:
		return p.decideName(&p.prompts, &p.blockPrompts, op.Name, granted)
	case MethodResourcesRead, MethodResourcesSubscribe, MethodResourcesUnsubscribe:
		return p.decideURI(&p.resources, op.URI, granted)
	case MethodCompletionComplete:
		return p.decideCompletion(op, granted)
	}
	return Verdict{Allowed: true}
}

func (p *Policy) decideName(rs *ruleSet, bl *blocklist, name string, granted Set) Verdict {
	if bl.match(name) {
		return blocked(rs.noun, name)
	}
	return verdict(rs.noun, name, rs.lookup(name), granted)
}

func (p *Policy) decideURI(rs *ruleSet, uri string, granted Set) Verdict {
	c, v, ok := p.checkURI(rs.noun, uri)
	if !ok {
		return v
	}
	d, prefix := rs.lookupPrefix(c.uri)
	if c.stable < prefix {
		return refused(rs.noun, uri, `its path climbs out of the rule prefix `+quote(c.uri[:prefix])+` with ".." segments`)
	}
	return verdict(rs.noun, uri, d, granted)
}

// checkURI canonicalises uri and applies the resource blocklist. When ok
// is false, v is the refusal.
func (p *Policy) checkURI(noun, uri string) (c canonURI, v Verdict, ok bool) {
	c = canonicalURI(uri, p.ports)
	if c.refusal != "" {
		return c, refused(noun, uri, c.refusal), false
	}
	bl := &p.blockResources
	if bl.match(c.uri) || (c.uri != uri && bl.match(uri)) || (c.noPort != "" && bl.match(c.noPort)) {
		return c, blocked(noun, uri), false
	}
	return c, Verdict{}, true
}

func (p *Policy) decideCompletion(op Operation, granted Set) Verdict {
	if d, ok := p.completions.exact[op.Ref]; ok {
		return p.completionVerdict(op, d, granted)
	}
	for _, gr := range p.completions.globs {
		if gr.g.match(op.Ref) {
			return p.completionVerdict(op, gr.d, granted)
		}
	}
	switch op.RefType {
	case RefPrompt:
		return p.decideName(&p.prompts, &p.blockPrompts, op.Ref, granted)
	case RefResource:
		return p.decideURI(&p.resources, op.Ref, granted)
	}
	return verdict(p.completions.noun, op.Ref, &p.completions.unlisted, granted)
}

// completionVerdict applies a completion rule, after the blocklist of what
// the ref points at.
func (p *Policy) completionVerdict(op Operation, d *decision, granted Set) Verdict {
	switch op.RefType {
	case RefPrompt:
		if p.blockPrompts.match(op.Ref) {
			return blocked("prompt", op.Ref)
		}
	case RefResource:
		if _, v, ok := p.checkURI("resource", op.Ref); !ok {
			return v
		}
	}
	return verdict(p.completions.noun, op.Ref, d, granted)
}

func verdict(noun, name string, d *decision, granted Set) Verdict {
	if d.deny {
		return Verdict{Reason: fmt.Sprintf("%s %s is not allowed by this server's policy", noun, quote(name))}
	}
	if granted.AllowsAll(d.required) {
		return Verdict{Allowed: true, Required: d.required}
	}
	word := "scope"
	if len(d.required) > 1 {
		word = "scopes"
	}
	reason := fmt.Sprintf("%s %s requires %s %s", noun, quote(name), word, Join(d.required))
	if missing := granted.Missing(d.required); len(missing) < len(d.required) {
		reason += "; this API key lacks " + Join(missing)
	}
	return Verdict{Required: d.required, Reason: reason}
}

// refused is the verdict for a resource URI that cannot be decided on.
func refused(noun, name, why string) Verdict {
	return Verdict{Blocked: true, Reason: fmt.Sprintf("%s %s is refused by this server's policy: %s", noun, quote(name), why)}
}

func blocked(noun, name string) Verdict {
	return Verdict{Blocked: true, Reason: fmt.Sprintf("%s %s is blocked by this server's policy and cannot be accessed with any key", noun, quote(name))}
}

// quote quotes a client-supplied name for a reason, cut to a readable
// length.
func quote(s string) string {
	const max = 200
	if len(s) > max {
		return strconv.Quote(s[:max]) + "..."
	}
	return strconv.Quote(s)
}

// Visible reports whether a key holding granted may use the listed item:
// a tool (by name), a prompt (by name) or a resource or resource template
// (by URI or URI template). Adapters use it to filter tools/list,
// prompts/list, resources/list and resources/templates/list. Unknown kinds
// are not visible.
func (p *Policy) Visible(kind Kind, name string, granted Set) bool {
	switch kind {
	case KindTool:
		return p.Decide(Operation{Method: MethodToolsCall, Name: name}, granted).Allowed
	case KindPrompt:
		return p.Decide(Operation{Method: MethodPromptsGet, Name: name}, granted).Allowed
	case KindResource:
		return p.Decide(Operation{Method: MethodResourcesRead, URI: name}, granted).Allowed
	}
	return false
}
