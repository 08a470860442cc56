package audit

import (
	"encoding/binary"
	"sync"
	"time"
	"unsafe"
)

// queue is the Writer's bounded queue: a ring of fixed-size slots in one
// byte slice, each holding one event's fields copied in (slotLayout). The
// slice has no pointers, so the garbage collector never scans it however
// large the queue: only the events it cannot hold that way (Strict events,
// which carry their caller's reply channel; events with Attributes, a time
// zone other than UTC or Local, or more text than a slot holds) are kept as
// they are, in a map the size of what is queued of them.
//
// The writer goroutine is woken only when it asked to be (want): for the
// first event after it found the queue empty, then when a batch is full or
// a Strict event waits; the FlushInterval timer covers the rest. Producers
// that find the queue full (Blocking, Strict) are queued in arrival order
// as slots free up.
type queue struct {
	mu      sync.Mutex
	slots   []byte
	size    int // capacity, in events
	head, n int // the oldest queued slot; the number queued (taken ones included until released)
	taken   int // slots from head handed to the writer, not yet released
	boxed   map[int]item
	boxPeak int // the most boxed events since boxed was made
	strict  int // Strict events queued
	want    int // wake the writer once n reaches want; 0: it does not wait
	wake    chan struct{}
	waiters []*waiter // producers waiting for a slot, oldest first
}

// waiter is a producer waiting for a slot: release queues its item for it,
// in arrival order, and closes queued.
type waiter struct {
	it     item
	queued chan struct{}
}

const (
	slotSize   = 512
	slotHeader = 48 + 2*nSlotStrings
	// nSlotStrings is the number of text fields copied into a slot:
	// the 19 strings of an Event and its Arguments.
	nSlotStrings = 20
	slotText     = slotSize - slotHeader

	slotBoxed byte = 1 << iota
	slotLocal
)

func newQueue(size int) *queue {
	return &queue{
		slots: make([]byte, size*slotSize),
		size:  size,
		boxed: make(map[int]item),
		wake:  make(chan struct{}, 1),
	}
}

// free is the number of free slots.
func (q *queue) free() int { return q.size - q.n }

// push copies it into the next slot; the caller holds mu and has checked
// that a slot is free for it. It reports whether the writer must be woken.
func (q *queue) push(it *item) bool {
	i := (q.head + q.n) % q.size
	if it.done != nil || !q.encode(q.slots[i*slotSize:(i+1)*slotSize], &it.ev) {
		q.slots[i*slotSize] = slotBoxed
		q.boxed[i] = *it
		q.boxPeak = max(q.boxPeak, len(q.boxed))
		if it.done != nil {
			q.strict++
		}
	}
	q.n++
	if q.want > 0 && (q.n >= q.want || it.done != nil) {
		q.want = 0
		return true
	}
	return false
}

