package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	*l = append(*l, s)
	return nil
}

// parseDuration is time.ParseDuration that also takes whole days ("90d").
func parseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 || days > 100*366 {
			return 0, fmt.Errorf("want a duration such as 720h or 30d")
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("want a duration such as 720h or 30d")
	}
	return d, nil
}

// durationFlag is a non-negative duration that accepts days.
type durationFlag struct{ d time.Duration }

func (f *durationFlag) String() string {
	if f == nil {
		return ""
	}
	return showDuration(f.d)
}

// showDuration writes whole days as "7d" and whole hours as "24h".
func showDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d%(24*time.Hour) == 0 && d >= 48*time.Hour:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	}
	return d.String()
}

func (f *durationFlag) Set(s string) error {
	d, err := parseDuration(s)
	if err != nil {
		return err
	}
	if d < 0 {
		return fmt.Errorf("must not be negative")
	}
	f.d = d
	return nil
}

// lifetimeFlag is a key lifetime: a positive duration, or "never".
type lifetimeFlag struct {
	d     time.Duration
	never bool
}

func (f *lifetimeFlag) String() string {
	switch {
	case f == nil:
		return ""
	case f.never:
		return "never"
	case f.d == 0:
		return ""
	}
	return showDuration(f.d)
}

func (f *lifetimeFlag) Set(s string) error {
	if s == "never" {
		*f = lifetimeFlag{never: true}
		return nil
	}
	d, err := parseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration such as 720h or 30d, or never")
	}
	if d <= 0 {
		return fmt.Errorf("must be positive (or never)")
	}
	*f = lifetimeFlag{d: d}
	return nil
}

// managerLifetime is the keyadmin.Options.DefaultLifetime for the flag.
func (f *lifetimeFlag) managerLifetime() time.Duration {
	if f.never {
		return -1
	}
	return 0
}

// timeFlag is a point in time: RFC 3339, a date (UTC midnight), or a
// duration before now ("24h" means 24 hours ago).
type timeFlag struct {
	t   time.Time
	ago time.Duration
	set bool
}

func (f *timeFlag) String() string {
	if f == nil || !f.set {
		return ""
	}
	if !f.t.IsZero() {
		return f.t.Format(time.RFC3339)
	}
	return showDuration(f.ago) + " ago"
}

func (f *timeFlag) Set(s string) error {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		*f = timeFlag{t: t, set: true}
		return nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		*f = timeFlag{t: t, set: true}
		return nil
	}
	if d, err := parseDuration(s); err == nil && d > 0 {
		*f = timeFlag{ago: d, set: true}
		return nil
	}
	return fmt.Errorf("want an RFC 3339 time (2026-01-02T15:04:05Z), a date (2026-01-02) or a duration before now (24h, 7d)")
}

// at resolves the flag against now; zero when unset.
func (f *timeFlag) at(now time.Time) time.Time {
	switch {
	case !f.set:
		return time.Time{}
	case !f.t.IsZero():
		return f.t
	}
	return now.Add(-f.ago)
}
