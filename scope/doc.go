// Package scope is mcpauth's scope grammar and MCP authorization policy:
// which scopes an API key holds (Set), and which scopes each MCP operation
// needs (Policy).
//
// # Grammar
//
// A scope is a plain action ("read", "write", "delete", "admin"), a
// resource-qualified action ("documents:read"), a resource wildcard
// ("documents:*") or the global wildcard ("*"). Segments use ASCII letters,
// digits and . _ - /; a scope is at most MaxLen bytes and case-sensitive.
// Parse rejects anything else with an error naming the input and the
// reason.
//
// # Hierarchy
//
// The seed's rules, made precise:
//
//   - "admin" and "*" grant every scope;
//   - "documents:*" grants every "documents:<action>";
//   - a plain action applies to every resource: "read" grants "read" and
//     "documents:read", "notes:read", ...;
//   - a qualified scope grants only itself: "documents:read" does not grant
//     the plain "read" nor "notes:read";
//   - no action implies another: "write" grants neither "read" nor
//     "delete"; "delete" does not grant "read".
//
// Set.Allows checks these rules without allocating.
//
// # Policy
//
// A Policy maps MCP operations to required scopes: tools/call by tool name,
// resources/read|subscribe|unsubscribe by URI, prompts/get by name,
// completion/complete by its ref. Patterns are exact strings or globs where
// "*" matches any run of characters. Exact names win over globs; among
// globs the first listed wins. Unlisted tools, resources and prompts follow
// a configurable default (deny, unless configured otherwise). initialize,
// ping, notifications, responses and every other method (tools/list, ...)
// need only a valid key.
//
// A blocklist of tool, resource and prompt patterns (globs or regular
// expressions, both matched case-insensitively) is checked first and can
// never be reached, whatever the scopes, admin included. DefaultBlocked
// (secret files: .env, private keys, .ssh, /etc/passwd and /etc/shadow,
// cloud and Kubernetes credentials) applies to resource URIs unless the
// configuration sets UnsafeNoDefaultBlocked.
//
// # Resource URIs
//
// Resource URIs are canonicalised before any rule or blocklist pattern
// sees them: scheme and host lower-cased, query, fragment and default
// ports dropped, host and path percent-decoded until nothing changes, dot
// segments removed. URIs servers disagree on (user information, a port
// no rule names on a scheme without a default port, control bytes,
// non-ASCII hosts, ".." climbing above the root or out of the matching
// rule's prefix, no scheme) are refused: the Verdict is Blocked, with a
// Reason saying why. Rule.Match has the details.
//
// Policy.Decide is a pure function of the operation and the granted Set;
// its Verdict says whether the operation is allowed, which scopes it needs
// and, when refused, a reason a model can read.
//
// # Concurrency
//
// Scope, Set and Policy are immutable after construction and safe for
// concurrent use.
package scope
