package mcpauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/mcpauth/accesstoken"
	"github.com/mcpauth/mcpauth/mcpauth/apikey"
	"github.com/mcpauth/mcpauth/mcpauth/internal/notifyqueue"
	"github.com/mcpauth/mcpauth/mcpauth/notify"
	"github.com/mcpauth/mcpauth/mcpauth/observe"
	"github.com/mcpauth/mcpauth/ratelimit"
	"github.com/mcpauth/mcpauth/scope"
	"github.com/mcpauth/mcpauth/store"
)

// Defaults for Options, stated on each field.
const (
	defaultRealm            = "mcp"
	defaultCacheTTL         = 30 * time.Second
	defaultCacheSize        = 10_000
	defaultNegativeCacheTTL = 5 * time.Second
	defaultTouchInterval    = 10 * time.Second
	defaultStoreTimeout     = 2 * time.Second
	defaultMaxBodyBytes     = 4 << 20
	defaultMaxBatchLength   = 32
)

// Options configures a Guard. The zero value (or a nil *Options) is secure:
// every field documents its default.
type Options struct {
	// Prefix is the key prefix, 2-16 lower-case letters and digits.
	// Default "mcp".
	Prefix string
	// Peppers are the server-side secrets keys are hashed with; the first is
	// current (new keys use it), the rest are retired ones still accepted for
	// old keys. Default none: plain SHA-256. Setting one is recommended.
	Peppers []apikey.Pepper
	// BearerOnly reads keys only from "Authorization: Bearer <key>", what
	// MCP clients send. Default false: "X-API-Key: <key>" is read too (two
	// different keys in one request are refused). Keys in the URL query are
	// never accepted.
	BearerOnly bool
	// Users, if set, is asked on every authenticated request whether the
	// key's user is active; an inactive user gets 403. It should be cheap (a
	// cache in front of the user table). Default: every user is active.
	Users store.UserChecker
	// CacheTTL is how long a verified key is trusted without asking the
	// store again; never past the key's own expiry. A key changed through
	// a key manager whose OnChange is this Guard's Forget is re-read at
	// once; one changed elsewhere is re-read when the change arrives on
	// Changes (milliseconds), else at the next poll (see
	// RevocationPollInterval), else within CacheTTL.
	// During a store outage a cached key keeps working until its CacheTTL
	// runs out, then fails with 503 (ErrUnavailable), unless StaleIfError
	// allows more; keys not in the cache fail at once. Default 30s.
	// Negative disables the cache.
	CacheTTL time.Duration
	// CacheSize bounds the number of cached verified key IDs; unknown IDs
	// (see NegativeCacheTTL) are held in a separate cache of the same size,
	// so a flood of made-up keys never evicts a verified one. Default 10,000.
	CacheSize int
	// NegativeCacheTTL is how long an unknown key ID is remembered as
	// unknown, so that floods of made-up keys do not reach the store.
	// Default 5s. Negative disables it.
	NegativeCacheTTL time.Duration
	// TouchInterval is how often coalesced last-used times are written to the
	// store (only if it implements store.Toucher). Default 10s.
	TouchInterval time.Duration
	// RevocationPollInterval is how often the Guard asks a shared store
	// for keys changed elsewhere (store.ChangeLister, like the SQL store:
	// revoked or given a new expiry, as rotation does; or, for a store that
	// only lists revocations, store.RevocationLister), and forgets them
	// (see Guard.Forget: the cache entry, and the key's open event
	// streams): without Changes, or while its channel is down, a change
	// made through any instance takes effect on all of them within about
	// this long plus a store round trip. Failures are logged once when
	// polling starts failing and once when it works again. Default 1s;
	// negative disables polling (changes elsewhere then take effect within
	// CacheTTL, or through Changes).
	//
	// A key whose rotation grace ends is refused exactly at the end (by
	// this process's clock) once the Guard has re-read its record, which
	// the change (on Changes, or at the next poll) makes it do.
	RevocationPollInterval time.Duration
	// Changes is the change channel every instance shares: PostgreSQL
	// LISTEN/NOTIFY (module store/sqlstore/pgnotify) or Redis pub/sub
	// (module store/redisnotify). New subscribes; each change drops the key
	// (or every key of a user, or, after the channel was down, the whole
	// cache), so that the next request re-reads the store, and ends its
	// open event streams (after the channel was down: every stream). Give the same
	// feed to keyadmin.Options.Changes so that every key change is
	// published. With it, a change takes effect on every instance within
	// the channel's delivery time (docs/distributed.md: p99 a few
	// milliseconds, bound 100 ms); the poll keeps running as the safety
	// net. Default none.
	Changes store.ChangeSubscriber
	// StoreTimeout bounds each store call on the request path. Default 2s.
	StoreTimeout time.Duration
	// Realm is the realm in WWW-Authenticate challenges. Default "mcp".
	Realm string
	// ErrorHandler writes every error response (401, 403, 429, 503, ...).
	// It receives the error (test it with errors.Is); never echo err.Error()
	// to clients. Default: ResponseFor's JSON.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)
	// Logger receives operational messages (store failures, flush errors).
	// Never raw keys. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default: the system clock as time.Now reads it,
	// except that a step of the wall clock (settimeofday, an NTP step)
	// shows at most 50 ms late: between wall-clock reads the Guard reads
	// only the monotonic clock, half the cost of time.Now.
	Now func() time.Time
	// TrustedProxies lists the addresses (CIDR prefixes or single IPs) of
	// reverse proxies whose TrustedProxyHeader is believed when finding the
	// client address (for key IP allowlists, new-IP notifications and
	// audit). Default none: the TCP peer is the client and forwarding
	// headers are ignored, since any client can send them.
	TrustedProxies []string
	// AcceptLegacyKeys also accepts keys imported with keyadmin's ImportLegacy
	// (SHA-256 of the whole raw key, the seed's scheme), so agents keep
	// working while users move to new keys. Default false.
	AcceptLegacyKeys bool

	// TrustedProxyHeader names the one forwarding header the
	// TrustedProxies set: "X-Forwarded-For" (nginx's
	// $proxy_add_x_forwarded_for, HAProxy, most load balancers) or
	// "Forwarded" (RFC 7239). Only that header is read, and only when the
	// TCP peer is a trusted proxy; the other one is ignored, since clients
	// can send it through a proxy that does not strip it. Several lines of
	// the header are one list, in order. It is walked from the right past
	// trusted proxies; the first other address is the client. A hop that is
	// not an address (unknown, obfuscated, garbage) ends the walk at the
	// last trusted address, as does a chain of more than 32 trusted hops.
	// Default "X-Forwarded-For". Any other value makes New fail.
	TrustedProxyHeader string
	// StaleIfError lets a cached key whose CacheTTL ran out keep working
	// while the store fails (error or timeout, not "not found"), for at
	// most this long past its CacheTTL, and never past the key's expiry or
	// a revocation time the cached record knows. Each such request still
	// asks the store first (so recovery and revocations show at once once
	// it answers) and is logged at Warn with the key ID. A key revoked
	// elsewhere during the outage keeps working for up to CacheTTL +
	// StaleIfError: that is the price of availability. Default 0: a key is
	// never served past CacheTTL; the request fails with 503.
	StaleIfError time.Duration
	// LegacyKeyPattern, with AcceptLegacyKeys, narrows which credentials
	// are tried as legacy keys: a regular expression (RE2 syntax) the whole
	// credential must match, for example `mcp_[0-9a-f]{64}` for the seed's
	// keys. It applies on top of the built-in shape check (16-256
	// characters of A-Z a-z 0-9 - . _ ~ + / with trailing =, and not
	// shaped like a current key whose checksum failed); credentials that
	// fail either are refused without a store lookup. Default "": the
	// built-in check only. An invalid expression makes New fail.
	LegacyKeyPattern string
	// Notifier hears key.new_ip: a key used from an address it was not used
	// from before. When the KeyStore implements store.AddressRecorder, the
	// store remembers addresses across restarts and instances; otherwise
	// this process does, and each restart announces them again. Calls run
	// on a background goroutine, never on the request path. Default none.
	Notifier notify.Notifier

	// Policy maps MCP operations (tools/call by tool, resources/read by URI,
	// prompts/get, completion/complete) to the scopes they need, and blocks
	// what no key may reach. With a Policy, every POST body is inspected
	// (see MaxBodyBytes) and each JSON-RPC message, batches included, is
	// checked; a refusal is 403 with WWW-Authenticate: Bearer
	// error="insufficient_scope" and a JSON-RPC error carrying the request
	// id. Default nil: a valid key may send anything.
	Policy *scope.Policy
	// Refusals chooses how refusals of MCP POSTs are answered; see
	// RefusalMode and docs/refusals.md for what each MCP client shows.
	// Default RefusalHTTP: 401/403/429 with a JSON-RPC error body, as the
	// MCP authorization specification expects.
	Refusals RefusalMode
	// MaxBodyBytes bounds the POST body the middleware reads to inspect;
	// larger bodies get 413 before any decoding. POST bodies are inspected
	// when a Policy, a RateLimiter or Audit is set (without them Require
	// only authenticates). Default 4 MiB.
	MaxBodyBytes int64
	// MaxBatchLength bounds the messages in one JSON-RPC batch (protocol
	// 2025-03-26) of an inspected body; a longer batch is refused whole
	// (400, -32600) before anything runs. Default 32.
	MaxBatchLength int

	// RateLimiter, if set, limits requests: each authenticated request
	// spends its cost (RatePolicy.Cost of each message, 1 for GET and
	// DELETE) from the key's bucket (or the user's, with ratelimit.ByUser).
	// Responses carry the IETF RateLimit and RateLimit-Policy fields; a
	// request over the limit gets 429 with Retry-After and, for MCP POSTs, a
	// JSON-RPC error with the request id. A limiter error answers 503
	// (configure the Redis limiter's local fallback to keep serving when
	// Redis is down). Default nil: no rate limiting.
	RateLimiter ratelimit.Limiter
	// RatePolicy chooses each key's limit (default, tiers, per-key
	// overrides from store.Key.RateLimit) and each operation's cost. New
	// keeps a copy: changing the Policy afterwards changes nothing.
	// Default: 100 requests per minute per key, protocol messages free
	// (ratelimit.FreeMethods) and every other operation costing 1.
	RatePolicy *ratelimit.Policy
	// LegacyRateLimitHeaders also writes X-RateLimit-Limit, -Remaining and
	// -Reset. Default false.
	LegacyRateLimitHeaders bool

	// Audit receives one event per MCP message of an allowed request (at
	// most 16 per request: the rest of a larger batch is one event with
	// audit.Event.Count) and one per refused request, whatever its size,
	// after the response is written (status and duration known). Use an *audit.Writer in front of a slow sink so that requests
	// never wait for it. Default nil: no audit.
	Audit audit.Sink
	// AuditStrict records each allowed message's event before the handler
	// runs, and fails the request with 503 if it cannot be recorded (no
	// unrecorded action); the events' Status and Duration are then 0. Use it
	// with an *audit.Writer in audit.Strict mode (whose Record returns only
	// once the event is written); New refuses a Strict Writer without
	// AuditStrict, and AuditStrict without Audit. Default false.
	AuditStrict bool
	// AuditArguments records tools/call and prompts/get arguments in audit
	// events, with the values of AuditRedact field names (at any depth)
	// replaced by "[REDACTED]". Default false: arguments are not recorded.
	AuditArguments bool
	// AuditRedact names argument fields whose values are never recorded.
	AuditRedact []string
	// Instance names this process in every audit event it records
	// (audit.Event.Instance), so that a trail shared by several instances
	// says which one served each request. Give keyadmin.Options.Instance
	// the same name. Default audit.DefaultInstance(): host name and process
	// ID.
	Instance string
	// RequestIDHeader is the header carrying the request ID, read from the
	// request when it is a sane token (else generated) and set on the
	// response; audit events carry it. Default "X-Request-Id".
	RequestIDHeader string

	// OAuth, if set, also accepts OAuth access tokens on the same endpoint:
	// a credential shaped like a JWT (three base64url parts) or, failing
	// that and every key shape, an opaque token goes to OAuth.VerifyToken;
	// mcpauth keys go to the key store as before. A verified token becomes
	// a Principal like a key does (see Principal.Kind), so Policy, rate
	// limits, Users, audit and session binding apply unchanged. Verdicts
	// are cached by the token's SHA-256 until accesstoken.Token.CacheUntil, never past
	// its expiry, in a cache of CacheSize entries (CacheTTL < 0 disables
	// it). Challenges then carry resource_metadata (RFC 9728), and
	// ResourceMetadataHandler serves the metadata. Use module
	// github.com/mcpauth/mcpauth/mcpauth/oauth. Default nil: API keys only,
	// and challenges without resource_metadata (some clients ignore a
	// configured header once metadata is advertised).
	OAuth accesstoken.Verifier

	// Metrics, if set, is told of every request's outcome, cache and key
	// store lookups, policy and rate-limit decisions (see Metrics; module
	// github.com/mcpauth/mcpauth/mcpauth/otelmetrics implements it with
	// OpenTelemetry). Default nil: nothing is measured, at no cost.
	Metrics observe.Metrics
}

