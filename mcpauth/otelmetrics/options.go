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

// opts is one attribute set as the option slice the histograms take:
// passing a slice that exists (opts...) allocates nothing, a new variadic
// argument would escape to the heap on every measurement.
type opts struct {
	record []metric.RecordOption
}

func optsOf(set attribute.Set) opts {
	return opts{record: []metric.RecordOption{metric.WithAttributeSet(set)}}
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

// counters are the values of one observed counter, one per attribute
// combination, built on first use: counting is one atomic load, a map
// lookup and an atomic add, with no lock and no call into the SDK; the
// SDK reads them (observe) when it collects. Past maxSets combinations,
// counts go to one set with the SDK's own overflow attribute,
// otel.metric.overflow=true.
type counters[K comparable] struct {
	make     func(K) attribute.Set
	mu       sync.Mutex
	m        atomic.Pointer[map[K]*count]
	overflow count
}

// count is one attribute combination's value.
type count struct {
	n   atomic.Int64
	opt metric.ObserveOption
}

var overflowSet = metric.WithAttributeSet(attribute.NewSet(attribute.Bool("otel.metric.overflow", true)))

func (c *counters[K]) add(k K) {
	if m := c.m.Load(); m != nil {
		if n, ok := (*m)[k]; ok {
			n.n.Add(1)
			return
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := ptrCounts(c.m.Load())
	if n, ok := old[k]; ok {
		n.n.Add(1)
		return
	}
	if len(old) >= maxSets {
		c.overflow.n.Add(1)
		return
	}
	n := &count{opt: metric.WithAttributeSet(c.make(k))}
	n.n.Add(1)
	next := make(map[K]*count, 1+len(old))
	for key, v := range old {
		next[key] = v
	}
	next[k] = n
	c.m.Store(&next)
}

// observe reports every combination's value to o as inst's.
func (c *counters[K]) observe(o metric.Observer, inst metric.Int64Observable) {
	for _, n := range ptrCounts(c.m.Load()) {
		o.ObserveInt64(inst, n.n.Load(), n.opt)
	}
	if v := c.overflow.n.Load(); v > 0 {
		o.ObserveInt64(inst, v, overflowSet)
	}
}

func ptrCounts[K comparable](m *map[K]*count) map[K]*count {
	if m == nil {
		return nil
	}
	return *m
}