// signal wakes the writer goroutine (after push returned true, without mu).
func (q *queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// encode copies e into slot, or reports false if e cannot be held there.
func (q *queue) encode(slot []byte, e *Event) bool {
	loc := e.Time.Location()
	if len(e.Attributes) > 0 || (loc != time.UTC && loc != time.Local) {
		return false
	}
	total := len(e.ID) + len(e.RequestID) + len(e.UserID) + len(e.KeyID) + len(e.Outcome) + len(e.Reason) +
		len(e.Action) + len(e.Method) + len(e.Tool) + len(e.ResourceURI) + len(e.Prompt) + len(e.RPCID) +
		len(e.SessionID) + len(e.ProtocolVersion) + len(e.ClientIP) + len(e.UserAgent) + len(e.Arguments) +
		len(e.Credential) + len(e.Instance) + len(e.Actor)
	if total > slotText {
		return false
	}
	var flags byte
	if loc == time.Local {
		flags = slotLocal
	}
	slot[0] = flags
	le := binary.LittleEndian
	le.PutUint64(slot[8:], uint64(e.Time.Unix()))
	le.PutUint64(slot[16:], uint64(e.Time.Nanosecond()))
	le.PutUint64(slot[24:], uint64(e.Status))
	le.PutUint64(slot[32:], uint64(e.Duration))
	le.PutUint64(slot[40:], uint64(e.Count))
	w := slotWriter{slot: slot, at: slotHeader}
	w.put(e.ID)
	w.put(e.RequestID)
	w.put(e.UserID)
	w.put(e.KeyID)
	w.put(string(e.Outcome))
	w.put(e.Reason)
	w.put(string(e.Action))
	w.put(e.Method)
	w.put(e.Tool)
	w.put(e.ResourceURI)
	w.put(e.Prompt)
	w.put(e.RPCID)
	w.put(e.SessionID)
	w.put(e.ProtocolVersion)
	w.put(e.ClientIP)
	w.put(e.UserAgent)
	w.put(unsafe.String(unsafe.SliceData(e.Arguments), len(e.Arguments))) // copied, not kept
	w.put(e.Credential)
	w.put(e.Instance)
	w.put(e.Actor)
	return true
}

type slotWriter struct {
	slot []byte
	at   int // where the next text goes
	k    int // the next length's index
}

func (w *slotWriter) put(s string) {
	binary.LittleEndian.PutUint16(w.slot[48+2*w.k:], uint16(len(s)))
	w.k++
	w.at += copy(w.slot[w.at:], s)
}

// decode returns the event in slot, with its text in one new string (and
// the Arguments in one new slice): events outlive their slot.
func decode(slot []byte) Event {
	le := binary.LittleEndian
	var lens [nSlotStrings]int
	total := 0
	for k := range lens {
		lens[k] = int(le.Uint16(slot[48+2*k:]))
		total += lens[k]
	}
	text := string(slot[slotHeader : slotHeader+total])
	r := slotReader{text: text, lens: &lens}
	t := time.Unix(int64(le.Uint64(slot[8:])), int64(le.Uint64(slot[16:])))
	if slot[0]&slotLocal == 0 {
		t = t.UTC()
	}
	e := Event{
		Time:            t,
		ID:              r.next(),
		RequestID:       r.next(),
		UserID:          r.next(),
		KeyID:           r.next(),
		Outcome:         Outcome(r.next()),
		Reason:          r.next(),
		Action:          Action(r.next()),
		Method:          r.next(),
		Tool:            r.next(),
		ResourceURI:     r.next(),
		Prompt:          r.next(),
		RPCID:           r.next(),
		SessionID:       r.next(),
		ProtocolVersion: r.next(),
		ClientIP:        r.next(),
		UserAgent:       r.next(),
		Status:          int(le.Uint64(slot[24:])),
		Duration:        time.Duration(le.Uint64(slot[32:])),
		Count:           int(le.Uint64(slot[40:])),
	}
	if args := r.next(); args != "" {
		e.Arguments = []byte(args)
	}
	e.Credential, e.Instance, e.Actor = r.next(), r.next(), r.next()
	return e
}

type slotReader struct {
	text string
	lens *[nSlotStrings]int
	k    int
}

func (r *slotReader) next() string {
	n := r.lens[r.k]
	r.k++
	s := r.text[:n]
	r.text = r.text[n:]
	return s
}

// take hands the writer up to max queued events, appended to dst. The
// slots stay counted in n until release, so producers do not reuse them
// while they are decoded (without mu).
func (q *queue) take(dst []item, max int) []item {
	q.mu.Lock()
	k := min(q.n-q.taken, max)
	start := (q.head + q.taken) % q.size
	from := len(dst)
	for j := range k {
		i := (start + j) % q.size
		if q.slots[i*slotSize]&slotBoxed != 0 {
			it := q.boxed[i]
			delete(q.boxed, i)
			if it.done != nil {
				q.strict--
			}
			dst = append(dst, it)
		} else {
			dst = append(dst, item{})
		}
	}
	q.taken += k
	q.mu.Unlock()
	for j := range k {
		i := (start + j) % q.size
		if q.slots[i*slotSize]&slotBoxed == 0 {
			dst[from+j].ev = decode(q.slots[i*slotSize : (i+1)*slotSize])
		}
	}
	return dst
}

// release frees the slots of every event taken so far and queues the
// items of waiting producers in the freed slots, oldest first.
func (q *queue) release() {
	q.mu.Lock()
	q.head = (q.head + q.taken) % q.size
	q.n -= q.taken
	q.taken = 0
	if len(q.boxed) == 0 && q.boxPeak > 64 {
		q.boxed, q.boxPeak = make(map[int]item), 0 // maps do not shrink
	}
	for len(q.waiters) > 0 && q.free() > 0 {
		wt := q.waiters[0]
		q.waiters[0] = nil
		q.waiters = q.waiters[1:]
		q.push(&wt.it)
		close(wt.queued)
	}
	if len(q.waiters) == 0 {
		q.waiters = nil
	}
	q.mu.Unlock()
}

// ready reports, under mu, whether a batch is ready (full, or a Strict
// event waits) and, if not, asks to be woken when one is or, with an empty
// queue, at the first event.
func (q *queue) ready(batch int) (ready bool, queued int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	avail := q.n - q.taken
	if avail >= batch || q.strict > 0 {
		return true, avail
	}
	if avail == 0 {
		q.want = 1
	} else {
		q.want = q.n + (batch - avail)
	}
	return false, avail
}

// queued is the number of events in the queue, taken ones included.
func (q *queue) queued() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}
