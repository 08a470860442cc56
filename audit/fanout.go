package audit

import (
	"context"
	"errors"
)

// Fanout returns a sink that records every event in each of sinks, in order.
// All sinks are tried even when one fails; the errors are joined. It
// implements BatchSink and passes batches on to sinks that are BatchSinks.
// It is safe for concurrent use if every sink is.
func Fanout(sinks ...Sink) BatchSink {
	return fanout(append([]Sink(nil), sinks...))
}

type fanout []Sink

func (f fanout) Record(ctx context.Context, e Event) error {
	var errs []error
	for _, s := range f {
		if err := s.Record(ctx, e); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (f fanout) RecordBatch(ctx context.Context, events []Event) error {
	var errs []error
	for _, s := range f {
		if err := recordBatch(ctx, s, events); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// recordBatch writes events to s as one batch if s is a BatchSink, else one
// by one, stopping at the first error.
func recordBatch(ctx context.Context, s Sink, events []Event) error {
	if bs, ok := s.(BatchSink); ok {
		return bs.RecordBatch(ctx, events)
	}
	for _, e := range events {
		if err := s.Record(ctx, e); err != nil {
			return err
		}
	}
	return nil
}
