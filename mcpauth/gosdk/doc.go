// Package gosdk connects mcpauth to the official MCP Go SDK
// (github.com/modelcontextprotocol/go-sdk).
//
// # Identity
//
// The SDK hands tool handlers the caller's identity through
// req.Extra.TokenInfo, and binds each stateful session to TokenInfo.UserID,
// rejecting a session ID presented with another user's key (403 "session
// user mismatch"). Values added to later HTTP requests' contexts do not
// reach handlers of a stateful session, so the principal must travel as
// TokenInfo. Bridge does that:
//
//	handler := mcp.NewStreamableHTTPHandler(getServer, nil)
//	mux.Handle("/mcp", guard.Require(gosdk.Bridge(handler)))
//
// and tool handlers read the principal with Principal(req.Extra).
//
// # Policy at the MCP layer
//
// Middleware is a receiving middleware for the SDK server
// (server.AddReceivingMiddleware). With the same *scope.Policy as
// mcpauth.Options.Policy it
//
//   - filters tools/list, prompts/list, resources/list and
//     resources/templates/list to what the principal may use
//     (scope.Policy.Visible), and marks those results private for caching;
//   - refuses tools/call, resources/read, resources/subscribe,
//     resources/unsubscribe, prompts/get, completion/complete and the
//     resource subscriptions of subscriptions/listen that the policy refuses,
//     with a JSON-RPC error (code mcpauth.RPCCodeForbidden, -32011) whose
//     message is the policy's reason, written for the model
//     (`tool "delete_document" requires scope documents:delete`);
//   - refuses every request that carries no principal (the server is not
//     behind Require and Bridge): fail closed.
//
// The HTTP middleware (mcpauth.Guard.Require with Options.Policy) already
// refuses forbidden messages before the SDK reads them; Middleware is the
// second line: it also holds when the HTTP policy is missing or
// misconfigured, and it is the only layer that can hide list entries.
//
// # Concurrency
//
// Everything here is safe for concurrent use; Middleware keeps no state
// besides the immutable policy.
package gosdk
