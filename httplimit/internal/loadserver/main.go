// Command loadserver serves a hello-world handler, bare or behind the middleware, for
// measuring the middleware's overhead with a load generator on loopback:
//
//	go run ./httplimit/internal/loadserver -mode bare -addr 127.0.0.1:8081 &
//	go run ./httplimit/internal/loadserver -mode middleware -addr 127.0.0.1:8082 &
//	wrk -t1 -c50 -d10s http://127.0.0.1:8081/hello
//	wrk -t1 -c50 -d10s http://127.0.0.1:8082/hello
//
// In middleware mode the limit is high enough that every request is allowed, and the
// loopback peer is a trusted proxy, so a load generator can spread requests over many
// client keys with X-Forwarded-For.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"runtime/pprof"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/httplimit"
	"github.com/go-ratelimit/ratelimit/memorystore"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadserver:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("loadserver", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8081", "address to listen on")
	mode := fs.String("mode", "bare", "bare, bare-headers, middleware, middleware-legacy or middleware-noheaders")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the serving to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello\n")
	})
	store := memorystore.New(nil)
	defer store.Close()
	lim := ratelimit.New(store, ratelimit.GCRA, ratelimit.Limit{Rate: 1 << 30, Period: 1 << 40})
	proxies := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	switch *mode {
	case "bare":
	case "bare-headers":
		// The bare handler writing two constant header fields of the middleware's size:
		// what sending the rate-limit fields costs net/http, whoever computes them.
		next := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Ratelimit-Policy"] = []string{`"default";q=1073741824;w=1100`}
			w.Header()["Ratelimit"] = []string{`"default";r=1073741823;t=1`}
			next.ServeHTTP(w, r)
		})
	case "middleware":
		h = (&httplimit.Middleware{Limiter: lim, ClientIP: httplimit.ClientIP{TrustedProxies: proxies}}).Handler(h)
	case "middleware-noheaders":
		h = (&httplimit.Middleware{Limiter: lim, ClientIP: httplimit.ClientIP{TrustedProxies: proxies}, Headers: httplimit.HeadersNone}).Handler(h)
	case "middleware-legacy":
		h = (&httplimit.Middleware{Limiter: lim, ClientIP: httplimit.ClientIP{TrustedProxies: proxies}, Headers: httplimit.HeadersLegacy}).Handler(h)
	default:
		return fmt.Errorf("-mode %q: want bare, bare-headers, middleware, middleware-legacy or middleware-noheaders", *mode)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "listening on http://%s (%s)\n", ln.Addr(), *mode)
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	srv := &http.Server{Handler: h}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}
