package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/grpclimit"
	"github.com/go-ratelimit/ratelimit/httplimit"
	"github.com/go-ratelimit/ratelimit/memorystore"
	"github.com/go-ratelimit/ratelimit/redisstore"
	"github.com/redis/go-redis/v9"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// The same scenarios run through the three front ends, httplimit, grpclimit and this
// engine, which share one decision (internal/multi): each must reach the same verdict at
// every feStep, except where the transport table of internal/multi says the engine
// answers otherwise (a cost above the capacity is OVER_LIMIT there; hits cannot be
// negative).

// verdict is a front end's answer, translated back.
type verdict string

const (
	vAllowed     verdict = "allowed"
	vLimited     verdict = "limited"
	vTooCostly   verdict = "too costly"
	vBadCost     verdict = "bad cost"
	vUnavailable verdict = "unavailable"
	vNoKey       verdict = "no key"
)

// feStep is one request: both rules ("broad" on the user, "narrow" on the user and the
// narrow route) or broad alone, a cost, and a user ("" for none).
type feStep struct {
	narrow bool
	cost   int
	user   string
	want   verdict
	engine verdict // the engine's answer when it differs by the transport table
}

// frontEnd decides one feStep of a scenario.
type frontEnd interface {
	do(t *testing.T, s feStep) verdict
}

// config is what a scenario sets up: the store of both rules, the front ends' policy for
// the errors that reach them, and whether a missing user is rejected (else skipped).
type config struct {
	store        ratelimit.Store
	onStoreError ratelimit.FailPolicy
	reject       bool
}

// Day-long GCRA limits: no window boundary can fall inside a test.
func broadLimit(s ratelimit.Store) *ratelimit.Limiter {
	return ratelimit.New(s, ratelimit.GCRA, ratelimit.Limit{Rate: 3, Period: 24 * time.Hour})
}
func narrowLimit(s ratelimit.Store) *ratelimit.Limiter {
	return ratelimit.New(s, ratelimit.GCRA, ratelimit.Limit{Rate: 1, Period: 24 * time.Hour})
}

const frontRules = `
domain: app
descriptors:
  - key: user
    rate_limit: {unit: day, requests_per_unit: 3, algorithm: gcra, name: broad}
    descriptors:
      - key: route
        value: narrow
        rate_limit: {unit: day, requests_per_unit: 1, algorithm: gcra, name: narrow}
`

