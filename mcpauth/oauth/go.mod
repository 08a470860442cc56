module github.com/mcpauth/mcpauth/mcpauth/oauth

go 1.25.5

require (
	github.com/go-jose/go-jose/v4 v4.1.9
	github.com/mcpauth/mcpauth v0.0.0
	github.com/stretchr/testify v1.12.1
)

require (
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/time v0.15.0 // indirect
)

replace github.com/mcpauth/mcpauth => ../..
