module github.com/mcpauth/mcpauth/ratelimit/redislimit

go 1.25.5

require (
	github.com/redis/go-redis/v9 v9.22.0
	github.com/stretchr/testify v1.12.1
	golang.org/x/time v0.15.0 // indirect
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/sys v0.47.0 // indirect
)

require github.com/mcpauth/mcpauth v0.0.0

replace github.com/mcpauth/mcpauth => ../..
