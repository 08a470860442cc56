module github.com/mcpauth/mcpauth/bench

go 1.25.5

replace github.com/mcpauth/mcpauth => ../

require (
	github.com/mcpauth/mcpauth v0.0.0-00010101000000-000000000000
	github.com/sethvargo/go-limiter v0.7.1
)

require golang.org/x/time v0.15.0 // indirect