func TestFrontEndsDecideAlike(t *testing.T) {
	u := "alice"
	scenarios := []struct {
		name  string
		store func(t *testing.T) ratelimit.Store
		cfg   config
		steps []feStep
	}{
		{name: "cost 0 checks without taking", steps: []feStep{
			{narrow: true, cost: 0, user: u, want: vAllowed},
			{narrow: true, cost: 1, user: u, want: vAllowed},
			{narrow: true, cost: 0, user: u, want: vAllowed},
			{narrow: true, cost: 1, user: u, want: vLimited},
		}},
		{name: "negative cost is a configuration error", steps: []feStep{
			{narrow: false, cost: -1, user: u, want: vBadCost, engine: "-"},
		}},
		{name: "a denied narrow rule does not drain the broad one", steps: []feStep{
			{narrow: true, cost: 1, user: u, want: vAllowed},
			{narrow: true, cost: 1, user: u, want: vLimited},
			{narrow: true, cost: 1, user: u, want: vLimited},
			{narrow: false, cost: 1, user: u, want: vAllowed},
			{narrow: false, cost: 1, user: u, want: vAllowed},
			{narrow: false, cost: 1, user: u, want: vLimited},
		}},
		{name: "a cost above the capacity can never pass", steps: []feStep{
			{narrow: true, cost: 2, user: u, want: vTooCostly, engine: vLimited},
			{narrow: false, cost: 3, user: u, want: vAllowed},
		}},
		{name: "missing key skips the rule", steps: []feStep{
			{narrow: true, cost: 1, user: "", want: vAllowed},
			{narrow: true, cost: 1, user: "", want: vAllowed},
			{narrow: true, cost: 1, user: u, want: vAllowed},
			{narrow: true, cost: 1, user: u, want: vLimited},
		}},
		{name: "missing key rejected", cfg: config{reject: true}, steps: []feStep{
			{narrow: true, cost: 1, user: "", want: vNoKey, engine: "-"},
		}},
		{name: "store down, FailLocal: a local limit", store: deadRedis(ratelimit.FailLocal), steps: []feStep{
			{narrow: true, cost: 1, user: u, want: vAllowed},
			{narrow: true, cost: 1, user: u, want: vLimited},
		}},
		{name: "store down, FailOpen", store: deadRedis(ratelimit.FailOpen), steps: []feStep{
			{narrow: true, cost: 1, user: u, want: vAllowed},
			{narrow: true, cost: 1, user: u, want: vAllowed},
		}},
		{name: "store down, FailClosed", store: deadRedis(ratelimit.FailClosed), steps: []feStep{
			{narrow: true, cost: 1, user: u, want: vLimited},
		}},
		{name: "store down, FailError, front ends closed", store: deadRedis(ratelimit.FailError), cfg: config{onStoreError: ratelimit.FailClosed}, steps: []feStep{
			{narrow: true, cost: 1, user: u, want: vUnavailable},
		}},
	}
	for _, sc := range scenarios {
		for _, fe := range []string{"httplimit", "grpclimit", "engine"} {
			t.Run(sc.name+"/"+fe, func(t *testing.T) {
				cfg := sc.cfg
				if sc.store != nil {
					cfg.store = sc.store(t)
				} else {
					ms := memorystore.New(nil)
					t.Cleanup(func() { ms.Close() })
					cfg.store = ms
				}
				var f frontEnd
				switch fe {
				case "httplimit":
					f = newHTTPFront(t, cfg)
				case "grpclimit":
					f = newGRPCFront(t, cfg)
				default:
					f = &engineFront{e: New(cfg.store, compile(t, frontRules), nil)}
				}
				for i, s := range sc.steps {
					want := s.want
					if fe == "engine" && s.engine != "" {
						want = s.engine
					}
					if want == "-" { // not expressible over this transport
						continue
					}
					if got := f.do(t, s); got != want {
						t.Errorf("step %d (narrow %v, cost %d, user %q): got %s, want %s", i, s.narrow, s.cost, s.user, got, want)
					}
				}
			})
		}
	}
}

// deadRedis returns a Redis store whose server refuses connections, answering by policy.
func deadRedis(policy ratelimit.FailPolicy) func(t *testing.T) ratelimit.Store {
	return func(t *testing.T) ratelimit.Store {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close() // nothing listens there now
		client := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
		s := redisstore.New(client, &redisstore.Options{Policy: policy})
		t.Cleanup(func() { s.Close(); client.Close() })
		return s
	}
}

// cost reads the cost a request or call carries.
func costOf(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 1
	}
	return n
}

type httpFront struct{ url string }

