package gateway

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/mcpauth/mcpauth/mcpauth/accesstoken"
	"github.com/mcpauth/mcpauth/ratelimit"
)

// Defaults of Config, stated on each field.
const (
	DefaultListen          = "127.0.0.1:8080"
	DefaultPath            = "/mcp"
	DefaultShutdownTimeout = 30 * time.Second
	DefaultIdleTimeout     = 10 * time.Minute
	DefaultMaxProcesses    = 32
	DefaultMaxPerUser      = 4
	DefaultStartTimeout    = 10 * time.Second
	DefaultStopTimeout     = 5 * time.Second
	DefaultPepperEnv       = "MCPAUTH_PEPPER"
)

// Config is the gateway's configuration, as read from its TOML file (see
// docs/gateway.md for an annotated example) and then overridden by flags and
// environment in cmd/mcpauth. Field names in errors are the TOML keys
// ("upstream.url"). Validate fills the defaults.
type Config struct {
	// Listen is the TCP address to serve on. Default "127.0.0.1:8080".
	Listen string `toml:"listen"`
	// Path is where the MCP endpoint is served. Default "/mcp".
	Path string `toml:"path"`
	// AllowedHosts are the Host header values (host names, with or without
	// port) the gateway answers, against DNS rebinding. Default: on a
	// loopback Listen address, only localhost, 127.0.0.1 and [::1]; on any
	// other address, every host. "*" allows every host.
	AllowedHosts []string `toml:"allowed_hosts"`
	// ShutdownTimeout bounds the drain on SIGINT/SIGTERM: requests in flight
	// get this long to finish, then every connection is closed. Default 30s.
	ShutdownTimeout Duration `toml:"shutdown_timeout"`
	// TrustedProxies and TrustedProxyHeader are mcpauth.Options'
	// (reloadable). Default none: the TCP peer is the client.
	TrustedProxies     []string `toml:"trusted_proxies"`
	TrustedProxyHeader string   `toml:"trusted_proxy_header"`

	TLS       TLSConfig       `toml:"tls"`
	Upstream  UpstreamConfig  `toml:"upstream"`
	Stdio     StdioConfig     `toml:"stdio"`
	Database  DatabaseConfig  `toml:"database"`
	Keys      KeysConfig      `toml:"keys"`
	Policy    PolicyConfig    `toml:"policy"`
	RateLimit RateLimitConfig `toml:"rate_limit"`
	Audit     AuditConfig     `toml:"audit"`
	Log       LogConfig       `toml:"log"`
	OAuth     OAuthConfig     `toml:"oauth"`
}

// TLSConfig names a certificate and key in PEM files. Both or neither.
// Default neither: plain HTTP (put a TLS-terminating proxy in front, or
// listen on loopback only).
type TLSConfig struct {
	Cert string `toml:"cert"`
	Key  string `toml:"key"`
}

// UpstreamConfig is the MCP server behind the gateway: exactly one of URL
// (streamable HTTP) and Stdio.Command (see StdioConfig).
type UpstreamConfig struct {
	// URL is the upstream's streamable HTTP endpoint, http or https.
	URL string `toml:"url"`
	// PrincipalHeaders name the request headers the gateway sets to the
	// caller's identity on every request it forwards. Whatever the
	// client sent under these names is removed first. Default none: the
	// upstream learns nothing of who called.
	PrincipalHeaders PrincipalHeaders `toml:"principal_headers"`
}

// PrincipalHeaders name the headers carrying the principal upstream; an
// empty name is not sent.
type PrincipalHeaders struct {
	UserID string `toml:"user_id"` // e.g. "X-MCP-User"
	KeyID  string `toml:"key_id"`  // e.g. "X-MCP-Key-Id"
	Scopes string `toml:"scopes"`  // space-separated, e.g. "X-MCP-Scopes"
}

