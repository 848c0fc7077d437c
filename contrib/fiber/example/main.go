// Command example is a small fiber server limited per client IP address, with a tighter
// limit on logins, on the in-memory store: examples/http with fiber as the router.
//
//	cd contrib/fiber && go run ./example
//	cd contrib/fiber && go run ./example -addr 127.0.0.1:8090 -limit 100/minute -login-limit 5/minute
//
// Try it with curl -i http://127.0.0.1:8090/hello: every response carries the RateLimit
// and RateLimit-Policy headers; once over the limit, the answer is 429 with Retry-After
// and a problem+json body. GET /healthz is never limited.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/go-ratelimit/ratelimit"
	fiberlimit "github.com/go-ratelimit/ratelimit/contrib/fiber"
	"github.com/go-ratelimit/ratelimit/httplimit"
	"github.com/go-ratelimit/ratelimit/memorystore"
	"github.com/gofiber/fiber/v3"
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
// rate-limit errors (a failing store) to stderr.
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
	// The rule patterns match the request whatever fiber route serves it, so the
	// middleware can run under app.Use. fiberlimit.FullPath and fiberlimit.Param key a
	// rule by fiber's route instead; they need the handler among the route's own
	// handlers, app.Post("/login", fiberlimit.New(m), login), as fiber matches routes
	// one handler at a time.
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

	app := fiber.New(fiber.Config{ReadTimeout: 10 * time.Second})
	app.Use(fiberlimit.New(mw))
	app.Get("/hello", func(c fiber.Ctx) error { return c.SendString("hello\n") })
	app.Post("/login", func(c fiber.Ctx) error { return c.SendString("welcome\n") })
	app.Get("/healthz", func(c fiber.Ctx) error { return c.SendString("ok\n") })

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())

	errc := make(chan error, 1)
	go func() { errc <- app.Listener(ln, fiber.ListenConfig{DisableStartupMessage: true}) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	shutdownErr := app.ShutdownWithContext(shutdown)
	// Listener returns nil once its listener is closed. Shutdown closes the listeners
	// the server has started serving; closing ln too covers a ctx that ended before
	// Listener got that far.
	ln.Close()
	if err := <-errc; err != nil {
		return err
	}
	return shutdownErr
}
