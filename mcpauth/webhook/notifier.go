package webhook

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mcpauth/mcpauth/mcpauth/notify"
)

// Defaults for Options.
const (
	DefaultMaxAttempts    = 3
	DefaultTimeout        = 5 * time.Second
	DefaultInitialBackoff = time.Second
	DefaultMaxBackoff     = 30 * time.Second
	DefaultMaxRetryAfter  = 60 * time.Second
	// MinSecretLen is the shortest secret New accepts (128 bits).
	MinSecretLen = 16
	userAgent    = "mcpauth-webhook/1"
	maxDrain     = 4 << 10
)

var (
	// ErrInvalidOption is returned by New for a URL, secret or option it
	// cannot use.
	ErrInvalidOption = errors.New("mcpauth/webhook: invalid option")
	// ErrDelivery is matched by every error of Notify that is not a context
	// error: the endpoint answered with a failure status or could not be
	// reached. The error is a *DeliveryError.
	ErrDelivery = errors.New("mcpauth/webhook: delivery failed")
)

// DeliveryError says why a notification was not delivered. It matches
// ErrDelivery and unwraps to the last attempt's transport error, if any.
type DeliveryError struct {
	// Endpoint is the URL's scheme and host (path and query left out).
	Endpoint string
	// DeliveryID is the Mcpauth-Delivery header of the notification.
	DeliveryID string
	// Attempts is how many requests were made.
	Attempts int
	// StatusCode is the last response's status, 0 when there was none.
	StatusCode int
	// Err is the last transport error, nil when a response came back.
	Err error
}

func (e *DeliveryError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "mcpauth/webhook: delivery %s to %s failed after %d attempt", e.DeliveryID, e.Endpoint, e.Attempts)
	if e.Attempts != 1 {
		b.WriteByte('s')
	}
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, ": status %d", e.StatusCode)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrDelivery) true.
func (e *DeliveryError) Is(target error) bool { return target == ErrDelivery }

// Unwrap returns the last transport error.
func (e *DeliveryError) Unwrap() error { return e.Err }

// Options configures a Notifier. A nil *Options means all defaults.
type Options struct {
	// Client sends the requests. Its CheckRedirect is not used: redirects
	// are never followed. Default: a client with http.DefaultTransport.
	Client *http.Client
	// Timeout bounds each attempt (connection, request and response
	// headers). Default 5s.
	Timeout time.Duration
	// MaxAttempts is the number of requests tried per notification, the
	// first included. Default 3; 1 disables retries.
	MaxAttempts int
	// InitialBackoff is the wait before the second attempt; it doubles for
	// each following one up to MaxBackoff. Default 1s and 30s.
	InitialBackoff, MaxBackoff time.Duration
	// MaxRetryAfter caps the wait a Retry-After header can ask for. Default 60s.
	MaxRetryAfter time.Duration
	// UserAgent is the User-Agent header. Default "mcpauth-webhook/1".
	UserAgent string
	// Now is the clock for the timestamp header and Retry-After dates.
	// Default time.Now.
	Now func() time.Time
	// Sleep waits between attempts; it must return ctx.Err() early when ctx
	// is done. Default a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Rand is the source of delivery IDs. Default crypto/rand.
	Rand io.Reader
	// AdditionalSecrets are also signed with, each giving one more "v1="
	// value in Mcpauth-Signature, so that the secret can be rotated without
	// a window where receivers reject requests: add the new secret here,
	// move receivers to it, then make it the main secret and drop the old
	// one. Each must be at least 16 bytes. Default none.
	AdditionalSecrets [][]byte
}

// Notifier posts notifications to one URL. It implements notify.Notifier,
// is safe for concurrent use and starts no goroutine.
type Notifier struct {
	url      string
	endpoint string   // scheme://host, for errors
	secrets  [][]byte // the main secret first
	client   *http.Client
	opts     Options
}

var _ notify.Notifier = (*Notifier)(nil)

