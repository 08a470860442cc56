package mcpauth

import (
	"errors"
	"net/http"
)

// RefusalMode chooses how Require answers a refused MCP POST. Whatever the
// mode, the body is a JSON-RPC error response carrying the request's id (an
// array, one element per request, for a batch), with a code no official
// SDK uses for itself (see RPCCodeForbidden). docs/refusals.md lists what
// each official client returns in each mode.
type RefusalMode uint8

const (
	// RefusalHTTP answers with the HTTP status of the refusal (401, 403,
	// 429, ...) and the WWW-Authenticate challenge, as the MCP
	// authorization specification expects: OAuth-aware clients act on 401
	// and on 403 insufficient_scope. The default.
	RefusalHTTP RefusalMode = iota
	// RefusalJSONRPC answers policy, account, address, rate-limit and
	// backend-unavailable refusals with HTTP 200 and the JSON-RPC error, for
	// clients that surface JSON-RPC errors but not HTTP errors (the go-sdk
	// client reads no body of a 429 or 503). 401 (no or bad key), 400 and
	// 413 keep their status: they are about the credential or the body.
	RefusalJSONRPC
	// RefusalToolResult is RefusalJSONRPC, and a refused tools/call (not in
	// a batch) is answered as a successful call whose result has isError
	// set and the reason as its text: the form every client hands to the
	// model.
	RefusalToolResult
)

// inBand reports whether a refusal may be answered with HTTP 200 in the
// JSON-RPC modes.
func inBand(status int) bool {
	return status == http.StatusForbidden || status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable
}

// WriteError answers err for r as the Guard whose Require authenticated r
// would: through its Options.ErrorHandler, in its realm and refusal mode.
// For a request that did not pass through a Guard it writes
// ResponseFor(err, "mcp"). SDK adapters answer their own refusals with it, so
// that one hook shapes every response. err should be (or wrap) one of this
// package's errors; its text is never sent.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	if e := entryFrom(r.Context()); e != nil && e.guard != nil {
		e.guard.fail(w, r, err)
		return
	}
	ResponseFor(err, defaultRealm).Write(w)
}

// fail writes the response for a refusal, through Options.ErrorHandler
// when set.
func (g *Guard) fail(w http.ResponseWriter, r *http.Request, err error) {
	if g.opts.ErrorHandler != nil {
		g.opts.ErrorHandler(w, r, err)
		return
	}
	g.responseFor(err).Write(w)
}

// responseFor is ResponseFor in the Guard's realm and refusal mode, its
// challenges carrying resource_metadata with Options.OAuth.
func (g *Guard) responseFor(err error) Response {
	resp := responseWithMessages(err, g.bearer)
	if g.opts.Refusals == RefusalHTTP || !resp.JSONRPC || !inBand(resp.Status) {
		return resp
	}
	resp.Status, resp.Challenge = http.StatusOK, ""
	var me *messagesError
	if g.opts.Refusals == RefusalToolResult && errors.As(err, &me) && me.tool && !me.batch {
		resp.ToolResult = true
	}
	return resp
}
