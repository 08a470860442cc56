package ratelimit

import (
	"context"
	"reflect"
	"strconv"
	"testing"
	"time"
	"unsafe"
)

func TestEntryIs48Bytes(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("64-bit layout only")
	}
	if got := unsafe.Sizeof(entry{}); got != 48 {
		t.Fatalf("entry is %d bytes, want 48", got)
	}
}

// Many keys in one shard: each has its own bucket through growth, the
// sweeper drops only idle full buckets, and the table shrinks back.
func TestMemoryTableGrowsAndShrinks(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := NewMemory(&MemoryOptions{Shards: 1, IdleTimeout: time.Minute, SweepInterval: time.Hour, Now: func() time.Time { return now }})
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	ctx := context.Background()
	one := Limit{Name: "t", Rate: 1, Per: time.Hour}
	const n = 5000
	for i := range n {
		d, err := m.Allow(ctx, "k:"+strconv.Itoa(i), one, 1)
		if err != nil || !d.Allowed {
			t.Fatalf("key %d: first request refused (%v)", i, err)
		}
	}
	if got := m.Len(); got != n {
		t.Fatalf("Len %d, want %d", got, n)
	}
	for i := range n {
		if d, _ := m.Allow(ctx, "k:"+strconv.Itoa(i), one, 1); d.Allowed {
			t.Fatalf("key %d: second request admitted: buckets are shared", i)
		}
	}
	sh := &m.shards[0]
	if len(sh.slots) < n*4/3 {
		t.Fatalf("table of %d slots for %d keys", len(sh.slots), n)
	}
	// An hour later every bucket is full again; the even keys are used
	// then, so only the odd ones are idle at the sweep.
	now = now.Add(time.Hour)
	for i := 0; i < n; i += 2 {
		if d, _ := m.Allow(ctx, "k:"+strconv.Itoa(i), one, 0); !d.Allowed {
			t.Fatalf("key %d: refilled bucket refused", i)
		}
	}
	now = now.Add(30 * time.Second)
	m.sweep()
	if got := m.Len(); got != n/2 {
		t.Fatalf("Len %d after sweep, want %d", got, n/2)
	}
	for i := 0; i < n; i += 2 {
		if d, _ := m.Allow(ctx, "k:"+strconv.Itoa(i), one, 0); d.Remaining != 1 {
			t.Fatalf("key %d lost its bucket in the rebuild: %+v", i, d)
		}
	}
	now = now.Add(2 * time.Minute)
	m.sweep()
	if m.Len() != 0 || len(sh.slots) != minSlots {
		t.Fatalf("after every key went idle: Len %d, %d slots", m.Len(), len(sh.slots))
	}
}

// The table is not scanned by the garbage collector.
func TestEntryHoldsNoPointers(t *testing.T) {
	typ := reflect.TypeFor[entry]()
	for i := range typ.NumField() {
		switch typ.Field(i).Type.Kind() {
		case reflect.Uint64, reflect.Int64, reflect.Float64, reflect.Int:
		default:
			t.Fatalf("entry.%s is a %s", typ.Field(i).Name, typ.Field(i).Type)
		}
	}
}