// StdioConfig is a stdio MCP server the gateway starts itself: one process
// per MCP session, owned by the one user who opened the session.
type StdioConfig struct {
	// Command is the program and its arguments (no shell).
	Command []string `toml:"command"`
	// Dir is the working directory. Default the gateway's.
	Dir string `toml:"dir"`
	// Env are variables set for the process.
	Env map[string]string `toml:"env"`
	// InheritEnv names the gateway's variables passed on. Default PATH,
	// HOME, LANG, TZ: the rest of the gateway's environment (its pepper,
	// its database URL) never reaches the process.
	InheritEnv []string `toml:"inherit_env"`
	// IdleTimeout ends a session's process after this long without a
	// request. Default 10m.
	IdleTimeout Duration `toml:"idle_timeout"`
	// MaxProcesses caps the processes running at once. Default 32.
	MaxProcesses int `toml:"max_processes"`
	// MaxProcessesPerUser caps one user's processes. Default 4.
	MaxProcessesPerUser int `toml:"max_processes_per_user"`
	// StartTimeout bounds the replayed initialize of a restarted process.
	// Default 10s.
	StartTimeout Duration `toml:"start_timeout"`
	// StopTimeout is how long a process gets to exit after its stdin is
	// closed, then again after SIGTERM, before SIGKILL. Default 5s.
	StopTimeout Duration `toml:"stop_timeout"`
}

// DatabaseConfig is the keys (and audit) database.
type DatabaseConfig struct {
	// URL is a SQLite file path or a postgres:// URL. Default "mcpauth.db".
	URL string `toml:"url"`
	// TablePrefix is the table name prefix. Default "mcpauth_".
	TablePrefix string `toml:"table_prefix"`
}

// KeysConfig is how keys are read and hashed; it must match what
// "mcpauth keys create" was given.
type KeysConfig struct {
	// Prefix is the key prefix. Default "mcp".
	Prefix string `toml:"prefix"`
	// PepperEnv names the variable holding the current pepper
	// ("version:secret"). Default "MCPAUTH_PEPPER". Retired peppers are read
	// from MCPAUTH_PEPPERS_RETIRED, as by the CLI.
	PepperEnv string `toml:"pepper_env"`
	// PepperFile is a file holding the current pepper on its first line and
	// retired ones on the following lines; instead of PepperEnv.
	PepperFile string `toml:"pepper_file"`
	// BearerOnly reads keys only from Authorization (reloadable).
	BearerOnly bool `toml:"bearer_only"`
}

// PolicyConfig points at the JSON MCP policy (scope.LoadPolicy's format).
type PolicyConfig struct {
	// File is the policy's path (reloadable: re-read on SIGHUP). Default
	// none: every valid key may call every tool (a warning is logged).
	File string `toml:"file"`
}

// RateLimitConfig is ratelimit.Policy in TOML (reloadable), and where its
// budgets live (RateBackend, restart-only): in the gateway's memory (one
// instance, one budget) unless redis_url_env names a Redis server, which
// every instance using it then shares.
type RateLimitConfig struct {
	// Disabled turns rate limiting off. Default false: 100 requests per
	// minute per key, protocol messages free.
	Disabled bool `toml:"disabled"`
	// By is "key" (default) or "user".
	By string `toml:"by"`
	// Default is the limit without a tier or override. Default 100/1m.
	Default LimitConfig `toml:"default"`
	// Tiers, TierMetadataKey, TierScopes and Costs are ratelimit.Policy's.
	Tiers           map[string]LimitConfig `toml:"tiers"`
	TierMetadataKey string                 `toml:"tier_metadata_key"`
	TierScopes      map[string]string      `toml:"tier_scopes"`
	Costs           map[string]int         `toml:"costs"`

	RateBackend
}

// Values of RateBackend.OnRedisUnavailable.
const (
	FailClosed    = "fail_closed"
	FallbackLocal = "fallback_local"
)

