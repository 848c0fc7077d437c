module github.com/go-ratelimit/ratelimit/bench/redis

go 1.26.0

require (
	github.com/go-ratelimit/ratelimit v0.0.0-20261204021913-50e0e08f6b31
	github.com/go-redis/redis_rate/v10 v10.0.1
	github.com/redis/go-redis/v9 v9.23.0
	github.com/redis/rueidis v1.0.79
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
)