// New returns a Notifier posting to rawURL (http or https, with a host),
// signing with secret (at least 16 bytes). opts may be nil. The secret is
// copied.
func New(rawURL string, secret []byte, opts *Options) (*Notifier, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: URL does not parse", ErrInvalidOption)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%w: URL scheme must be http or https, got %q", ErrInvalidOption, u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%w: URL has no host", ErrInvalidOption)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%w: URL must not carry user info; the signature authenticates the sender", ErrInvalidOption)
	}
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("%w: secret must be at least %d bytes, got %d", ErrInvalidOption, MinSecretLen, len(secret))
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	secrets := [][]byte{append([]byte(nil), secret...)}
	for i, s := range o.AdditionalSecrets {
		if len(s) < MinSecretLen {
			return nil, fmt.Errorf("%w: AdditionalSecrets[%d] must be at least %d bytes, got %d", ErrInvalidOption, i, MinSecretLen, len(s))
		}
		secrets = append(secrets, append([]byte(nil), s...))
	}
	o.AdditionalSecrets = nil
	switch {
	case o.Timeout < 0, o.MaxAttempts < 0, o.InitialBackoff < 0, o.MaxBackoff < 0, o.MaxRetryAfter < 0:
		return nil, fmt.Errorf("%w: negative duration or attempt count", ErrInvalidOption)
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.InitialBackoff == 0 {
		o.InitialBackoff = DefaultInitialBackoff
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	o.MaxBackoff = max(o.MaxBackoff, o.InitialBackoff)
	if o.MaxRetryAfter == 0 {
		o.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if o.UserAgent == "" {
		o.UserAgent = userAgent
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	// A copy of the caller's client that never follows redirects.
	client := &http.Client{}
	if o.Client != nil {
		*client = *o.Client
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Notifier{
		url:      u.String(),
		endpoint: u.Scheme + "://" + u.Host,
		secrets:  secrets,
		client:   client,
		opts:     o,
	}, nil
}

// String names the endpoint and hides the secret.
func (n *Notifier) String() string { return "webhook.Notifier{" + n.endpoint + "}" }

// GoString hides the secret from %#v.
func (n *Notifier) GoString() string { return n.String() }

// Payload is the JSON body of a webhook request: the notification plus its
// delivery ID, equal to the Mcpauth-Delivery header and covered by the
// signature. Receivers decode the verified body into it.
type Payload struct {
	ID string `json:"id"`
	notify.Notification
}

// Notify posts the notification, retrying as documented in the package doc.
// It returns nil once the endpoint answered 2xx, a *DeliveryError
// (ErrDelivery) when it gave up, or an error matching ctx.Err() when ctx
// ended first.
func (n *Notifier) Notify(ctx context.Context, note notify.Notification) error {
	id, err := n.deliveryID()
	if err != nil {
		return err
	}
	body, err := json.Marshal(Payload{ID: id, Notification: note})
	if err != nil {
		return fmt.Errorf("mcpauth/webhook: encode notification: %w", err)
	}
	backoff := n.opts.InitialBackoff
	for attempt := 1; ; attempt++ {
		status, retryAfter, err := n.post(ctx, id, body)
		if status >= 200 && status < 300 {
			return nil
		}
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("mcpauth/webhook: delivery %s to %s: %w", id, n.endpoint, cerr)
		}
		retryable := err != nil || status >= 500 || status == http.StatusTooManyRequests
		if !retryable || attempt >= n.opts.MaxAttempts {
			return &DeliveryError{Endpoint: n.endpoint, DeliveryID: id, Attempts: attempt, StatusCode: status, Err: err}
		}
		wait := backoff
		if retryAfter > wait {
			wait = min(retryAfter, n.opts.MaxRetryAfter)
		}
		if err := n.opts.Sleep(ctx, wait); err != nil {
			return fmt.Errorf("mcpauth/webhook: delivery %s to %s: %w", id, n.endpoint, err)
		}
		backoff = min(2*backoff, n.opts.MaxBackoff)
	}
}

// post makes one attempt and returns the status (0 without a response),
// the wait asked for by Retry-After (0 when absent) and the transport error.
func (n *Notifier) post(ctx context.Context, id string, body []byte) (int, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, n.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.url, bytes.NewReader(body))
	if err != nil {
		return 0, 0, errors.New("cannot build request")
	}
	now := n.opts.Now()
	ts := now.Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", n.opts.UserAgent)
	req.Header.Set(HeaderDelivery, id)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	sig := Sign(n.secrets[0], ts, body)
	for _, s := range n.secrets[1:] {
		sig += "," + Sign(s, ts, body)
	}
	req.Header.Set(HeaderSignature, sig)
	resp, err := n.client.Do(req)
	if err != nil {
		return 0, 0, redact(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain)) // lets the connection be reused
	return resp.StatusCode, retryAfter(resp.Header.Get("Retry-After"), now), nil
}

// redact drops the URL (which may hold a token) from a client error and
// keeps the cause.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	}
	return err
}

// retryAfter parses a Retry-After value: delay seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(min(s, int64(24*time.Hour/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func (n *Notifier) deliveryID() (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(n.opts.Rand, b[:]); err != nil {
		return "", fmt.Errorf("mcpauth/webhook: delivery id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
