// Package mcpgo connects mcpauth to mark3labs/mcp-go
// (github.com/mark3labs/mcp-go).
//
// # Serving
//
// NewHandler is the wiring to start from: it returns the streamable HTTP
// handler to put inside mcpauth's Require, with HTTPContextFunc and
// Sessions already wired, so that a session is bound to the user who
// created it. Build the server with ServerOptions for the policy:
//
//	s := server.NewMCPServer("docs", "1.0.0", mcpgo.ServerOptions(policy, nil)...)
//	h, err := mcpgo.NewHandler(s, nil) // sessions bound to users
//	if err != nil {
//		log.Fatal(err)
//	}
//	mux.Handle("/mcp", guard.Require(h))
//
// # Identity
//
// HTTPContextFunc (for server.WithHTTPContextFunc) carries the principal
// that mcpauth's Require authenticated, and its parsed scopes, into the
// context of every MCP request; handlers read it with PrincipalFrom(ctx).
//
// # Policy at the MCP layer
//
// ServerOptions returns the mcp-go server options that apply the same
// *scope.Policy as mcpauth.Options.Policy:
//
//   - a request hook (Hooks.AddOnRequestInitialization) that runs before
//     mcp-go dispatches any request and refuses tools/call (task-augmented
//     calls included), resources/read, resources/subscribe,
//     resources/unsubscribe, prompts/get, completion/complete and the
//     resource subscriptions of subscriptions/listen that the policy
//     refuses. mcp-go answers a refusing hook with JSON-RPC code -32600
//     (Invalid Request) and the hook's text as the message, which is the
//     policy's reason, written for the model (`tool "delete_document"
//     requires scope documents:delete`). A request without a principal is
//     refused whatever its method (fail closed).
//   - a tool filter and a prompt filter (server.WithToolFilter,
//     server.WithPromptFilter) and after-list hooks for resources/list and
//     resources/templates/list, so that a key only sees what it may use.
//
// # Sessions
//
// mcp-go does not bind sessions to users: with its default session ID
// manager any well-formed Mcp-Session-Id is accepted, with any key, and a
// GET stream is opened for whatever session ID the request names. A server
// wired by hand with server.NewStreamableHTTPServer and HTTPContextFunc
// alone is therefore exposed: another user's key can call tools on a
// session, take its notification stream and delete it (the policy still
// applies that other key's own scopes).
//
// Sessions binds them, and NewHandler uses it: the session IDs it issues
// carry an HMAC of the user ID, and Sessions.Require refuses (403
// session_user_mismatch, through the Guard's Options.ErrorHandler) a
// request that presents a session ID issued to another user, or one it did
// not issue. If you wire mcp-go yourself, use both halves:
//
//	sessions, _ := mcpgo.NewSessions(nil)
//	httpServer := server.NewStreamableHTTPServer(mcpServer,
//		server.WithHTTPContextFunc(mcpgo.HTTPContextFunc),
//		server.WithSessionIdManagerResolver(sessions))
//	mux.Handle("/mcp", guard.Require(sessions.Require(httpServer)))
//
// # Batches
//
// mcp-go's streamable HTTP server does not accept JSON-RPC batches (it
// answers 400 with a parse error); mcpauth's Require with a Policy refuses a
// batch holding a forbidden call with 403 before that.
//
// # Concurrency
//
// Everything here is safe for concurrent use.
package mcpgo
