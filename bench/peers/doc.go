// Package peers holds benchmarks that run mcpauth's components against
// the libraries a user would otherwise pick, in the same run: the
// in-memory limiter against sethvargo/go-limiter's memorystore (goal 4 of
// the performance issue). It is in the bench module so that no peer ever
// enters the library's dependencies.
package peers
