// Package redis holds the benchmarks and measurements of the Redis store, in a module of
// their own so that the libraries compared never become dependencies of the main module.
//
//	go test -run TestMemoryPerKey -v                       # Redis memory per key
//	go test -run '^$' -bench . -benchtime 3s               # throughput and latency
//
// They start their own redis-server (see internal/redistest), or use REDIS_ADDR.
package redis
