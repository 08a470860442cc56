package main

import (
	"context"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/mcpauth/mcpauth/audit"
	"github.com/mcpauth/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/mcpauth/otelmetrics"
)

// withMetrics is -metrics: the protected server records its metrics.
var withMetrics bool

// setMetrics sets opts.Metrics with -metrics: otelmetrics into an
// OpenTelemetry SDK MeterProvider whose reader is only read on demand, as a
// Prometheus exporter is between scrapes; w's counts are observed too. It
// returns what shuts the provider down.
func setMetrics(opts *mcpauth.Options, w *audit.Writer) (func(context.Context) error, error) {
	if !withMetrics {
		return func(context.Context) error { return nil }, nil
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	m, err := otelmetrics.New(provider)
	if err != nil {
		return nil, err
	}
	opts.Metrics = m
	if w != nil {
		if _, err := otelmetrics.ObserveAudit(provider, w); err != nil {
			return nil, err
		}
	}
	return provider.Shutdown, nil
}
