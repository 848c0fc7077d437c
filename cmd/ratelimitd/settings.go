package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"
)

// settings are the service's settings. Each comes from its flag, else from its
// environment variable, else from its default.
type settings struct {
	config         string
	grpcAddr       string
	grpc           grpcLimits
	httpAddr       string
	adminAddr      string
	adminToken     string
	store          string
	redisPrefix    string
	fail           string
	storeTimeout   time.Duration
	headers        string
	reloadInterval time.Duration
	shutdown       time.Duration
	logFormat      string
	logLevel       string
	check          bool
	version        bool
}

// setting describes one flag. The table below is the one place that lists them; -help
// prints it, and the README copies it.
type setting struct {
	flag, env, def, usage string
	// bind defines the flag on fs with initial value v (the variable's or the default).
	bind func(fs *flag.FlagSet, s *settings, name, v string) error
}

func str(p func(*settings) *string) func(*flag.FlagSet, *settings, string, string) error {
	return func(fs *flag.FlagSet, s *settings, name, v string) error {
		fs.StringVar(p(s), name, v, "")
		return nil
	}
}

func count(p func(*settings) *int) func(*flag.FlagSet, *settings, string, string) error {
	return func(fs *flag.FlagSet, s *settings, name, v string) error {
		cv := countValue{p(s)}
		fs.Var(cv, name, "")
		return cv.Set(v)
	}
}

func dur(p func(*settings) *time.Duration) func(*flag.FlagSet, *settings, string, string) error {
	return func(fs *flag.FlagSet, s *settings, name, v string) error {
		dv := durationValue{p(s)}
		fs.Var(dv, name, "")
		return dv.Set(v)
	}
}

var table = []setting{
	{"config", "RATELIMITD_CONFIG", "", "rule file, or directory of *.yaml/*.yml rule files; empty: the built-in example rules",
		str(func(s *settings) *string { return &s.config })},
	{"grpc", "RATELIMITD_GRPC", ":8081", "address of the gRPC listener (Envoy RLS v3, health, reflection)",
		str(func(s *settings) *string { return &s.grpcAddr })},
	{"grpc-max-streams", "RATELIMITD_GRPC_MAX_STREAMS", "100", "calls one gRPC connection may have in flight (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS); the client queues the rest",
		count(func(s *settings) *int { return &s.grpc.maxStreams })},
	{"grpc-max-connections", "RATELIMITD_GRPC_MAX_CONNECTIONS", "1000", "gRPC connections open at once; one beyond it is closed as soon as it is accepted",
		count(func(s *settings) *int { return &s.grpc.maxConns })},
	{"grpc-idle-timeout", "RATELIMITD_GRPC_IDLE_TIMEOUT", "5m", "a gRPC connection without a call for this long is closed (GOAWAY, then close); 0 keeps it",
		dur(func(s *settings) *time.Duration { return &s.grpc.idle })},
	{"grpc-keepalive-time", "RATELIMITD_GRPC_KEEPALIVE_TIME", "1m", "a gRPC connection silent for this long is pinged; 0 never pings",
		dur(func(s *settings) *time.Duration { return &s.grpc.pingAfter })},
	{"grpc-keepalive-timeout", "RATELIMITD_GRPC_KEEPALIVE_TIMEOUT", "20s", "a pinged gRPC connection still silent after this long is closed",
		dur(func(s *settings) *time.Duration { return &s.grpc.pingTimeout })},
	{"grpc-keepalive-min-time", "RATELIMITD_GRPC_KEEPALIVE_MIN_TIME", "10s", "the shortest interval at which a client may ping; a client pinging more often is disconnected (GOAWAY too_many_pings)",
		dur(func(s *settings) *time.Duration { return &s.grpc.minPing })},
	{"http", "RATELIMITD_HTTP", ":8080", "address of the HTTP listener (/json, /v1/check, /healthz, /readyz, /metrics)",
		str(func(s *settings) *string { return &s.httpAddr })},
	{"admin", "RATELIMITD_ADMIN", "127.0.0.1:6070", "address of the admin listener; \"off\" disables it",
		str(func(s *settings) *string { return &s.adminAddr })},
	{"admin-token", "RATELIMITD_ADMIN_TOKEN", "", "bearer token the admin API requires; mandatory when -admin is not a loopback address",
		str(func(s *settings) *string { return &s.adminToken })},
	{"store", "RATELIMITD_STORE", "memory", "memory, redis://[user:pass@]host:port[/db], redis+cluster://host:port,host:port, redis+sentinel://host:port,host:port/master, sqlite:///path/to/file.db, postgres://[user:pass@]host:port/db; a Redis URL may add ?consistency=eventual (the default of rules that name none), sync=100ms and accuracy=0.01",
		str(func(s *settings) *string { return &s.store })},
	{"redis-prefix", "RATELIMITD_REDIS_PREFIX", "ratelimit:", "prefix of every Redis key the service writes: give each environment sharing one Redis its own; no { or }",
		str(func(s *settings) *string { return &s.redisPrefix })},
	{"fail", "RATELIMITD_FAIL", "local", "how store failures (Redis, SQLite, PostgreSQL) are answered: local (an in-process limit), open (allow), closed (deny), error (gRPC Unavailable)",
		str(func(s *settings) *string { return &s.fail })},
	{"store-timeout", "RATELIMITD_STORE_TIMEOUT", "100ms", "how long one decision may wait for the store, retries included, before -fail answers it; at most half the time left before the caller's deadline",
		dur(func(s *settings) *time.Duration { return &s.storeTimeout })},
	{"headers", "RATELIMITD_HEADERS", "none", "rate-limit response headers for the proxy to add: none, draft03 (RateLimit-Limit/-Remaining/-Reset, as envoyproxy/ratelimit), ietf (draft-10 RateLimit-Policy and RateLimit), legacy (X-RateLimit-Limit/-Remaining/-Reset) or both (ietf and legacy)",
		str(func(s *settings) *string { return &s.headers })},
	{"reload-interval", "RATELIMITD_RELOAD_INTERVAL", "1s", "how often the rule files are checked for changes; 0 disables reloading",
		dur(func(s *settings) *time.Duration { return &s.reloadInterval })},
	{"shutdown-timeout", "RATELIMITD_SHUTDOWN_TIMEOUT", "10s", "how long in-flight requests may take to finish after SIGINT or SIGTERM",
		dur(func(s *settings) *time.Duration { return &s.shutdown })},
	{"log-format", "RATELIMITD_LOG_FORMAT", "json", "json or text",
		str(func(s *settings) *string { return &s.logFormat })},
	{"log-level", "RATELIMITD_LOG_LEVEL", "info", "debug, info, warn or error",
		str(func(s *settings) *string { return &s.logLevel })},
}