// Guard authenticates requests with API keys. Create it with New; it is
// safe for concurrent use. Close it on shutdown to flush last-used times.
type Guard struct {
	keys    store.KeyLookup
	opts    Options
	hasher  *apikey.Hasher
	cache   *keyCache
	touches *toucher
	trusted proxyTrust
	legacy  legacyFilter
	newIPs  *ipWatcher
	notes   *notifyqueue.Queue

	revocations   *revocationWatcher
	streams       *streamRegistry // the open event streams (GET requests)
	storeHealth   *dependency     // the key store, as the request path sees it
	limiterHealth *dependency     // the rate limiter
	unsubscribe   func()          // from Options.Changes; nil without
	strict        bool            // Options.AuditStrict

	// tokens caches verified OAuth tokens by SHA-256 (nil without OAuth).
	tokens *keyCache
	// maxCredential bounds the credential read from a request.
	maxCredential int
	// bearer is the start of every challenge: the realm, and the
	// resource_metadata URL with OAuth.
	bearer string
	// metadata is the protected resource metadata, with OAuth.
	metadata *resourceMetadata
}

// New returns a Guard over keys. opts may be nil. It fails if an option is
// invalid (a bad prefix, a short pepper).
func New(keys store.KeyLookup, opts *Options) (*Guard, error) {
	if keys == nil {
		return nil, errors.New("mcpauth: New needs a store (store.KeyLookup)")
	}
	var o Options
	if opts != nil {
		o = *opts
		o.Peppers = slices.Clone(opts.Peppers)
	}
	if o.Prefix == "" {
		o.Prefix = apikey.DefaultPrefix
	}
	if err := apikey.CheckPrefix(o.Prefix); err != nil {
		return nil, fmt.Errorf("mcpauth: Options.Prefix: %w", err)
	}
	if o.CacheTTL == 0 {
		o.CacheTTL = defaultCacheTTL
	}
	if o.CacheSize <= 0 {
		o.CacheSize = defaultCacheSize
	}
	if o.NegativeCacheTTL == 0 {
		o.NegativeCacheTTL = defaultNegativeCacheTTL
	}
	if o.TouchInterval <= 0 {
		o.TouchInterval = defaultTouchInterval
	}
	if o.StoreTimeout <= 0 {
		o.StoreTimeout = defaultStoreTimeout
	}
	if o.RevocationPollInterval == 0 {
		o.RevocationPollInterval = time.Second
	}
	if o.Realm == "" {
		o.Realm = defaultRealm
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = newSystemClock().now
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = defaultMaxBodyBytes
	}
	if o.MaxBatchLength <= 0 {
		o.MaxBatchLength = defaultMaxBatchLength
	}
	if o.Refusals > RefusalToolResult {
		return nil, fmt.Errorf("mcpauth: unknown Refusals mode %d", o.Refusals)
	}
	if o.Instance == "" {
		o.Instance = audit.DefaultInstance()
	}
	if o.RequestIDHeader == "" {
		o.RequestIDHeader = "X-Request-Id"
	}
	o.RequestIDHeader = http.CanonicalHeaderKey(o.RequestIDHeader) // the response header map's key

	o.AuditRedact = slices.Clone(o.AuditRedact)
	o.RatePolicy = o.RatePolicy.Clone() // the caller's maps may change after New
	if o.RateLimiter != nil && o.RatePolicy == nil {
		o.RatePolicy = &ratelimit.Policy{}
	}
	if o.RatePolicy != nil {
		if err := o.RatePolicy.Validate(); err != nil {
			return nil, fmt.Errorf("mcpauth: RatePolicy: %w", err)
		}
	}
	h, err := apikey.NewHasher(o.Peppers)
	if err != nil {
		return nil, err
	}
	g := &Guard{keys: keys, opts: o, hasher: h, cache: newKeyCache(o.CacheSize, o.StaleIfError),
		storeHealth: newDependency("key store", o.Logger, o.Now), limiterHealth: newDependency("rate limiter", o.Logger, o.Now),
		streams: newStreamRegistry(o.Logger)}
	if g.trusted, err = newProxyTrust(o.TrustedProxies, o.TrustedProxyHeader); err != nil {
		return nil, err
	}
	if g.legacy, err = newLegacyFilter(o.Prefix, o.LegacyKeyPattern); err != nil {
		return nil, err
	}
	g.notes = notifyqueue.New(o.Logger)
	if o.Notifier != nil {
		rec, _ := keys.(store.AddressRecorder) // nil: per-process memory only
		g.newIPs = newIPWatcher(o.Notifier, g.notes, rec, o.StoreTimeout, o.Logger, o.Now)
	}
	if m, ok := o.Audit.(interface{ Mode() audit.Mode }); ok && m.Mode() == audit.Strict && !o.AuditStrict {
		return nil, errors.New("mcpauth: Audit is a Strict audit.Writer: set Options.AuditStrict to record events before the handler runs")
	}
	if o.AuditStrict && o.Audit == nil {
		return nil, errors.New("mcpauth: AuditStrict needs Options.Audit")
	}
	g.strict = o.AuditStrict
	if err := g.setOAuth(); err != nil {
		return nil, err
	}
	if t, ok := keys.(store.Toucher); ok {
		g.touches = newToucher(t, o.TouchInterval, o.StoreTimeout, o.Logger)
	}
	if list := changeListerOf(keys); list != nil && o.RevocationPollInterval > 0 && o.CacheTTL > 0 {
		g.revocations = newRevocationWatcher(list, g.Forget, o.Now, o.RevocationPollInterval, o.StoreTimeout, o.Logger)
	}
	if o.Changes != nil && o.CacheTTL > 0 {
		g.unsubscribe = o.Changes.Subscribe(g.applyChange)
	}
	return g, nil
}

// Close flushes pending last-used times and notifications and stops
// background work. Requests after Close still authenticate, but their uses
// are no longer recorded. Close does not end event streams (GET requests)
// still being served: each still ends at its credential's expiry or on
// Forget, but changes made elsewhere no longer reach this Guard (the poll
// and Options.Changes stop). Every expiry timer belongs to a request being
// served and is stopped when that request ends, so none outlives it.
func (g *Guard) Close(ctx context.Context) error {
	var errs []error
	if g.unsubscribe != nil {
		g.unsubscribe()
	}
	if g.touches != nil {
		errs = append(errs, g.touches.close(ctx))
	}
	errs = append(errs, g.notes.Close(ctx))
	if g.revocations != nil {
		errs = append(errs, g.revocations.close(ctx))
	}
	return errors.Join(errs...)
}
