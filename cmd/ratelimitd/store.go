package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/live"
	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/rules"
	"github.com/go-ratelimit/ratelimit/memorystore"
	"github.com/go-ratelimit/ratelimit/pgstore"
	"github.com/go-ratelimit/ratelimit/redisstore"
	"github.com/go-ratelimit/ratelimit/sqlitestore"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/rueidis"
)

// store is the service's store with what run needs around it.
type store struct {
	ratelimit.Store
	policy ratelimit.FailPolicy
	// ping reports whether the store answers.
	ping func(context.Context) error
	// stats returns the counters of a Redis store; nil for the memory store.
	stats func() redisstore.Stats
	// route returns the store of a rule decided apart (consistency eventual), nil for
	// this one; nil for a store that decides every rule itself.
	route func(*rules.Rule) ratelimit.Store
	// leaseDefaults are the -store URL's consistency settings (Redis only).
	leaseDefaults leaseDefaults
	close         func()
}

// dialWait is how long the start-up waits for the first connection attempt to Redis.
const dialWait = time.Second

// openStore opens the store rawURL names; see the -store flag. A Redis store connects in
// the background: the service starts while Redis is down or hung (waiting at most
// dialWait for the first attempt), and its calls are answered by the fail policy until
// Redis answers.
func openStore(rawURL, prefix, fail string, timeout time.Duration, onError func(error)) (*store, error) {
	policy, err := ratelimit.ParseFailPolicy(fail)
	if err != nil {
		return nil, err
	}
	switch scheme, rest, _ := strings.Cut(rawURL, "://"); {
	case rawURL == "memory":
		m := memorystore.New(nil)
		return &store{Store: m, policy: policy, ping: func(context.Context) error { return nil }, close: func() { m.Close() }}, nil
	case scheme == "sqlite":
		return openSQLite(rest, policy, timeout, onError)
	case scheme == "postgres" || scheme == "postgresql":
		return openPostgres(rawURL, policy, timeout, onError)
	}
	if strings.ContainsAny(prefix, "{}") {
		return nil, fmt.Errorf("redis prefix %q: want no { or }, which would choose the Cluster hash slot", prefix)
	}
	opt, def, err := clientOption(rawURL)
	if err != nil {
		return nil, err
	}
	o := redisstore.Options{Prefix: prefix, Policy: policy, Timeout: timeout, OnError: onError}
	rs := redisstore.DialRueidis(opt, &o)
	// The lease stores share the client; a key's first decision waits for its first lease
	// as long as a strict decision may wait for Redis.
	ls := &leases{strict: rs, def: def, opts: redisstore.LeaseOptions{
		Options:   redisstore.Options{Prefix: prefix, Policy: policy, OnError: onError},
		FirstWait: timeout,
	}}
	// A Redis that answers is connected before the first call; one that does not holds
	// the start-up at most dialWait.
	t := time.NewTimer(dialWait)
	select {
	case <-rs.Dialed():
	case <-t.C:
	}
	t.Stop()
	return &store{Store: rs, policy: policy, ping: rs.Ping, stats: rs.Stats, route: ls.route, leaseDefaults: def,
		close: func() { ls.close(); rs.Close() }}, nil
}

// openSQLite opens the SQLite store on the file a sqlite:// URL names: sqlite:///var/lib/x.db
// is the absolute path /var/lib/x.db, sqlite://x.db a path relative to the working
// directory.
func openSQLite(path string, policy ratelimit.FailPolicy, timeout time.Duration, onError func(error)) (*store, error) {
	if path == "" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("store sqlite://%s: want sqlite:///path/to/file.db, a file path without query", path)
	}
	s, err := sqlitestore.Open(path, &sqlitestore.Options{Failure: sqlitestore.Failure{Policy: policy, Timeout: timeout, OnError: onError}})
	if err != nil {
		return nil, fmt.Errorf("store sqlite://%s: %w", path, err)
	}
	return &store{Store: s, policy: policy, ping: s.Ping, close: func() { s.Close() }}, nil
}

// openPostgres opens the PostgreSQL store on a postgres:// URL, which pgx reads (its query
// parameters include sslmode and pool_max_conns).
func openPostgres(rawURL string, policy ratelimit.FailPolicy, timeout time.Duration, onError func(error)) (*store, error) {
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		// pgx's parse error quotes the URL, password included: keep only its cause.
		if cause := errors.Unwrap(err); cause != nil {
			err = cause
		} else {
			err = errors.New("invalid URL")
		}
		return nil, fmt.Errorf("store %s: %w", redacted(rawURL), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", redacted(rawURL), err)
	}
	s, err := pgstore.New(ctx, pool, &pgstore.Options{Failure: pgstore.Failure{Policy: policy, Timeout: timeout, OnError: onError}})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("store %s: %w", redacted(rawURL), err)
	}
	return &store{Store: s, policy: policy, ping: s.Ping, close: func() { s.Close(); pool.Close() }}, nil
}

