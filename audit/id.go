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
	b = append(b, idPrefix[:]...)
	b = append(b, "0000000000"...)
	// The counter's low 50 bits, 5 a character, most significant first;
	// unrolled, each character is independent of the others.
	t := b[len(b)-10:]
	_ = t[9]
	t[0], t[1] = idAlphabet[n>>45&31], idAlphabet[n>>40&31]
	t[2], t[3] = idAlphabet[n>>35&31], idAlphabet[n>>30&31]
	t[4], t[5] = idAlphabet[n>>25&31], idAlphabet[n>>20&31]
	t[6], t[7] = idAlphabet[n>>15&31], idAlphabet[n>>10&31]
	t[8], t[9] = idAlphabet[n>>5&31], idAlphabet[n&31]
	return b
}
