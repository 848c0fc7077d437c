package grpclimit_test

import (
	"context"
	"net"
	"testing"

	"github.com/go-ratelimit/ratelimit/concurrency"
	"github.com/go-ratelimit/ratelimit/grpclimit"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// TestConcurrencyRefusesOverTheLimit runs a real gRPC server on loopback whose
// concurrency limit is 1: while one slot is held, a call fails with Unavailable and a
// retry pushback; once it is released, calls pass.
func TestConcurrencyRefusesOverTheLimit(t *testing.T) {
	lim, err := concurrency.New(&concurrency.Options{Algorithm: concurrency.Fixed(1), InitialLimit: 1})
	if err != nil {
		t.Fatal(err)
	}
	conc := &grpclimit.Concurrency{Limiter: lim}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(conc.UnaryServerInterceptor()), grpc.StreamInterceptor(conc.StreamServerInterceptor()))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	client := healthpb.NewHealthClient(conn)

	held, _ := lim.Acquire(context.Background())
	var trailer metadata.MD
	_, err = client.Check(context.Background(), &healthpb.HealthCheckRequest{}, grpc.Trailer(&trailer))
	if status.Code(err) != codes.Unavailable || len(trailer.Get("grpc-retry-pushback-ms")) != 1 || trailer.Get("grpc-retry-pushback-ms")[0] != "1000" {
		t.Fatalf("call over the limit: %v, trailer %v; want Unavailable with grpc-retry-pushback-ms 1000", err, trailer)
	}
	stream, err := client.Watch(context.Background(), &healthpb.HealthCheckRequest{})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("stream over the limit: %v, want Unavailable", err)
	}
	held.Release(concurrency.Ignored)
	for range 3 {
		if _, err := client.Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatalf("call under the limit: %v", err)
		}
	}
	if st := lim.Stats(); st.InFlight != 0 || st.Rejected != 2 {
		t.Errorf("Stats = %+v, want 0 in flight and 2 rejected", st)
	}
}

// TestConcurrencyClassifies checks what the limiter hears of unary calls by their codes.
func TestConcurrencyClassifies(t *testing.T) {
	lim, err := concurrency.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	intercept := (&grpclimit.Concurrency{Limiter: lim}).UnaryServerInterceptor()
	info := &grpc.UnaryServerInfo{FullMethod: "/pkg.Service/Method"}
	for _, code := range []codes.Code{codes.OK, codes.DeadlineExceeded, codes.Unavailable, codes.NotFound, codes.Canceled} {
		_, _ = intercept(context.Background(), nil, info, func(context.Context, any) (any, error) {
			return nil, status.Error(code, "x")
		})
	}
	if st := lim.Stats(); st.Dropped != 2 || st.InFlight != 0 {
		t.Errorf("Stats = %+v, want 2 dropped (DeadlineExceeded, Unavailable), none in flight", st)
	}
}
