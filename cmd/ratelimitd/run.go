package main

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/admin"
	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/engine"
	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/httpapi"
	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/live"
	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/metrics"
	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/reload"
	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/rls"
	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/rules"
	"github.com/go-ratelimit/ratelimit/httplimit"
)

//go:embed example.yaml
var exampleRules []byte

// exampleSource names the built-in rules in logs and the admin API.
const exampleSource = "built-in example"

// run is the whole service: it reads the settings from args and getenv, loads the rules,
// opens the store, serves until ctx is done, then lets in-flight requests finish and
// returns. With -check it only validates the rule files.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	s, err := parseSettings(args, getenv, stdout)
	if err != nil {
		return err
	}
	if s.version {
		fmt.Fprintln(stdout, versionLine())
		return nil
	}
	log, err := newLogger(s, stderr)
	if err != nil {
		return err
	}
	srcs := []rules.Source{{Name: exampleSource, Data: exampleRules}}
	if s.config != "" {
		if srcs, err = reload.Read(s.config); err != nil {
			return err
		}
	}
	set, err := rules.Compile(srcs)
	if s.check {
		if err != nil {
			return fmt.Errorf("invalid rules:\n%w", err)
		}
		fmt.Fprintf(stdout, "ok: %d domains, %d rules in %d files\n", len(set.Domains()), set.Len(), len(srcs))
		return nil
	}
	if err != nil {
		return fmt.Errorf("invalid rules:\n%w", err)
	}
	headers, err := httplimit.ParseHeaderStyle(s.headers)
	if err != nil {
		return err
	}
	if err := checkAdmin(s); err != nil {
		return err
	}

	m := metrics.New()
	m.Loaded(set)
	watch := &storeWatch{log: log}
	st, err := openStore(s.store, s.redisPrefix, s.fail, s.storeTimeout, watch.onError)
	if err != nil {
		return err
	}
	defer st.close()
	if st.stats != nil {
		watch.stats = st.stats
		m.Register(watch.collectors()...)
	}
	board := live.New(&live.Options{Next: m, Store: storeHealth(st.stats)})
	board.Loaded(set)
	eng := engine.New(st, set, &engine.Options{Headers: headers, Observer: board, Logger: log, Route: st.route})
	logConsistency(log, st, set)
	// publish tells the metrics which rules serve. Reloads and run-time changes publish
	// one at a time, each the engine's newest set, so the last word is always current.
	var publishMu sync.Mutex
	publish := func(*rules.Set) {
		publishMu.Lock()
		defer publishMu.Unlock()
		m.Loaded(eng.Rules())
		board.Loaded(eng.Rules())
	}

	watcher := &reload.Watcher{
		Path:     s.config,
		Interval: s.reloadInterval,
		OnLoad: func(set *rules.Set) {
			eng.SetRules(set)
			publish(set)
			log.Info("rules reloaded", "domains", len(set.Domains()), "rules", set.Len(), "path", s.config)
			logConsistency(log, st, set)
		},
		OnError: func(err error) {
			m.LoadFailed()
			board.LoadFailed(err)
			log.Error("rules rejected; the previous rules keep serving", "path", s.config, "err", err)
		},
	}
	watcher.Init(srcs)
	reloadNow := watcher.Reload
	if s.config == "" {
		reloadNow = nil
	}

	srv := &servers{log: log}
	grpcOpts, err := s.grpc.serverOptions()
	if err != nil {
		return err
	}
	grpcServer := grpc.NewServer(grpcOpts...)
	healthServer := health.NewServer()
	rlsv3.RegisterRateLimitServiceServer(grpcServer, &rls.Service{Engine: eng})
	healthpb.RegisterHealthServer(grpcServer, healthServer)
	reflection.Register(grpcServer)
	grpcLn, err := srv.listenGRPC("grpc", s.grpcAddr, s.grpc.maxConns, grpcServer)
	if err != nil {
		return err
	}
	m.Register(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ratelimitd_grpc_connections", Help: "gRPC connections open."},
			func() float64 { return float64(grpcLn.open()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "ratelimitd_grpc_connections_rejected_total", Help: "gRPC connections closed at once because -grpc-max-connections were open."},
			func() float64 { return float64(grpcLn.rejected.Load()) }),
	)
	ready := func(ctx context.Context) error {
		if len(eng.Rules().Domains()) == 0 {
			return errors.New("no rules loaded")
		}
		if st.policy != ratelimit.FailError {
			return nil // the policy answers while the store cannot
		}
		if err := st.ping(ctx); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		return nil
	}
	if err := srv.listenHTTP("http", s.httpAddr, httpapi.Handler(&httpapi.Options{
		Engine: eng, Metrics: m.Handler(), Ready: ready, Store: st.ping,
	})); err != nil {
		srv.stop(s.shutdown)
		return err
	}
	if s.adminAddr != "off" {
		var extra []admin.Extra
		for _, r := range board.Routes() {
			extra = append(extra, admin.Extra{Pattern: r.Pattern, Description: r.Description, Handler: r.Handler})
		}
		h := admin.Handler(eng, &admin.Options{Token: s.adminToken, Logger: log, Reload: reloadNow, OnChange: publish, Extra: extra})
		if err := srv.listenHTTP("admin", s.adminAddr, h); err != nil {
			srv.stop(s.shutdown)
			return err
		}
	}
	for _, l := range srv.listening {
		fmt.Fprintf(stdout, "ratelimitd: %s listening on %s\n", l.name, l.addr)
	}
	log.Info("serving", "store", redacted(s.store), "fail", s.fail, "rules", set.Len(), "files", sourceNames(srcs), "headers", headers.String())

	ctx, cancel := context.WithCancel(ctx)
	var watching sync.WaitGroup
	defer watching.Wait() // the watchers stop before run returns
	defer cancel()
	if s.config != "" {
		watching.Go(func() { watcher.Run(ctx) })
	}
	if st.stats != nil {
		watching.Go(func() { watch.run(ctx) })
	}
	watching.Go(func() { board.Run(ctx) })
	select {
	case <-ctx.Done():
	case err = <-srv.failed:
		log.Error("listener failed", "err", err)
	}
	healthServer.Shutdown()
	log.Info("shutting down", "timeout", s.shutdown.String())
	srv.stop(s.shutdown)
	log.Info("stopped")
	return err
}

