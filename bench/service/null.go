package main

import (
	"context"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	rls "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc"
)

// nullRLS answers every ShouldRateLimit with OK and does nothing else. Run as
// a target of its own it shows what the load generator and gRPC cost on this
// machine: no rate limit service can be measured faster than it.
type nullRLS struct {
	rls.UnimplementedRateLimitServiceServer
}

var okResponse = &rls.RateLimitResponse{OverallCode: rls.RateLimitResponse_OK}

func (nullRLS) ShouldRateLimit(context.Context, *rls.RateLimitRequest) (*rls.RateLimitResponse, error) {
	return okResponse, nil
}

// serveNull serves nullRLS on addr (loopback only) until SIGINT, SIGTERM or
// maxLife, whichever comes first. workers > 0 serves the calls on that many
// long-lived goroutines (grpc.NumStreamWorkers) instead of one new goroutine
// per call.
func serveNull(addr string, maxLife time.Duration, workers uint32) error {
	if err := checkLoopback(addr); err != nil {
		return err
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	var opts []grpc.ServerOption
	if workers > 0 {
		opts = append(opts, grpc.NumStreamWorkers(workers))
	}
	srv := grpc.NewServer(opts...)
	rls.RegisterRateLimitServiceServer(srv, nullRLS{})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, maxLife)
	defer cancel()
	go func() {
		<-ctx.Done()
		srv.Stop()
	}()
	return srv.Serve(lis)
}