// RateBackend is where rate-limit budgets live: the keys of [rate_limit]
// that a reload cannot change (the limiter is built once, so that budgets
// carry over reloads).
type RateBackend struct {
	// RedisURLEnv names the environment variable holding a redis:// or
	// rediss:// URL (go-redis's ParseURL form), read at start: budgets then
	// live in that Redis (module ratelimit/redislimit), one per key (or
	// user) for every gateway instance using it. The URL may hold a
	// password, so it is never in this file and never printed. Default
	// none: budgets live in this process's memory. The CLI sets it to
	// MCPAUTH_GATEWAY_REDIS when that variable is set and this is not.
	RedisURLEnv string `toml:"redis_url_env"`
	// RedisPrefix is prepended to every bucket's Redis key
	// (redislimit.Options.Prefix). Default "mcpauth:rl:".
	RedisPrefix string `toml:"redis_prefix"`
	// OnRedisUnavailable is what happens while Redis cannot be reached:
	// "fail_closed" (default: a request that spends a budget gets 503, and
	// /ready is 503 while rate limits are on) or "fallback_local" (each
	// instance decides alone, with its share of every budget: see
	// Instances).
	OnRedisUnavailable string `toml:"on_redis_unavailable"`
	// Instances is how many gateway instances share the budgets, for
	// fallback_local (redislimit.Options.Instances): during an outage each
	// has a bucket of burst/instances and a rate of rate/instances (rounded
	// down, at least 1 each), so that together they admit at most the
	// budget. Default 1: each admits the whole budget. Above 1 only with
	// fallback_local.
	Instances int `toml:"instances"`
}

// LimitConfig is one ratelimit.Limit.
type LimitConfig struct {
	Rate  int      `toml:"rate"`
	Per   Duration `toml:"per"`
	Burst int      `toml:"burst"`
}

// AuditConfig is where audit events go.
type AuditConfig struct {
	// Sink is "database" (default: the keys database's audit table, with
	// the hash chain "mcpauth audit verify" checks), "stdout" (JSON lines)
	// or "off".
	Sink string `toml:"sink"`
	// Mode is "best_effort" (default), "blocking" or "strict" (a request
	// is refused with 503 if its event cannot be written first).
	Mode string `toml:"mode"`
	// Arguments records tool arguments, with Redact fields hidden
	// (reloadable). Default false.
	Arguments bool     `toml:"arguments"`
	Redact    []string `toml:"redact"`
}

// LogConfig is the gateway's own log (stderr).
type LogConfig struct {
	// Level is "debug", "info" (default), "warn" or "error".
	Level string `toml:"level"`
	// Format is "json" (default) or "text".
	Format string `toml:"format"`
	// Requests logs one line per request (method, status, key ID, user,
	// duration). Default true; set false to turn it off.
	Requests *bool `toml:"requests"`
}

// Duration is a time.Duration written as a string ("30s", "10m") in TOML.
// Bare numbers are refused: they would be nanoseconds.
type Duration time.Duration

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("want a duration such as 30s or 10m, got %q", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration as time.Duration.String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D is the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// FieldError is an invalid configuration value, named by its TOML key.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// ReadConfig decodes a TOML configuration. Unknown keys are errors, named
// with their line.
func ReadConfig(r io.Reader) (*Config, error) {
	var c Config
	md, err := toml.NewDecoder(r).Decode(&c)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("line %d: %s", pe.Position.Line, pe.Message)
		}
		return nil, err
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, fieldErr(und[0].String(), "unknown key")
	}
	return &c, nil
}