// sourceNames returns the names of the rule files loaded, in order.
func sourceNames(srcs []rules.Source) []string {
	names := make([]string, len(srcs))
	for i, src := range srcs {
		names[i] = src.Name
	}
	return names
}

func newLogger(s *settings, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(s.logLevel)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", s.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch s.logFormat {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want json or text", s.logFormat)
}

// checkAdmin refuses an admin listener reachable from other hosts without a token.
func checkAdmin(s *settings) error {
	if s.adminAddr == "off" || s.adminToken != "" {
		return nil
	}
	host, _, err := net.SplitHostPort(s.adminAddr)
	if err != nil {
		return fmt.Errorf("admin address %q: %w", s.adminAddr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("admin address %q is not a loopback address: set -admin-token (RATELIMITD_ADMIN_TOKEN) to expose it", s.adminAddr)
}

// servers owns the listeners and stops them together.
type servers struct {
	log       *slog.Logger
	listening []struct{ name, addr string }
	stops     []func(context.Context)
	failed    chan error
	once      sync.Once
}

func (s *servers) fail(err error) {
	s.once.Do(func() { s.failed <- err })
}

func (s *servers) listen(name, addr string) (net.Listener, error) {
	if s.failed == nil {
		s.failed = make(chan error, 1)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s listener: %w", name, err)
	}
	s.listening = append(s.listening, struct{ name, addr string }{name, ln.Addr().String()})
	return ln, nil
}

// listenGRPC serves g on addr, with at most maxConns connections open at once.
func (s *servers) listenGRPC(name, addr string, maxConns int, g *grpc.Server) (*capListener, error) {
	l, err := s.listen(name, addr)
	if err != nil {
		return nil, err
	}
	ln := newCapListener(l, maxConns)
	go func() {
		if err := g.Serve(ln); err != nil {
			s.fail(fmt.Errorf("%s: %w", name, err))
		}
	}()
	s.stops = append(s.stops, func(ctx context.Context) {
		done := make(chan struct{})
		go func() { g.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			g.Stop()
		}
	})
	return ln, nil
}

func (s *servers) listenHTTP(name, addr string, h http.Handler) error {
	ln, err := s.listen(name, addr)
	if err != nil {
		return err
	}
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.fail(fmt.Errorf("%s: %w", name, err))
		}
	}()
	s.stops = append(s.stops, func(ctx context.Context) {
		if err := hs.Shutdown(ctx); err != nil {
			hs.Close()
		}
	})
	return nil
}

// stop stops every server, letting in-flight requests finish within timeout.
func (s *servers) stop(timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, f := range s.stops {
		wg.Go(func() { f(ctx) })
	}
	wg.Wait()
}
