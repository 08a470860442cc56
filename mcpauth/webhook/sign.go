package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names.
const (
	HeaderDelivery  = "Mcpauth-Delivery"
	HeaderTimestamp = "Mcpauth-Timestamp"
	HeaderSignature = "Mcpauth-Signature"
)

// DefaultTolerance is the clock difference Verify accepts when given a
// tolerance of 0.
const DefaultTolerance = 5 * time.Minute

// Errors from Verify. Each one is wrapped with detail that never contains
// the secret or the expected signature.
var (
	ErrMissingHeader = errors.New("mcpauth/webhook: missing signature header")
	ErrBadTimestamp  = errors.New("mcpauth/webhook: timestamp outside the tolerance")
	ErrBadSignature  = errors.New("mcpauth/webhook: signature does not match")
)

// signatureVersion is the scheme tag in Mcpauth-Signature.
const signatureVersion = "v1"

// Sign returns the Mcpauth-Signature value for body sent at the given Unix
// timestamp: "v1=" and the hex HMAC-SHA256 of secret over
// "<timestamp>.<body>". It is what Notifier sends; receivers use Verify.
func Sign(secret []byte, timestamp int64, body []byte) string {
	return signatureVersion + "=" + hex.EncodeToString(mac(secret, strconv.FormatInt(timestamp, 10), body))
}

func mac(secret []byte, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a received webhook: the Mcpauth-Timestamp header must be
// within tolerance of now (0 means DefaultTolerance), and one of the "v1="
// values of Mcpauth-Signature (several may be given, comma-separated) must
// be the HMAC-SHA256 of secret over timestamp + "." + body, compared in
// constant time. body must be the raw bytes received. It returns nil or an
// error matching ErrMissingHeader, ErrBadTimestamp or ErrBadSignature.
func Verify(secret []byte, header http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	if len(secret) == 0 {
		return fmt.Errorf("%w: empty secret", ErrBadSignature)
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	ts := header.Get(HeaderTimestamp)
	sig := header.Get(HeaderSignature)
	switch {
	case ts == "":
		return fmt.Errorf("%w: %s", ErrMissingHeader, HeaderTimestamp)
	case sig == "":
		return fmt.Errorf("%w: %s", ErrMissingHeader, HeaderSignature)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sec <= 0 || len(ts) > 12 {
		return fmt.Errorf("%w: %s is not a Unix time in seconds", ErrBadTimestamp, HeaderTimestamp)
	}
	skew := now.Sub(time.Unix(sec, 0))
	if skew > tolerance || skew < -tolerance {
		return fmt.Errorf("%w: signed %s from now, tolerance %s", ErrBadTimestamp, skew.Truncate(time.Second), tolerance)
	}
	want := mac(secret, ts, body)
	got := make([]byte, sha256.Size)
	ok := false
	for part := range strings.SplitSeq(sig, ",") {
		scheme, value, found := strings.Cut(strings.TrimSpace(part), "=")
		if !found || scheme != signatureVersion || hex.DecodedLen(len(value)) != sha256.Size {
			continue
		}
		if _, err := hex.Decode(got, []byte(value)); err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			ok = true // keep going: the time taken does not depend on which value matched
		}
	}
	if !ok {
		return ErrBadSignature
	}
	return nil
}