// ReadConfigFile reads a TOML configuration file.
func ReadConfigFile(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c, err := ReadConfig(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Validate fills the defaults and checks every field; the first problem is
// returned as a *FieldError. It reads no file: policy and pepper files are
// read by Load.
func (c *Config) Validate() error {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fieldErr("listen", "want host:port, got %q", c.Listen)
	}
	if c.Path == "" {
		c.Path = DefaultPath
	}
	if !strings.HasPrefix(c.Path, "/") || strings.ContainsAny(c.Path, " ?#") {
		return fieldErr("path", "want an absolute URL path such as /mcp, got %q", c.Path)
	}
	if c.Path == "/health" || c.Path == "/ready" {
		return fieldErr("path", "%s is the gateway's own endpoint", c.Path)
	}
	for i, h := range c.AllowedHosts {
		if h == "" || strings.ContainsAny(h, " /") {
			return fieldErr(fmt.Sprintf("allowed_hosts[%d]", i), "want a host name, got %q", h)
		}
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = Duration(DefaultShutdownTimeout)
	}
	if c.ShutdownTimeout < 0 {
		return fieldErr("shutdown_timeout", "must not be negative")
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		if c.TLS.Cert == "" {
			return fieldErr("tls.cert", "tls.key is set: both or neither")
		}
		return fieldErr("tls.key", "tls.cert is set: both or neither")
	}
	if err := c.validateUpstream(); err != nil {
		return err
	}
	if err := c.OAuth.validate(c.Path); err != nil {
		return err
	}
	// With oauth off too: the metadata is mounted always, since a reload
	// may switch oauth on.
	if strings.HasPrefix(c.Path, accesstoken.WellKnownPath) {
		return fieldErr("path", "%s is where the protected resource metadata is served", c.Path)
	}
	if c.Database.URL == "" {
		c.Database.URL = "mcpauth.db"
	}
	if c.Keys.PepperEnv != "" && c.Keys.PepperFile != "" {
		return fieldErr("keys.pepper_file", "keys.pepper_env is set too: name one")
	}
	if c.Keys.PepperEnv == "" && c.Keys.PepperFile == "" {
		c.Keys.PepperEnv = DefaultPepperEnv
	}
	if _, err := c.RatePolicy(); err != nil {
		return err
	}
	if err := c.RateLimit.RateBackend.validate(); err != nil {
		return err
	}
	switch c.Audit.Sink {
	case "":
		c.Audit.Sink = "database"
	case "database", "stdout", "off":
	default:
		return fieldErr("audit.sink", "want database, stdout or off, got %q", c.Audit.Sink)
	}
	switch c.Audit.Mode {
	case "":
		c.Audit.Mode = "best_effort"
	case "best_effort", "blocking", "strict":
	default:
		return fieldErr("audit.mode", "want best_effort, blocking or strict, got %q", c.Audit.Mode)
	}
	if c.Audit.Sink == "off" && c.Audit.Mode == "strict" {
		return fieldErr("audit.mode", "strict needs an audit sink (audit.sink is off)")
	}
	switch c.Log.Level {
	case "":
		c.Log.Level = "info"
	case "debug", "info", "warn", "error":
	default:
		return fieldErr("log.level", "want debug, info, warn or error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "":
		c.Log.Format = "json"
	case "json", "text":
	default:
		return fieldErr("log.format", "want json or text, got %q", c.Log.Format)
	}
	if c.Log.Requests == nil {
		on := true
		c.Log.Requests = &on
	}
	return nil
}

func (c *Config) validateUpstream() error {
	u, stdio := c.Upstream.URL, len(c.Stdio.Command) > 0
	switch {
	case u == "" && !stdio:
		return fieldErr("upstream.url", "no upstream: set upstream.url (--upstream) or stdio.command (--stdio)")
	case u != "" && stdio:
		return fieldErr("upstream.url", "stdio.command is set too: name one upstream")
	}
	for name, h := range map[string]string{
		"upstream.principal_headers.user_id": c.Upstream.PrincipalHeaders.UserID,
		"upstream.principal_headers.key_id":  c.Upstream.PrincipalHeaders.KeyID,
		"upstream.principal_headers.scopes":  c.Upstream.PrincipalHeaders.Scopes,
	} {
		if h == "" {
			continue
		}
		if !validHeaderName(h) {
			return fieldErr(name, "%q is not a header name", h)
		}
		switch http.CanonicalHeaderKey(h) {
		case "Authorization", "X-Api-Key", "Cookie", "Host", "Content-Length", "Content-Type", "Mcp-Session-Id", "Mcp-Protocol-Version", "Last-Event-Id", "Accept":
			return fieldErr(name, "%s is a header the protocol uses", h)
		}
	}
	if u != "" {
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return fieldErr("upstream.url", "want an http:// or https:// URL, got %q", u)
		}
		if pu.User != nil {
			return fieldErr("upstream.url", "must not hold credentials")
		}
		return nil
	}
	s := &c.Stdio
	if strings.TrimSpace(s.Command[0]) == "" {
		return fieldErr("stdio.command", "the program name is empty")
	}
	for k := range s.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fieldErr("stdio.env", "bad variable name %q", k)
		}
	}
	if s.InheritEnv == nil {
		s.InheritEnv = []string{"PATH", "HOME", "LANG", "TZ"}
	}
	if s.IdleTimeout == 0 {
		s.IdleTimeout = Duration(DefaultIdleTimeout)
	}
	if s.StartTimeout == 0 {
		s.StartTimeout = Duration(DefaultStartTimeout)
	}
	if s.StopTimeout == 0 {
		s.StopTimeout = Duration(DefaultStopTimeout)
	}
	for name, d := range map[string]Duration{"stdio.idle_timeout": s.IdleTimeout, "stdio.start_timeout": s.StartTimeout, "stdio.stop_timeout": s.StopTimeout} {
		if d < 0 {
			return fieldErr(name, "must be positive")
		}
	}
	if s.MaxProcesses == 0 {
		s.MaxProcesses = DefaultMaxProcesses
	}
	if s.MaxProcessesPerUser == 0 {
		s.MaxProcessesPerUser = min(DefaultMaxPerUser, s.MaxProcesses)
	}
	if s.MaxProcesses < 0 {
		return fieldErr("stdio.max_processes", "must be positive")
	}
	if s.MaxProcessesPerUser < 0 || s.MaxProcessesPerUser > s.MaxProcesses {
		return fieldErr("stdio.max_processes_per_user", "must be between 1 and stdio.max_processes (%d)", s.MaxProcesses)
	}
	return nil
}

