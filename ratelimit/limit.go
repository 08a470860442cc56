package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// Errors returned by limiters. Test them with errors.Is.
var (
	// ErrInvalid reports a limit, cost or key a limiter cannot use: a
	// non-positive Rate or Per, a negative Burst or cost, an empty key.
	ErrInvalid = errors.New("mcpauth/ratelimit: invalid limit, cost or key")
	// ErrUnavailable reports that the limiter's backend (Redis) cannot be
	// reached, so no decision was made. The middleware answers 503.
	ErrUnavailable = errors.New("mcpauth/ratelimit: limiter unavailable")
)

// Limit is one budget: Rate requests per Per, with bursts of up to Burst.
//
// A limiter refills the budget continuously (a token bucket, or its
// equivalent GCRA in Redis): a bucket holds at most Burst units and gains
// Rate units every Per, one unit every Per/Rate.
type Limit struct {
	// Name identifies the policy in the RateLimit and RateLimit-Policy
	// headers ("default", "free", "paid"). It must be printable ASCII.
	Name string
	// Rate is how many units are added every Per. Must be positive.
	Rate int
	// Per is the refill period. Must be positive.
	Per time.Duration
	// Burst is the bucket size: how many units can be spent at once after
	// an idle period. Zero means Rate.
	Burst int
}

// EffectiveBurst returns Burst, or Rate when Burst is zero.
func (l Limit) EffectiveBurst() int {
	if l.Burst == 0 {
		return l.Rate
	}
	return l.Burst
}

// Interval returns the time it takes to earn one unit: Per/Rate.
func (l Limit) Interval() time.Duration {
	if l.Rate <= 0 {
		return 0
	}
	return l.Per / time.Duration(l.Rate)
}

// Validate reports whether l can be used by a limiter, with an error that
// wraps ErrInvalid.
func (l Limit) Validate() error {
	if err := l.validateNumbers(); err != nil {
		return err
	}
	for i := 0; i < len(l.Name); i++ {
		if c := l.Name[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("%w: name %q must be printable ASCII", ErrInvalid, l.Name)
		}
	}
	return nil
}

// validateNumbers checks what a limiter needs; the name only matters to
// headers, which escape it anyway.
func (l Limit) validateNumbers() error {
	switch {
	case l.Rate <= 0:
		return fmt.Errorf("%w: rate must be positive, got %d", ErrInvalid, l.Rate)
	case l.Per <= 0:
		return fmt.Errorf("%w: per must be positive, got %v", ErrInvalid, l.Per)
	case l.Burst < 0:
		return fmt.Errorf("%w: burst must not be negative, got %d", ErrInvalid, l.Burst)
	case float64(l.Rate)/l.Per.Seconds() > 1e9:
		return fmt.Errorf("%w: rate %d per %v is more than one per nanosecond", ErrInvalid, l.Rate, l.Per)
	}
	return nil
}

// Decision is a limiter's verdict on one request.
type Decision struct {
	// Allowed reports whether the request may proceed. A denied request
	// consumed nothing.
	Allowed bool
	// Limit is the quota advertised in headers: the bucket size (Burst).
	Limit int
	// Remaining is how many units are left after this request (whole units,
	// rounded down).
	Remaining int
	// Window is the limit's period (Limit.Per).
	Window time.Duration
	// ResetAfter is how long until the bucket is full again.
	ResetAfter time.Duration
	// RetryAfter is zero when Allowed. When denied it is how long until a
	// request of the same cost can pass; it is never earlier than that time.
	RetryAfter time.Duration
	// Policy is the limit's Name.
	Policy string
}

// Limiter decides whether a request may proceed.
//
// Allow spends cost units of key's bucket under limit, if the bucket holds
// them. The limit is passed with every call because it varies per key (tiers,
// per-key overrides); when a key's limit changes between calls the new limit
// applies at once and the units already spent carry over.
//
// A cost above the limit's burst is capped at the burst: such a request
// needs, and empties, a full bucket instead of being refused forever. A cost
// of zero asks for the state without spending anything. A negative cost, an
// empty key or an invalid limit returns an error wrapping ErrInvalid; a
// backend failure returns an error wrapping ErrUnavailable.
//
// Implementations are safe for concurrent use.
type Limiter interface {
	Allow(ctx context.Context, key string, limit Limit, cost int) (Decision, error)
}

// LimiterFunc adapts a function to the Limiter interface.
type LimiterFunc func(ctx context.Context, key string, limit Limit, cost int) (Decision, error)

// Allow calls f.
func (f LimiterFunc) Allow(ctx context.Context, key string, limit Limit, cost int) (Decision, error) {
	return f(ctx, key, limit, cost)
}

// CheckRequest validates the arguments of Limiter.Allow (the limit's numbers;
// its name is escaped by SetHeaders) and returns the cost
// capped at the limit's burst. Limiter implementations call it first so that
// they all treat bad input and oversized costs alike.
func CheckRequest(key string, limit Limit, cost int) (int, error) {
	if key == "" {
		return 0, fmt.Errorf("%w: empty key", ErrInvalid)
	}
	if cost < 0 {
		return 0, fmt.Errorf("%w: negative cost %d", ErrInvalid, cost)
	}
	if err := limit.validateNumbers(); err != nil {
		return 0, err
	}
	if b := limit.EffectiveBurst(); cost > b {
		cost = b
	}
	return cost, nil
}

// ceilDuration converts seconds to a Duration, rounded up to the microsecond
// plus one microsecond, so that a computed wait is never shorter than the
// real one despite floating-point error.
func ceilDuration(seconds float64) time.Duration {
	if seconds <= 0 {
		return 0
	}
	us := math.Ceil(seconds*1e6) + 1
	if us >= float64(math.MaxInt64/int64(time.Microsecond)) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(us) * time.Microsecond
}
