// Command example is a small gin server limited per client IP address, with a tighter
// limit on logins, on the in-memory store: examples/http with gin as the router.
//
//	cd contrib/gin && go run ./example
//	cd contrib/gin && go run ./example -addr 127.0.0.1:8090 -limit 100/minute -login-limit 5/minute
//
// Try it with curl -i http://127.0.0.1:8090/hello: every response carries the RateLimit
// and RateLimit-Policy headers; once over the limit, the answer is 429 with Retry-After
// and a problem+json body. GET /healthz is never limited.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/go-ratelimit/ratelimit"
	ginlimit "github.com/go-ratelimit/ratelimit/contrib/gin"
	"github.com/go-ratelimit/ratelimit/httplimit"
	"github.com/go-ratelimit/ratelimit/memorystore"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "example:", err)
		os.Exit(1)
	}
}

// run serves until ctx ends. It prints the address it listens on to stdout, and
// rate-limit errors (a failing store) and handler panics to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("example", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8090", "address to listen on")
	limitFlag := fs.String("limit", "100/minute", "requests per client IP, as ratelimit.ParseLimit reads it")
	loginFlag := fs.String("login-limit", "5/minute", "POST /login requests per client IP")
	if err := fs.Parse(args); err != nil {
		return err
	}
	limit, err := ratelimit.ParseLimit(*limitFlag)
	if err != nil {
		return fmt.Errorf("-limit: %w", err)
	}
	loginLimit, err := ratelimit.ParseLimit(*loginFlag)
	if err != nil {
		return fmt.Errorf("-login-limit: %w", err)
	}

	store := memorystore.New(nil)
	defer store.Close()
	// The rule patterns match the request whatever gin route serves it; ginlimit.FullPath
	// and ginlimit.Param key a rule by gin's route instead.
	mw := &httplimit.Middleware{
		Rules: []httplimit.Rule{
			{Name: "ip", Limiter: ratelimit.New(store, ratelimit.GCRA, limit)},
			{Name: "login", Pattern: "POST /login", Limiter: ratelimit.New(store, ratelimit.SlidingWindowLog, loginLimit)},
		},
		Exclude: []string{"GET /healthz"},
		OnError: func(r *http.Request, err error) {
			fmt.Fprintf(stderr, "ratelimit: %s %s: %v\n", r.Method, r.URL.Path, err)
		},
	}
	if err := mw.Validate(); err != nil {
		return err
	}

	// Release mode keeps gin's debug messages, which it writes to os.Stdout, out of the
	// output: run prints only its address.
	gin.SetMode(gin.ReleaseMode)
	router := gin.New()
	router.Use(gin.RecoveryWithWriter(stderr), ginlimit.New(mw))
	router.GET("/hello", func(c *gin.Context) { c.String(http.StatusOK, "hello\n") })
	router.POST("/login", func(c *gin.Context) { c.String(http.StatusOK, "welcome\n") })
	router.GET("/healthz", func(c *gin.Context) { c.String(http.StatusOK, "ok\n") })

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: router, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