// RatePolicy is the rate_limit table as a ratelimit.Policy; nil when
// rate_limit.disabled. Errors name the field.
func (c *Config) RatePolicy() (*ratelimit.Policy, error) {
	rl := &c.RateLimit
	if rl.Disabled {
		return nil, nil
	}
	p := &ratelimit.Policy{TierMetadataKey: rl.TierMetadataKey, TierScopes: rl.TierScopes, Costs: rl.Costs}
	switch rl.By {
	case "", "key":
		p.By = ratelimit.ByKey
	case "user":
		p.By = ratelimit.ByUser
	default:
		return nil, fieldErr("rate_limit.by", "want key or user, got %q", rl.By)
	}
	if rl.Default != (LimitConfig{}) {
		l, err := rl.Default.limit("rate_limit.default", "default")
		if err != nil {
			return nil, err
		}
		p.Default = l
	}
	if len(rl.Tiers) > 0 {
		p.Tiers = make(map[string]ratelimit.Limit, len(rl.Tiers))
		for name, t := range rl.Tiers {
			l, err := t.limit("rate_limit.tiers."+name, name)
			if err != nil {
				return nil, err
			}
			p.Tiers[name] = l
		}
	}
	for s, tier := range rl.TierScopes {
		if _, ok := p.Tiers[tier]; !ok {
			return nil, fieldErr("rate_limit.tier_scopes."+s, "no tier %q in rate_limit.tiers", tier)
		}
	}
	for op, cost := range rl.Costs {
		if cost < 0 {
			return nil, fieldErr("rate_limit.costs."+op, "must not be negative")
		}
	}
	if err := p.Validate(); err != nil {
		return nil, fieldErr("rate_limit", "%s", strings.TrimPrefix(err.Error(), "mcpauth/ratelimit: "))
	}
	return p, nil
}