// parseSettings reads args, falling back on getenv and the defaults. -check and -version
// have no variable: they are actions, not settings.
func parseSettings(args []string, getenv func(string) string, stdout io.Writer) (*settings, error) {
	s := &settings{}
	fs := flag.NewFlagSet("ratelimitd", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // run's caller prints the error, once
	fs.Usage = func() {}
	envErrs := map[string]error{}
	for _, t := range table {
		v := t.def
		if e := getenv(t.env); e != "" {
			v = e
		}
		if err := t.bind(fs, s, t.flag, v); err != nil {
			envErrs[t.flag] = fmt.Errorf("%s=%q: %w", t.env, v, err)
		}
	}
	fs.BoolVar(&s.check, "check", false, "")
	fs.BoolVar(&s.version, "version", false, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout)
		}
		return nil, err
	}
	// A bad variable matters only when its flag did not override it.
	fs.Visit(func(f *flag.Flag) { delete(envErrs, f.Name) })
	for _, t := range table {
		if err := envErrs[t.flag]; err != nil {
			return nil, err
		}
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return s, nil
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: ratelimitd [flags]\n\nEvery flag can also be set by its environment variable; the flag wins.")
	fmt.Fprintln(w)
	for _, t := range table {
		def := t.def
		if def == "" {
			def = `""`
		}
		fmt.Fprintf(w, "  -%s  (%s, default %s)\n    \t%s\n", t.flag, t.env, def, t.usage)
	}
	fmt.Fprintln(w, "  -check\n    \tvalidate the rule files and exit: 0 when valid, 1 with every error found, each with its file and line")
	fmt.Fprintln(w, "  -version\n    \tprint the version of ratelimitd and of the library it was built with, and exit")
}

// countValue is a flag holding a positive int.
type countValue struct{ p *int }

func (c countValue) String() string {
	if c.p == nil {
		return ""
	}
	return strconv.Itoa(*c.p)
}

func (c countValue) Set(v string) error {
	x, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("%s is not a whole number", strconv.Quote(v))
	}
	if x < 1 {
		return fmt.Errorf("%d: want at least 1", x)
	}
	*c.p = x
	return nil
}

type durationValue struct{ p *time.Duration }

func (d durationValue) String() string {
	if d.p == nil {
		return ""
	}
	return d.p.String()
}

func (d durationValue) Set(v string) error {
	x, err := time.ParseDuration(v)
	if err != nil {
		return err
	}
	if x < 0 {
		return fmt.Errorf("negative duration %s", strconv.Quote(v))
	}
	*d.p = x
	return nil
}
