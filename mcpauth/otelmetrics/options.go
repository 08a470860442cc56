package otelmetrics

import (
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// maxSets bounds the attribute sets one instrument keeps. mcpauth passes
// only constants (a few dozen combinations); past the bound, sets are built
// per measurement instead of kept.
const maxSets = 1024

// opts is one attribute set as the option slices the instruments take:
// passing a slice that exists (opts...) allocates nothing, a new variadic
// argument would escape to the heap on every measurement.
type opts struct {
	record []metric.RecordOption
	add    []metric.AddOption
}

func optsOf(set attribute.Set) opts {
	o := metric.WithAttributeSet(set)
	return opts{record: []metric.RecordOption{o}, add: []metric.AddOption{o}}
}

// options are the measurement options of an instrument, one per attribute
// combination, built on first use. Reads are one atomic load and a map
// lookup, with no lock: the map is replaced, never changed.
type options[K comparable] struct {
	make func(K) attribute.Set
	mu   sync.Mutex
	m    atomic.Pointer[map[K]opts]
}

func (o *options[K]) get(k K) opts {
	if m := o.m.Load(); m != nil {
		if opt, ok := (*m)[k]; ok {
			return opt
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	old := o.m.Load()
	if old != nil {
		if opt, ok := (*old)[k]; ok {
			return opt
		}
	}
	opt := optsOf(o.make(k))
	if old != nil && len(*old) >= maxSets {
		return opt
	}
	next := make(map[K]opts, 1+len(ptrMap(old)))
	for key, v := range ptrMap(old) {
		next[key] = v
	}
	next[k] = opt
	o.m.Store(&next)
	return opt
}

func ptrMap[K comparable](m *map[K]opts) map[K]opts {
	if m == nil {
		return nil
	}
	return *m
}
