// Command example serves the gRPC health service behind grpclimit's interceptors: every
// client IP address may make -rate calls, and calls to Check also count per API key (the
// x-api-key metadata, when sent).
//
//	go run ./example -addr 127.0.0.1:50051 -rate 5/minute
//
// With -calls N it calls itself N times, prints what each call got, and exits.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
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

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "example:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("example", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:50051", "address to listen on")
	rate := fs.String("rate", "5/minute", "calls allowed per client IP address")
	perKey := fs.String("key-rate", "2/minute", "calls to Check allowed per x-api-key")
	calls := fs.Int("calls", 0, "if > 0, call the server this many times, print the outcomes and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ipLimit, err := ratelimit.ParseLimit(*rate)
	if err != nil {
		return fmt.Errorf("-rate: %w", err)
	}
	keyLimit, err := ratelimit.ParseLimit(*perKey)
	if err != nil {
		return fmt.Errorf("-key-rate: %w", err)
	}

	store := memorystore.New(nil)
	defer store.Close()
	in := grpclimit.Interceptor{
		Rules: []grpclimit.Rule{
			{Name: "per-ip", Limiter: ratelimit.New(store, ratelimit.GCRA, ipLimit)},
			{
				Name:       "per-key",
				Limiter:    ratelimit.New(store, ratelimit.GCRA, keyLimit),
				Methods:    []string{"/grpc.health.v1.Health/Check"},
				Key:        grpclimit.Metadata("x-api-key"),
				KeyClass:   "api_key",
				MissingKey: grpclimit.MissingKeySkip,
			},
		},
		OnError: func(_ context.Context, method string, err error) {
			fmt.Fprintf(stderr, "rate limiter error on %s: %v\n", method, err)
		},
	}
	if err := in.Validate(); err != nil {
		return err
	}
	srv := grpc.NewServer(
		grpc.UnaryInterceptor(in.UnaryServerInterceptor()),
		grpc.StreamInterceptor(in.StreamServerInterceptor()),
	)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	defer srv.Stop()

	if *calls <= 0 {
		fmt.Fprintf(stdout, "serving on %s, %v per client IP\n", lis.Addr(), ipLimit)
		select {
		case <-ctx.Done():
			srv.GracefulStop()
			return nil
		case err := <-served:
			return err
		}
	}
	return callSelf(ctx, lis.Addr().String(), *calls, stdout)
}

// callSelf calls Check n times with the API key "demo" and prints each outcome.
func callSelf(ctx context.Context, addr string, n int, stdout io.Writer) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	ctx = metadata.AppendToOutgoingContext(ctx, "x-api-key", "demo")
	for i := 1; i <= n; i++ {
		var header, trailer metadata.MD
		_, err := client.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&header), grpc.Trailer(&trailer))
		if err == nil {
			fmt.Fprintf(stdout, "call %d: OK  ratelimit: %s\n", i, first(header, "ratelimit"))
			continue
		}
		st, ok := status.FromError(err)
		if !ok {
			return err
		}
		var retry time.Duration
		for _, d := range st.Details() {
			if ri, ok := d.(*errdetails.RetryInfo); ok {
				retry = ri.GetRetryDelay().AsDuration()
			}
		}
		if retry == 0 {
			return errors.Join(fmt.Errorf("call %d", i), err)
		}
		fmt.Fprintf(stdout, "call %d: %v  retry in %v  ratelimit: %s\n", i, st.Code(), retry.Round(time.Second), first(trailer, "ratelimit"))
	}
	return nil
}

func first(md metadata.MD, key string) string {
	if v := md.Get(key); len(v) > 0 {
		return v[0]
	}
	return "-"
}
