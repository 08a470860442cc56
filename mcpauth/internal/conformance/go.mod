module github.com/mcpauth/mcpauth/mcpauth/internal/conformance

go 1.25.5

require golang.org/x/time v0.15.0 // indirect

require github.com/mcpauth/mcpauth v0.0.0

replace github.com/mcpauth/mcpauth => ../../..
