module github.com/mcpauth/mcpauth/mcpauth/internal/fleet

go 1.25.5

require (
	github.com/jackc/pgx/v5 v5.12.0
	github.com/mcpauth/mcpauth v0.0.0
	github.com/mcpauth/mcpauth/ratelimit/redislimit v0.0.0
	github.com/mcpauth/mcpauth/store/redisnotify v0.0.0
	github.com/mcpauth/mcpauth/store/sqlstore/pgnotify v0.0.0
	github.com/redis/go-redis/v9 v9.22.0
	github.com/stretchr/testify v1.12.1
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/jackc/pgpassfile v1.0.0 // indirect
	github.com/jackc/pgservicefile v0.0.0-20240606120523-5a60cdf6a761 // indirect
	github.com/jackc/puddle/v2 v2.2.3 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/sync v0.22.0 // indirect
	golang.org/x/sys v0.47.0 // indirect
	golang.org/x/text v0.41.0 // indirect
	golang.org/x/time v0.15.0 // indirect
)

replace (
	github.com/mcpauth/mcpauth => ../../..
	github.com/mcpauth/mcpauth/ratelimit/redislimit => ../../../ratelimit/redislimit
	github.com/mcpauth/mcpauth/store/redisnotify => ../../../store/redisnotify
	github.com/mcpauth/mcpauth/store/sqlstore/pgnotify => ../../../store/sqlstore/pgnotify
)