// validate checks the backend without reading the variable (New does):
// a value that is not a variable name is not echoed, since it may be the
// URL itself, password and all.
func (b *RateBackend) validate() error {
	if b.RedisURLEnv == "" {
		switch {
		case b.RedisPrefix != "":
			return fieldErr("rate_limit.redis_prefix", "needs rate_limit.redis_url_env")
		case b.OnRedisUnavailable != "":
			return fieldErr("rate_limit.on_redis_unavailable", "needs rate_limit.redis_url_env")
		case b.Instances != 0:
			return fieldErr("rate_limit.instances", "needs rate_limit.redis_url_env")
		}
		return nil
	}
	if !validEnvName(b.RedisURLEnv) {
		return fieldErr("rate_limit.redis_url_env", "want the name of an environment variable holding the URL, such as MCPAUTH_GATEWAY_REDIS")
	}
	switch b.OnRedisUnavailable {
	case "":
		b.OnRedisUnavailable = FailClosed
	case FailClosed, FallbackLocal:
	default:
		return fieldErr("rate_limit.on_redis_unavailable", "want %s or %s, got %q", FailClosed, FallbackLocal, b.OnRedisUnavailable)
	}
	switch {
	case b.Instances < 0:
		return fieldErr("rate_limit.instances", "must not be negative")
	case b.Instances > 1 && b.OnRedisUnavailable != FallbackLocal:
		return fieldErr("rate_limit.instances", "only used with on_redis_unavailable = %q", FallbackLocal)
	}
	return nil
}

// validEnvName reports whether s is a POSIX environment variable name:
// letters, digits and underscores, not starting with a digit.
func validEnvName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

func (l LimitConfig) limit(field, name string) (ratelimit.Limit, error) {
	if l.Rate <= 0 {
		return ratelimit.Limit{}, fieldErr(field+".rate", "must be positive")
	}
	if l.Per <= 0 {
		return ratelimit.Limit{}, fieldErr(field+".per", "must be a positive duration such as 1m")
	}
	if l.Burst < 0 {
		return ratelimit.Limit{}, fieldErr(field+".burst", "must not be negative")
	}
	out := ratelimit.Limit{Name: name, Rate: l.Rate, Per: l.Per.D(), Burst: l.Burst}
	if err := out.Validate(); err != nil {
		return ratelimit.Limit{}, fieldErr(field, "%s", strings.TrimPrefix(err.Error(), "mcpauth/ratelimit: "))
	}
	return out, nil
}

// restartOnly lists the fields a reload cannot change, with their values in
// c, to report the ones that differ.
func (c *Config) restartOnly() map[string]string {
	return map[string]string{
		"listen":                c.Listen,
		"path":                  c.Path,
		"allowed_hosts":         strings.Join(c.AllowedHosts, ","),
		"tls":                   c.TLS.Cert + "|" + c.TLS.Key,
		"upstream":              fmt.Sprint(c.Upstream),
		"stdio":                 fmt.Sprint(c.Stdio),
		"database":              c.Database.URL + "|" + c.Database.TablePrefix,
		"keys.prefix":           c.Keys.Prefix,
		"keys.pepper":           c.Keys.PepperEnv + "|" + c.Keys.PepperFile,
		"audit.sink/audit.mode": c.Audit.Sink + "|" + c.Audit.Mode,
		"log":                   c.Log.Level + "|" + c.Log.Format,

		"rate_limit.redis_url_env":        c.RateLimit.RedisURLEnv,
		"rate_limit.redis_prefix":         c.RateLimit.RedisPrefix,
		"rate_limit.on_redis_unavailable": c.RateLimit.OnRedisUnavailable,
		"rate_limit.instances":            fmt.Sprint(c.RateLimit.Instances),
	}
}

// validHeaderName reports whether h is an RFC 9110 token.
func validHeaderName(h string) bool {
	if h == "" {
		return false
	}
	for _, r := range h {
		if r >= 0x80 || !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)) {
			return false
		}
	}
	return true
}
