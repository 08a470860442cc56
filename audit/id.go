package audit

import (
	"crypto/rand"
	"encoding/binary"
	"sync/atomic"
	"time"
)

// timeNow is time.Now; sinks use it only for events without a Time.
var timeNow = time.Now

const idAlphabet = "0123456789abcdefghjkmnpqrstvwxyz" // Crockford base32, lower case

var (
	idPrefix  [10]byte      // random per process
	idCounter atomic.Uint64 // starts at a random value
)

func init() {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	p := binary.BigEndian.Uint64(b[:8])
	for i := range idPrefix {
		idPrefix[i] = idAlphabet[p&31]
		p >>= 5
	}
	idCounter.Store(binary.BigEndian.Uint64(b[8:]) >> 14)
}

// NewEventID returns a new event ID: 20 characters of lower-case Crockford
// base32, unique across processes with overwhelming probability (a random
// 50-bit per-process prefix and a 50-bit counter) and increasing within a
// process. It costs one atomic add and one 24-byte allocation; it is not a
// secret and must not be used as one. Safe for concurrent use.
func NewEventID() string {
	var b [EventIDLen]byte
	return string(AppendEventID(b[:0]))
}

// EventIDLen is the length of the IDs NewEventID returns.
const EventIDLen = 20

// AppendEventID appends a new event ID (see NewEventID) to b, for callers
// that keep it in memory of their own: it does not allocate when b has
// EventIDLen bytes of room.
func AppendEventID(b []byte) []byte {
	n := idCounter.Add(1)
	var id [EventIDLen]byte
	copy(id[:10], idPrefix[:])
	for i := EventIDLen - 1; i >= 10; i-- {
		id[i] = idAlphabet[n&31]
		n >>= 5
	}
	return append(b, id[:]...)
}