// clientOption reads redis://, redis+cluster:// and redis+sentinel:// URLs (and their
// rediss variants, with TLS). Several hosts are separated by commas; a Sentinel URL's path
// names the master set. Query parameters are rueidis.ParseURL's (db, dial_timeout, ...),
// and consistency, sync and accuracy, the defaults of the eventual mode.
func clientOption(rawURL string) (rueidis.ClientOption, leaseDefaults, error) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return rueidis.ClientOption{}, leaseDefaults{}, fmt.Errorf("store %q: want memory, a redis://, redis+cluster://, redis+sentinel://, sqlite:// or postgres:// URL", rawURL)
	}
	base, kind, _ := strings.Cut(scheme, "+")
	if base != "redis" && base != "rediss" || kind != "" && kind != "cluster" && kind != "sentinel" {
		return rueidis.ClientOption{}, leaseDefaults{}, fmt.Errorf("store %s: unknown scheme %q: want memory, redis, redis+cluster, redis+sentinel, sqlite or postgres", redacted(rawURL), scheme)
	}
	u, err := url.Parse(base + "://" + rest)
	if err != nil {
		return rueidis.ClientOption{}, leaseDefaults{}, fmt.Errorf("store %s: %w", redacted(rawURL), unwrapURL(err))
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return rueidis.ClientOption{}, leaseDefaults{}, fmt.Errorf("store %s: query: %w", redacted(rawURL), err)
	}
	def, err := takeLeaseParams(q)
	if err != nil {
		return rueidis.ClientOption{}, leaseDefaults{}, fmt.Errorf("store %s: %w", redacted(rawURL), err)
	}
	u.RawQuery = q.Encode()
	hosts := strings.Split(u.Host, ",")
	if u.Host == "" || len(hosts) > 1 && kind == "" {
		return rueidis.ClientOption{}, leaseDefaults{}, fmt.Errorf("store %s: want one host:port (several only with redis+cluster or redis+sentinel)", redacted(rawURL))
	}
	master := ""
	if kind == "sentinel" {
		master = strings.Trim(u.Path, "/")
		if master == "" {
			return rueidis.ClientOption{}, leaseDefaults{}, fmt.Errorf("store %s: the path must name the Sentinel master set, as in redis+sentinel://host:26379/mymaster", redacted(rawURL))
		}
		u.Path = ""
	}
	if kind == "cluster" && u.Path != "" && u.Path != "/" {
		return rueidis.ClientOption{}, leaseDefaults{}, fmt.Errorf("store %s: a Cluster has no database number", redacted(rawURL))
	}
	u.Host = hosts[0]
	opt, err := rueidis.ParseURL(u.String())
	if err != nil {
		return rueidis.ClientOption{}, leaseDefaults{}, fmt.Errorf("store %s: %w", redacted(rawURL), unwrapURL(err))
	}
	opt.InitAddress = hosts
	opt.DisableCache = true // the scripts never read through the client-side cache
	if master != "" {
		opt.Sentinel.MasterSet = master
		opt.Sentinel.Username, opt.Sentinel.Password = opt.Username, opt.Password
	}
	if kind == "cluster" {
		opt.ShuffleInit = true
	}
	return opt, def, nil
}

// redacted returns rawURL with its password replaced, for errors and logs.
func redacted(rawURL string) string {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return rawURL
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return rawURL
	}
	user, _, hasPass := strings.Cut(rest[:at], ":")
	if !hasPass {
		return rawURL
	}
	return scheme + "://" + user + ":xxxxx" + rest[at:]
}

// unwrapURL drops the URL a *url.Error quotes, which may hold a password.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// storeHealth returns what the dashboard shows of a store whose counters stats returns:
// a Redis store's counters and breaker; nil, for the memory store, when stats is nil.
func storeHealth(stats func() redisstore.Stats) func() live.StoreHealth {
	if stats == nil {
		return nil
	}
	return func() live.StoreHealth {
		st := stats()
		return live.StoreHealth{Kind: "redis", Calls: st.Calls, Failures: st.Failures,
			PolicyAnswers: st.PolicyAnswers, BreakerOpens: st.BreakerOpens, BreakerOpen: st.BreakerOpen}
	}
}
