package grpclimit_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/grpclimit"
	"github.com/go-ratelimit/ratelimit/memorystore"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Limit every call of a server to 2 per minute per client IP address.
func ExampleInterceptor() {
	store := memorystore.New(nil)
	defer store.Close()
	limiter := ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(2))

	in := grpclimit.Interceptor{Limiter: limiter}
	srv := grpc.NewServer(
		grpc.UnaryInterceptor(in.UnaryServerInterceptor()),
		grpc.StreamInterceptor(in.StreamServerInterceptor()),
	)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(lis)
	defer srv.Stop()

	conn, _ := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	for i := 1; i <= 3; i++ {
		var header, trailer metadata.MD
		_, err := client.Check(context.Background(), &healthpb.HealthCheckRequest{},
			grpc.Header(&header), grpc.Trailer(&trailer))
		if err == nil {
			fmt.Printf("call %d: OK, %s\n", i, header.Get("ratelimit")[0])
			continue
		}
		st := status.Convert(err)
		for _, d := range st.Details() {
			if ri, ok := d.(*errdetails.RetryInfo); ok {
				fmt.Printf("call %d: %v, retry in %v, %s\n", i, st.Code(),
					ri.GetRetryDelay().AsDuration().Round(time.Second), trailer.Get("ratelimit")[0])
			}
		}
	}
	// Output:
	// call 1: OK, "default";r=1;t=30
	// call 2: OK, "default";r=0;t=60
	// call 3: ResourceExhausted, retry in 30s, "default";r=0;t=30
}

// Several rules: a per-IP limit on every call, and a tighter limit per API key on one
// method. A call passes only if both allow it, and a denied call consumes from neither.
// A call without an API key is limited by its IP address instead, in a bucket of its own.
func ExampleRule() {
	store := memorystore.New(nil)
	defer store.Close()

	in := grpclimit.Interceptor{
		Rules: []grpclimit.Rule{
			{
				Name:    "per-ip",
				Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(100)),
			},
			{
				Name:     "check-per-key",
				Limiter:  ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(1)),
				Methods:  []string{"/grpc.health.v1.Health/Check"},
				Key:      grpclimit.Metadata("x-api-key"),
				KeyClass: "api_key",
			},
		},
	}
	if err := in.Validate(); err != nil {
		fmt.Println(err)
		return
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(in.UnaryServerInterceptor()))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(lis)
	defer srv.Stop()

	conn, _ := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	for _, key := range []string{"alice", "alice", "bob", ""} {
		ctx := context.Background()
		if key != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "x-api-key", key)
		}
		_, err := client.Check(ctx, &healthpb.HealthCheckRequest{})
		fmt.Printf("%q: %v\n", key, status.Code(err))
	}
	// Output:
	// "alice": OK
	// "alice": ResourceExhausted
	// "bob": OK
	// "": OK
}
