// Package redis holds the benchmarks and measurements of the Redis store, in a module of
// their own so that the libraries compared never become dependencies of the main module.
//
//	BENCH_REDIS_MEASURE=1 go test -run 'TestMemoryPerKey|TestServerCost' -v   # memory per key, server CPU per call
//	go test -run '^$' -bench . -benchtime 3s               # throughput and latency
//
// They start their own redis-server (see internal/redistest), or use REDIS_ADDR.
package redis