func newHTTPFront(t *testing.T, cfg config) *httpFront {
	missing := httplimit.MissingKeySkip
	if cfg.reject {
		missing = httplimit.MissingKeyReject
	}
	cost := func(r *http.Request) (int, error) { return costOf(r.Header.Get("X-Cost")), nil }
	m := &httplimit.Middleware{
		OnStoreError: cfg.onStoreError,
		Rules: []httplimit.Rule{
			{Name: "broad", Key: httplimit.Header("X-User"), Cost: cost, MissingKey: missing, Limiter: broadLimit(cfg.store)},
			{Name: "narrow", Pattern: "/narrow", Key: httplimit.Header("X-User"), Cost: cost, MissingKey: missing, Limiter: narrowLimit(cfg.store)},
		},
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(m.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	t.Cleanup(srv.Close)
	return &httpFront{url: srv.URL}
}

func (f *httpFront) do(t *testing.T, s feStep) verdict {
	path := "/broad"
	if s.narrow {
		path = "/narrow"
	}
	req, _ := http.NewRequestWithContext(t.Context(), "GET", f.url+path, nil)
	req.Header.Set("X-Cost", strconv.Itoa(s.cost))
	if s.user != "" {
		req.Header.Set("X-User", s.user)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return vAllowed
	case http.StatusTooManyRequests:
		return vLimited
	case http.StatusRequestEntityTooLarge:
		return vTooCostly
	case http.StatusInternalServerError:
		return vBadCost
	case http.StatusServiceUnavailable:
		return vUnavailable
	case http.StatusBadRequest:
		return vNoKey
	}
	return verdict(fmt.Sprint("status ", resp.StatusCode))
}

type grpcFront struct{ client healthpb.HealthClient }

func newGRPCFront(t *testing.T, cfg config) *grpcFront {
	missing := grpclimit.MissingKeySkip
	if cfg.reject {
		missing = grpclimit.MissingKeyReject
	}
	cost := func(ctx context.Context, _ string, _ any) int {
		if v := metadata.ValueFromIncomingContext(ctx, "x-cost"); len(v) > 0 {
			return costOf(v[0])
		}
		return 1
	}
	in := grpclimit.Interceptor{
		OnStoreError: cfg.onStoreError,
		Rules: []grpclimit.Rule{
			{Name: "broad", Key: grpclimit.Metadata("x-user"), Cost: cost, MissingKey: missing, Limiter: broadLimit(cfg.store)},
			{Name: "narrow", Methods: []string{"/grpc.health.v1.Health/Check"}, Key: grpclimit.Metadata("x-user"), Cost: cost, MissingKey: missing, Limiter: narrowLimit(cfg.store)},
		},
	}
	if err := in.Validate(); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(in.UnaryServerInterceptor()))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &grpcFront{client: healthpb.NewHealthClient(conn)}
}

func (f *grpcFront) do(t *testing.T, s feStep) verdict {
	md := metadata.Pairs("x-cost", strconv.Itoa(s.cost))
	if s.user != "" {
		md.Set("x-user", s.user)
	}
	ctx := metadata.NewOutgoingContext(t.Context(), md)
	var err error
	if s.narrow {
		_, err = f.client.Check(ctx, &healthpb.HealthCheckRequest{})
	} else {
		_, err = f.client.List(ctx, &healthpb.HealthListRequest{})
	}
	st := status.Convert(err)
	switch st.Code() {
	case codes.OK:
		return vAllowed
	case codes.ResourceExhausted:
		for _, d := range st.Details() {
			if _, ok := d.(*errdetails.RetryInfo); ok {
				return vLimited
			}
		}
		return vTooCostly
	case codes.Internal:
		return vBadCost
	case codes.Unavailable:
		return vUnavailable
	case codes.InvalidArgument:
		return vNoKey
	}
	return verdict("code " + st.Code().String())
}

type engineFront struct{ e *Engine }

func (f *engineFront) do(t *testing.T, s feStep) verdict {
	user := Descriptor{Entries: desc("user", s.user).Entries}
	if s.user == "" {
		user = desc("anonymous", "x") // no entry the rules match
	}
	ds := []Descriptor{withHits(user, uint64(s.cost))}
	if s.narrow {
		n := desc("user", s.user, "route", "narrow")
		if s.user == "" {
			n = desc("route", "narrow")
		}
		ds = append(ds, withHits(n, uint64(s.cost)))
	}
	resp, err := f.e.Decide(t.Context(), &Request{Domain: "app", Descriptors: ds})
	switch {
	case errors.Is(err, ErrInvalidRequest):
		return verdict("invalid: " + err.Error())
	case err != nil:
		return vUnavailable
	case resp.Code == OverLimit:
		return vLimited
	}
	return vAllowed
}
