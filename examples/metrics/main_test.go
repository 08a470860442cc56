package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Real MCP requests over HTTP show up, with their values, in a scrape of
// the Prometheus endpoint, which is served on its own port only.
func TestMetricsEndpoint(t *testing.T) {
	mcpLn, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	metricsLn, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s, err := start(mcpLn, metricsLn)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, s.close(context.Background())) })
	mcpURL := "http://" + mcpLn.Addr().String() + "/mcp"

	post := func(key, tool string) (int, string) {
		body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + tool + `","arguments":{"text":"hello from the test"}}}`
		req, err := http.NewRequest(http.MethodPost, mcpURL, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	for range 2 {
		code, body := post(s.key, "echo")
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, "hello from the test", "the tool ran")
	}
	code, _ := post("", "echo")
	require.Equal(t, http.StatusUnauthorized, code)
	code, body := post(s.key, "delete_everything")
	require.Equal(t, http.StatusForbidden, code, body)

	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	code, _ = get("http://" + mcpLn.Addr().String() + "/metrics")
	assert.Equal(t, http.StatusNotFound, code, "no metrics where clients connect")
	code, scrape := get("http://" + metricsLn.Addr().String() + "/metrics")
	require.Equal(t, http.StatusOK, code)
	samples := map[string]string{}
	for _, line := range strings.Split(scrape, "\n") {
		if strings.HasPrefix(line, "mcpauth_") {
			i := strings.LastIndexByte(line, ' ')
			samples[stripScope(line[:i])] = line[i+1:]
		}
	}
	for series, want := range map[string]string{
		`mcpauth_request_duration_seconds_count{mcpauth_credential_kind="api_key",mcpauth_outcome="allowed"}`:                                "2",
		`mcpauth_request_duration_seconds_count{error_type="no_credential",mcpauth_outcome="unauthenticated"}`:                               "1",
		`mcpauth_request_duration_seconds_count{error_type="insufficient_scope",mcpauth_credential_kind="api_key",mcpauth_outcome="denied"}`: "1",
		`mcpauth_cache_lookups_total{mcpauth_cache_result="miss",mcpauth_credential_kind="api_key"}`:                                         "1",
		`mcpauth_cache_lookups_total{mcpauth_cache_result="hit",mcpauth_credential_kind="api_key"}`:                                          "2",
		`mcpauth_store_lookup_duration_seconds_count{mcpauth_store_result="found"}`:                                                          "1",
		`mcpauth_policy_decisions_total{mcp_method_name="tools/call",mcpauth_decision="allow"}`:                                              "2",
		`mcpauth_policy_decisions_total{mcp_method_name="tools/call",mcpauth_decision="deny"}`:                                               "1",
		`mcpauth_ratelimit_decisions_total{mcpauth_decision="allow"}`:                                                                        "3",
		`mcpauth_audit_events_dropped_total{mcpauth_audit_drop_reason="queue_full"}`:                                                         "0",
	} {
		assert.Equal(t, want, samples[series], series)
	}
	_, ok := samples[`mcpauth_audit_queue_depth`]
	assert.True(t, ok, "the audit queue depth is exported")
	_, ok = samples[`mcpauth_audit_events_written_total`]
	assert.True(t, ok, "the audit written count is exported")
}

// stripScope drops the otel_scope_* labels the exporter adds to every
// series, so that the test names series by mcpauth's own attributes.
func stripScope(series string) string {
	open := strings.IndexByte(series, '{')
	if open < 0 {
		return series
	}
	var kept []string
	for _, l := range strings.Split(strings.TrimSuffix(series[open+1:], "}"), ",") {
		if !strings.HasPrefix(l, "otel_scope_") {
			kept = append(kept, l)
		}
	}
	if len(kept) == 0 {
		return series[:open]
	}
	return series[:open] + "{" + strings.Join(kept, ",") + "}"
}
