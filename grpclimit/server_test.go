package grpclimit_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/grpclimit"
	"github.com/go-ratelimit/ratelimit/httplimit"
	"github.com/go-ratelimit/ratelimit/memorystore"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

const (
	checkMethod = "/grpc.health.v1.Health/Check"
	healthSvc   = "/grpc.health.v1.Health/"
	inputMethod = "/grpc.testing.TestService/StreamingInputCall"
)

// testService serves StreamingInputCall, counting the messages it receives, and
// EmptyCall.
type testService struct {
	testpb.UnimplementedTestServiceServer
	received atomic.Int64
}

func (s *testService) EmptyCall(context.Context, *testpb.Empty) (*testpb.Empty, error) {
	return &testpb.Empty{}, nil
}

func (s *testService) StreamingInputCall(stream grpc.ClientStreamingServer[testpb.StreamingInputCallRequest, testpb.StreamingInputCallResponse]) error {
	var size int32
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			return stream.SendAndClose(&testpb.StreamingInputCallResponse{AggregatedPayloadSize: size})
		}
		if err != nil {
			return err
		}
		s.received.Add(1)
		size += int32(len(m.GetPayload().GetBody()))
	}
}

// server is a real gRPC server on loopback with the interceptors of in, serving the
// health service and the test service.
type server struct {
	conn   *grpc.ClientConn
	health healthpb.HealthClient
	test   testpb.TestServiceClient
	svc    *testService
}

func newServer(t *testing.T, in grpclimit.Interceptor) *server {
	t.Helper()
	if err := in.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(
		grpc.UnaryInterceptor(in.UnaryServerInterceptor()),
		grpc.StreamInterceptor(in.StreamServerInterceptor()),
	)
	svc := &testService{}
	healthpb.RegisterHealthServer(srv, health.NewServer())
	testpb.RegisterTestServiceServer(srv, svc)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &server{conn: conn, health: healthpb.NewHealthClient(conn), test: testpb.NewTestServiceClient(conn), svc: svc}
}

func newStore(t *testing.T) *memorystore.Store {
	t.Helper()
	s := memorystore.New(nil)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// perHour returns a limiter letting capacity calls pass at once, then about none for the
// length of a test.
func perHour(store ratelimit.Store, capacity int) *ratelimit.Limiter {
	return ratelimit.New(store, ratelimit.GCRA, ratelimit.PerHour(capacity))
}

// check calls Health/Check and returns the error and the response metadata.
func (s *server) check(ctx context.Context) (header, trailer metadata.MD, err error) {
	_, err = s.health.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&header), grpc.Trailer(&trailer))
	return header, trailer, err
}

func withKey(key string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "x-api-key", key)
}

// retryDelay returns the RetryInfo delay of err, and whether there is one.
func retryDelay(t *testing.T, err error) (time.Duration, bool) {
	t.Helper()
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration(), true
		}
	}
	return 0, false
}

func quotaSubject(err error) string {
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if qf, ok := d.(*errdetails.QuotaFailure); ok && len(qf.GetViolations()) > 0 {
			return qf.GetViolations()[0].GetSubject()
		}
	}
	return ""
}

func get(md metadata.MD, key string) string {
	if v := md.Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

func TestUnaryImplicitRule(t *testing.T) {
	s := newServer(t, grpclimit.Interceptor{Limiter: perHour(newStore(t), 3), Headers: httplimit.HeadersBoth})
	ctx := context.Background()
	for i := range 3 {
		header, _, err := s.check(ctx)
		if err != nil {
			t.Fatalf("call %d: %v, want OK", i+1, err)
		}
		remaining := strconv.Itoa(2 - i)
		// GCRA at 3 per hour: each unit takes 20 minutes to come back.
		reset := strconv.Itoa(1200 * (i + 1))
		for key, want := range map[string]string{
			"ratelimit-policy":      `"default";q=3;w=3600`,
			"ratelimit":             `"default";r=` + remaining + `;t=` + reset,
			"x-ratelimit-limit":     "3",
			"x-ratelimit-remaining": remaining,
			"x-ratelimit-reset":     reset,
		} {
			if got := get(header, key); got != want {
				t.Errorf("call %d: header %s = %q, want %q", i+1, key, got, want)
			}
		}
	}
	header, trailer, err := s.check(ctx)
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("call 4: %v, want ResourceExhausted", err)
	}
	delay, ok := retryDelay(t, err)
	if !ok || delay <= 19*time.Minute || delay > 20*time.Minute {
		t.Errorf("call 4: RetryInfo delay = %v (present %v), want just under 20m", delay, ok)
	}
	if got := quotaSubject(err); got != "rule:default" {
		t.Errorf("call 4: QuotaFailure subject = %q, want rule:default", got)
	}
	if len(header.Get("ratelimit")) != 0 {
		t.Errorf("call 4: header carries %v, want the values in the trailer", header)
	}
	// On a denial t is the wait before the call can pass, as retry-after says.
	for key, want := range map[string]string{
		"retry-after":           "1200",
		"ratelimit-policy":      `"default";q=3;w=3600`,
		"ratelimit":             `"default";r=0;t=1200`,
		"x-ratelimit-limit":     "3",
		"x-ratelimit-remaining": "0",
		"x-ratelimit-reset":     "1200",
	} {
		if got := get(trailer, key); got != want {
			t.Errorf("call 4: trailer %s = %q, want %q", key, got, want)
		}
	}
}

func TestDefaultHeadersAreIETF(t *testing.T) {
	s := newServer(t, grpclimit.Interceptor{Limiter: perHour(newStore(t), 3)})
	header, _, err := s.check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if get(header, "ratelimit") == "" || get(header, "ratelimit-policy") == "" {
		t.Errorf("header %v lacks the IETF fields", header)
	}
	if get(header, "x-ratelimit-remaining") != "" {
		t.Errorf("header %v carries legacy fields by default", header)
	}
}

func TestStreamOpenCostsOne(t *testing.T) {
	s := newServer(t, grpclimit.Interceptor{Limiter: perHour(newStore(t), 2)})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := range 3 {
		w, err := s.health.Watch(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = w.Recv() // the health server sends the current status at once
		switch {
		case i < 2 && err != nil:
			t.Fatalf("stream %d: %v, want a status", i+1, err)
		case i == 2 && status.Code(err) != codes.ResourceExhausted:
			t.Fatalf("stream %d: %v, want ResourceExhausted", i+1, err)
		}
		if i == 2 {
			if _, ok := retryDelay(t, err); !ok {
				t.Errorf("stream 3: no RetryInfo in %v", err)
			}
			if got := get(w.Trailer(), "ratelimit"); !strings.HasPrefix(got, `"default";r=0;t=`) {
				t.Errorf("stream 3: trailer ratelimit = %q, want r=0", got)
			}
		}
	}
}

func TestStreamPerMessage(t *testing.T) {
	store := newStore(t)
	s := newServer(t, grpclimit.Interceptor{Rules: []grpclimit.Rule{{
		Name:       "messages",
		Limiter:    perHour(store, 5),
		Methods:    []string{inputMethod},
		PerMessage: true,
	}}})
	send := func(n int) error {
		stream, err := s.test.StreamingInputCall(context.Background())
		if err != nil {
			return err
		}
		for range n {
			if err := stream.Send(&testpb.StreamingInputCallRequest{Payload: &testpb.Payload{Body: []byte("x")}}); err != nil {
				break // the server ended the stream; CloseAndRecv reports why
			}
		}
		_, err = stream.CloseAndRecv()
		return err
	}
	// Opening streams costs nothing under a PerMessage rule.
	if err := send(0); err != nil {
		t.Fatalf("empty stream: %v", err)
	}
	if err := send(3); err != nil {
		t.Fatalf("3 messages: %v", err)
	}
	err := send(4)
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("4 more messages: %v, want ResourceExhausted", err)
	}
	if _, ok := retryDelay(t, err); !ok {
		t.Errorf("no RetryInfo in %v", err)
	}
	if got := s.svc.received.Load(); got != 5 {
		t.Errorf("the handler received %d messages, want exactly 5", got)
	}
}

func TestMetadataKeys(t *testing.T) {
	store := newStore(t)
	rule := func(name string, missing grpclimit.MissingKeyPolicy) grpclimit.Rule {
		return grpclimit.Rule{
			Name:       name,
			Limiter:    perHour(store, 2),
			Key:        grpclimit.Metadata("X-Api-Key"),
			KeyClass:   "api_key",
			MissingKey: missing,
		}
	}
	t.Run("reject", func(t *testing.T) {
		var noKey atomic.Int64
		s := newServer(t, grpclimit.Interceptor{
			Rules: []grpclimit.Rule{rule("reject", grpclimit.MissingKeyReject)},
			OnError: func(_ context.Context, _ string, err error) {
				if errors.Is(err, grpclimit.ErrNoKey) {
					noKey.Add(1)
				}
			},
		})
		for i := range 2 {
			if _, _, err := s.check(withKey("a")); err != nil {
				t.Fatalf("key a, call %d: %v", i+1, err)
			}
		}
		if _, _, err := s.check(withKey("a")); status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("key a, call 3: %v, want ResourceExhausted", err)
		}
		if _, _, err := s.check(withKey("b")); err != nil {
			t.Fatalf("key b: %v, want OK: keys are independent", err)
		}
		// The message names each package once: the rule's layer wraps ErrNoKey's.
		const noKeyMsg = `grpclimit: rule "reject": no key: no metadata x-api-key`
		if _, _, err := s.check(context.Background()); status.Code(err) != codes.InvalidArgument || status.Convert(err).Message() != noKeyMsg {
			t.Fatalf("no key: %v, want InvalidArgument: %s", err, noKeyMsg)
		}
		if _, _, err := s.check(withKey("")); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("empty key: %v, want InvalidArgument", err)
		}
		if _, _, err := s.check(withKey(strings.Repeat("k", 5000))); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("oversized key: %v, want InvalidArgument", err)
		}
		if noKey.Load() != 3 {
			t.Errorf("OnError heard %d missing keys, want 3", noKey.Load())
		}
	})
	t.Run("skip", func(t *testing.T) {
		s := newServer(t, grpclimit.Interceptor{Rules: []grpclimit.Rule{rule("skip", grpclimit.MissingKeySkip)}})
		for i := range 5 {
			if _, _, err := s.check(context.Background()); err != nil {
				t.Fatalf("no key, call %d: %v, want OK", i+1, err)
			}
		}
	})
	t.Run("malformed", func(t *testing.T) {
		// A KeyFunc's own error says what is wrong; the rule's policy still decides.
		malformed := func(ctx context.Context, _ string) (string, error) {
			k, err := grpclimit.Metadata("x-api-key")(ctx, "")
			if err == nil && strings.HasPrefix(k, "-") {
				return "", errors.New("x-api-key starts with '-'")
			}
			return k, err
		}
		var heard []error
		var mu sync.Mutex
		reject := rule("reject", grpclimit.MissingKeyReject)
		reject.Key = malformed
		skip := rule("skip", grpclimit.MissingKeySkip)
		skip.Key = malformed
		for _, r := range []grpclimit.Rule{reject, skip} {
			s := newServer(t, grpclimit.Interceptor{
				Rules: []grpclimit.Rule{r},
				OnError: func(_ context.Context, _ string, err error) {
					mu.Lock()
					defer mu.Unlock()
					heard = append(heard, err)
				},
			})
			_, _, err := s.check(withKey("-x"))
			switch r.MissingKey {
			case grpclimit.MissingKeyReject:
				if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "x-api-key starts with '-'") {
					t.Errorf("malformed key, reject: %v, want InvalidArgument saying why", err)
				}
			default:
				if err != nil {
					t.Errorf("malformed key, skip: %v, want OK", err)
				}
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if len(heard) != 1 || !errors.Is(heard[0], grpclimit.ErrNoKey) {
			t.Errorf("OnError heard %v, want one error wrapping ErrNoKey", heard)
		}
	})
	t.Run("fallback", func(t *testing.T) {
		s := newServer(t, grpclimit.Interceptor{Rules: []grpclimit.Rule{rule("fallback", grpclimit.MissingKeyFallback)}})
		for i := range 2 {
			if _, _, err := s.check(context.Background()); err != nil {
				t.Fatalf("no key, call %d: %v", i+1, err)
			}
		}
		if _, _, err := s.check(context.Background()); status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("no key, call 3: %v, want ResourceExhausted: keyless calls are limited by peer IP", err)
		}
		// The fallback has a namespace of its own: a key that spells the peer's
		// address is another key.
		if _, _, err := s.check(withKey("127.0.0.1")); err != nil {
			t.Fatalf("key 127.0.0.1: %v, want OK", err)
		}
	})
}

func TestPerMethodRules(t *testing.T) {
	store := newStore(t)
	rec := &recorder{}
	s := newServer(t, grpclimit.Interceptor{
		Observer: rec,
		Rules: []grpclimit.Rule{
			{Name: "everything", Limiter: perHour(store, 100)}, // no Methods: every call
			{Name: "check", Limiter: perHour(store, 1), Methods: []string{checkMethod}},
			{Name: "health", Limiter: perHour(store, 2), Methods: []string{healthSvc}},
			{Name: "others", Limiter: perHour(store, 3), Methods: []string{"/"}},
		},
	})
	ctx := context.Background()
	if _, _, err := s.check(ctx); err != nil {
		t.Fatalf("Check 1: %v", err)
	}
	_, _, err := s.check(ctx)
	if status.Code(err) != codes.ResourceExhausted || quotaSubject(err) != "rule:check" {
		t.Fatalf("Check 2: %v, want ResourceExhausted by rule check", err)
	}
	// Watch matches the service pattern; Check, named in full, did not charge it.
	watch := func() error {
		w, err := s.health.Watch(ctx, &healthpb.HealthCheckRequest{})
		if err == nil {
			_, err = w.Recv()
		}
		return err
	}
	for i := range 2 {
		if err := watch(); err != nil {
			t.Fatalf("Watch %d: %v", i+1, err)
		}
	}
	if err := watch(); status.Code(err) != codes.ResourceExhausted || quotaSubject(err) != "rule:health" {
		t.Fatalf("Watch 3: %v, want ResourceExhausted by rule health", err)
	}
	// The test service matches no pattern but "/".
	for i := range 3 {
		if _, err := s.test.EmptyCall(ctx, &testpb.Empty{}); err != nil {
			t.Fatalf("EmptyCall %d: %v", i+1, err)
		}
	}
	if _, err := s.test.EmptyCall(ctx, &testpb.Empty{}); status.Code(err) != codes.ResourceExhausted || quotaSubject(err) != "rule:others" {
		t.Fatalf("EmptyCall 4: %v, want ResourceExhausted by rule others", err)
	}
	// The rule without Methods took part in every allowed call: 1 + 2 + 3.
	if got := rec.count("everything", ratelimit.Allowed); got != 6 {
		t.Errorf("rule everything allowed %d calls, want 6", got)
	}
}

func TestExclude(t *testing.T) {
	store := newStore(t)
	s := newServer(t, grpclimit.Interceptor{
		Limiter: perHour(store, 1),
		Rules: []grpclimit.Rule{
			{Name: "all"},
			{Name: "watch", Methods: []string{"/grpc.health.v1.Health/Watch"}},
		},
		Exclude: []string{healthSvc},
	})
	for i := range 5 {
		header, _, err := s.check(context.Background())
		if err != nil {
			t.Fatalf("Check %d: %v, want OK", i+1, err)
		}
		if len(header.Get("ratelimit")) != 0 {
			t.Fatalf("Check %d: excluded method got rate-limit metadata %v", i+1, header)
		}
	}
	// A method named in full is more specific than its excluded service.
	for i := range 2 {
		w, err := s.health.Watch(context.Background(), &healthpb.HealthCheckRequest{})
		if err == nil {
			_, err = w.Recv()
		}
		if want := []codes.Code{codes.OK, codes.ResourceExhausted}[i]; status.Code(err) != want {
			t.Fatalf("Watch %d: %v, want %v", i+1, err, want)
		}
	}
}

// recorder is an Observer that keeps the events it hears.
type recorder struct {
	mu     sync.Mutex
	events []ratelimit.Event
}

func (r *recorder) Observe(e ratelimit.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) count(rule string, o ratelimit.Outcome) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Rule == rule && e.Outcome == o {
			n++
		}
	}
	return n
}

func TestSeveralRulesNoPollution(t *testing.T) {
	store := newStore(t)
	rec := &recorder{}
	s := newServer(t, grpclimit.Interceptor{
		Observer: rec,
		Rules: []grpclimit.Rule{
			{Name: "per-ip", Limiter: perHour(store, 5)},
			{Name: "per-key", Limiter: perHour(store, 2), Key: grpclimit.Metadata("x-api-key"), KeyClass: "api_key"},
		},
	})
	for i := range 2 {
		if _, _, err := s.check(withKey("a")); err != nil {
			t.Fatalf("key a, call %d: %v", i+1, err)
		}
	}
	for i := range 10 {
		_, _, err := s.check(withKey("a"))
		if status.Code(err) != codes.ResourceExhausted || quotaSubject(err) != "rule:per-key" {
			t.Fatalf("key a, call %d: %v, want ResourceExhausted by per-key", i+3, err)
		}
	}
	// The ten denials took nothing from per-ip: 3 of its 5 units are left.
	for i := range 3 {
		header, _, err := s.check(withKey("b" + strconv.Itoa(i)))
		if err != nil {
			t.Fatalf("key b%d: %v, want OK: denied calls must not consume per-ip", i, err)
		}
		// The metadata names the rule with the smallest share of its capacity left:
		// per-ip, with 2, 1, 0 of 5 against per-key's 1 of 2.
		if got, want := get(header, "ratelimit"), `"per-ip";r=`+strconv.Itoa(2-i)+`;`; !strings.HasPrefix(got, want) {
			t.Errorf("key b%d: ratelimit = %q, want prefix %q", i, got, want)
		}
		if got, want := get(header, "ratelimit-policy"), `"per-ip";q=5;w=3600, "per-key";q=2;w=3600`; got != want {
			t.Errorf("key b%d: ratelimit-policy = %q, want %q", i, got, want)
		}
	}
	_, trailer, err := s.check(withKey("c"))
	if status.Code(err) != codes.ResourceExhausted || quotaSubject(err) != "rule:per-ip" {
		t.Fatalf("key c: %v, want ResourceExhausted by per-ip", err)
	}
	if got := get(trailer, "ratelimit-policy"); got != `"per-ip";q=5;w=3600, "per-key";q=2;w=3600` {
		t.Errorf("key c: ratelimit-policy = %q", got)
	}
	if got, want := rec.count("per-ip", ratelimit.Allowed), 5; got != want {
		t.Errorf("per-ip allowed events = %d, want %d", got, want)
	}
	if got, want := rec.count("per-ip", ratelimit.Denied), 1; got != want {
		t.Errorf("per-ip denied events = %d, want %d", got, want)
	}
	if got, want := rec.count("per-key", ratelimit.Denied), 10; got != want {
		t.Errorf("per-key denied events = %d, want %d", got, want)
	}
}

func TestFailPolicy(t *testing.T) {
	for _, tc := range []struct {
		policy ratelimit.FailPolicy
		want   codes.Code
	}{
		{ratelimit.FailOpen, codes.OK},
		{ratelimit.FailClosed, codes.Unavailable},
	} {
		t.Run(strconv.Itoa(int(tc.policy)), func(t *testing.T) {
			store := memorystore.New(nil)
			_ = store.Close()
			rec := &recorder{}
			var mu sync.Mutex
			var hooked []error
			s := newServer(t, grpclimit.Interceptor{
				Limiter:      perHour(store, 1),
				OnStoreError: tc.policy,
				Observer:     rec,
				OnError: func(_ context.Context, method string, err error) {
					mu.Lock()
					defer mu.Unlock()
					if method != checkMethod {
						t.Errorf("OnError method = %q, want %q", method, checkMethod)
					}
					hooked = append(hooked, err)
				},
			})
			for i := range 3 {
				if _, _, err := s.check(context.Background()); status.Code(err) != tc.want {
					t.Fatalf("call %d: %v, want %v", i+1, err, tc.want)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(hooked) != 3 || !errors.Is(hooked[0], ratelimit.ErrClosed) {
				t.Errorf("OnError heard %v, want 3 errors matching ErrClosed", hooked)
			}
			if got := rec.count("default", ratelimit.Failed); got != 3 {
				t.Errorf("Failed events = %d, want 3", got)
			}
			rec.mu.Lock()
			if len(rec.events) > 0 && !errors.Is(rec.events[0].Err, ratelimit.ErrClosed) {
				t.Errorf("event error = %v, want ErrClosed", rec.events[0].Err)
			}
			rec.mu.Unlock()
		})
	}
}

func TestConcurrencyExact(t *testing.T) {
	const capacity, goroutines, calls = 20, 64, 4
	store := newStore(t)
	s := newServer(t, grpclimit.Interceptor{Rules: []grpclimit.Rule{
		{Name: "per-ip", Limiter: perHour(store, capacity)},
		{Name: "global", Limiter: perHour(store, 1000), Key: grpclimit.FullMethod, KeyClass: "method"},
	}})
	var ok, limited atomic.Int64
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range calls {
				_, _, err := s.check(context.Background())
				switch status.Code(err) {
				case codes.OK:
					ok.Add(1)
				case codes.ResourceExhausted:
					limited.Add(1)
				default:
					t.Errorf("call: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if ok.Load() != capacity || limited.Load() != goroutines*calls-capacity {
		t.Errorf("%d passed and %d were limited, want exactly %d and %d", ok.Load(), limited.Load(), capacity, goroutines*calls-capacity)
	}
	// The global rule was charged by the passing calls only: a denied call reports
	// what every rule has left.
	_, trailer, err := s.check(context.Background())
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("one more call: %v, want ResourceExhausted", err)
	}
	if got, want := get(trailer, "ratelimit-policy"), `"per-ip";q=20;w=3600, "global";q=1000;w=3600`; got != want {
		t.Errorf("ratelimit-policy = %q, want %q", got, want)
	}
	// Peek at the global rule's state with a rule of its own on the same key.
	peek := newServer(t, grpclimit.Interceptor{Rules: []grpclimit.Rule{
		{Name: "global", Limiter: perHour(store, 1000), Key: grpclimit.FullMethod},
	}})
	header, _, err := peek.check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := get(header, "ratelimit"), `"global";r=`+strconv.Itoa(1000-capacity-1)+`;`; !strings.HasPrefix(got, want) {
		t.Errorf("global after the run: ratelimit = %q, want prefix %q", got, want)
	}
}

func TestCostAboveCapacity(t *testing.T) {
	s := newServer(t, grpclimit.Interceptor{Rules: []grpclimit.Rule{{
		Name:    "heavy",
		Limiter: perHour(newStore(t), 5),
		Cost:    func(context.Context, string, any) int { return 6 },
	}}})
	_, _, err := s.check(context.Background())
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("%v, want ResourceExhausted", err)
	}
	if d, ok := retryDelay(t, err); ok {
		t.Errorf("RetryInfo %v present, want none: the call can never pass", d)
	}
	if got := quotaSubject(err); got != "rule:heavy" {
		t.Errorf("QuotaFailure subject = %q, want rule:heavy", got)
	}
}

func TestCostFromRequest(t *testing.T) {
	s := newServer(t, grpclimit.Interceptor{Rules: []grpclimit.Rule{{
		Name:    "by-service",
		Limiter: perHour(newStore(t), 10),
		// Checking the health service's own status is free; others cost 4.
		Cost: func(_ context.Context, _ string, req any) int {
			if r, ok := req.(*healthpb.HealthCheckRequest); ok && r.GetService() == "" {
				return 0
			}
			return 4
		},
	}}})
	call := func(service string) error {
		_, err := s.health.Check(context.Background(), &healthpb.HealthCheckRequest{Service: service})
		return err
	}
	for range 5 {
		if err := call(""); err != nil {
			t.Fatalf("free call: %v", err)
		}
	}
	for i := range 2 {
		// The health server answers NotFound for an unknown service, after the limiter.
		if err := call("x"); status.Code(err) != codes.NotFound {
			t.Fatalf("call %d costing 4: %v, want NotFound from the handler", i+1, err)
		}
	}
	if err := call("x"); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("third call costing 4 with 2 units left: %v, want ResourceExhausted", err)
	}
}

func TestHeadersNone(t *testing.T) {
	s := newServer(t, grpclimit.Interceptor{Limiter: perHour(newStore(t), 1), Headers: httplimit.HeadersNone})
	header, _, err := s.check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for k := range header {
		if strings.HasPrefix(k, "ratelimit") {
			t.Errorf("header %s sent with HeadersNone", k)
		}
	}
	_, trailer, err := s.check(context.Background())
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("%v, want ResourceExhausted", err)
	}
	if get(trailer, "retry-after") == "" || get(trailer, "ratelimit-remaining") != "" {
		t.Errorf("trailer %v, want retry-after alone", trailer)
	}
}

func TestInvalidConfiguration(t *testing.T) {
	store := newStore(t)
	lim := perHour(store, 1)
	for name, in := range map[string]grpclimit.Interceptor{
		"no limiter":          {},
		"rule without one":    {Rules: []grpclimit.Rule{{Name: "a"}}},
		"duplicate names":     {Rules: []grpclimit.Rule{{Name: "a", Limiter: lim}, {Name: "a", Limiter: lim}}},
		"duplicate defaults":  {Limiter: lim, Rules: []grpclimit.Rule{{}, {}}},
		"bad pattern":         {Limiter: lim, Rules: []grpclimit.Rule{{Methods: []string{"pkg.Service/Method"}}}},
		"nested pattern":      {Limiter: lim, Rules: []grpclimit.Rule{{Methods: []string{"/a/b/c"}}}},
		"empty service":       {Limiter: lim, Rules: []grpclimit.Rule{{Methods: []string{"//"}}}},
		"bad exclude":         {Limiter: lim, Exclude: []string{"Health"}},
		"excluded and ruled":  {Limiter: lim, Exclude: []string{healthSvc}, Rules: []grpclimit.Rule{{Methods: []string{healthSvc}}}},
		"non-ASCII name":      {Limiter: lim, Rules: []grpclimit.Rule{{Name: "débit"}}},
		"quote in name":       {Limiter: lim, Rules: []grpclimit.Rule{{Name: `a"b`}}},
		"name of 65 bytes":    {Limiter: lim, Rules: []grpclimit.Rule{{Name: strings.Repeat("n", 65)}}},
		"no store":            {Limiter: ratelimit.New(nil, ratelimit.GCRA, ratelimit.PerSecond(1))},
		"invalid limit":       {Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.Limit{Rate: 1})},
		"invalid algorithm":   {Limiter: ratelimit.New(store, 0, ratelimit.PerSecond(1))},
		"unknown fail policy": {Limiter: lim, OnStoreError: 7},
		"fail error":          {Limiter: lim, OnStoreError: ratelimit.FailError},
		"unknown missing key": {Limiter: lim, Rules: []grpclimit.Rule{{MissingKey: 9}}},
		"unknown headers":     {Limiter: lim, Headers: 9},
	} {
		if err := in.Validate(); !errors.Is(err, grpclimit.ErrConfig) {
			t.Errorf("%s: Validate() = %v, want an error matching ErrConfig", name, err)
		}
	}

	// An invalid configuration fails every call with Internal and reports why.
	var reported atomic.Int64
	in := grpclimit.Interceptor{
		Rules:   []grpclimit.Rule{{Name: "a"}},
		OnError: func(context.Context, string, error) { reported.Add(1) },
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(in.UnaryServerInterceptor()), grpc.StreamInterceptor(in.StreamServerInterceptor()))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{}); status.Code(err) != codes.Internal {
		t.Fatalf("call under an invalid configuration: %v, want Internal", err)
	}
	if reported.Load() != 1 {
		t.Errorf("OnError called %d times, want 1", reported.Load())
	}
}

func TestLimitBrokenAtRunTimeFailsAlone(t *testing.T) {
	store := newStore(t)
	rec := &recorder{}
	broken := perHour(store, 5)
	s := newServer(t, grpclimit.Interceptor{
		Observer: rec,
		Rules: []grpclimit.Rule{
			{Name: "broken", Limiter: broken},
			{Name: "fine", Limiter: perHour(store, 1)},
		},
	})
	broken.SetLimit(ratelimit.Limit{Rate: 0, Period: time.Second})
	if _, _, err := s.check(context.Background()); err != nil {
		t.Fatalf("call 1: %v, want OK under FailOpen", err)
	}
	if _, _, err := s.check(context.Background()); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("call 2: %v, want ResourceExhausted: the valid rule still applies", err)
	}
	if got := rec.count("broken", ratelimit.Failed); got != 2 {
		t.Errorf("broken: %d Failed events, want 2", got)
	}
}

// BenchmarkUnaryCall measures a real unary call over loopback, bare and behind the
// interceptor (one rule on the peer address, a limit never reached), to show what the
// limiter adds to a call.
func BenchmarkUnaryCall(b *testing.B) {
	store := memorystore.New(nil)
	defer store.Close()
	lim := ratelimit.New(store, ratelimit.GCRA, ratelimit.PerSecond(1<<30))
	for _, tc := range []struct {
		name string
		opts []grpc.ServerOption
	}{
		{"bare", nil},
		{"limited", interceptors(grpclimit.Interceptor{Limiter: lim})},
		{"limited,HeadersNone", interceptors(grpclimit.Interceptor{Limiter: lim, Headers: httplimit.HeadersNone})},
	} {
		b.Run(tc.name, func(b *testing.B) {
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			srv := grpc.NewServer(tc.opts...)
			healthpb.RegisterHealthServer(srv, health.NewServer())
			go func() { _ = srv.Serve(lis) }()
			defer srv.Stop()
			conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			client := healthpb.NewHealthClient(conn)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := client.Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func interceptors(in grpclimit.Interceptor) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.UnaryInterceptor(in.UnaryServerInterceptor()),
		grpc.StreamInterceptor(in.StreamServerInterceptor()),
	}
}

func TestForwardedClients(t *testing.T) {
	forwarded := func(xff string) context.Context {
		return metadata.AppendToOutgoingContext(context.Background(), "x-forwarded-for", xff)
	}
	t.Run("untrusted peer", func(t *testing.T) {
		// Spoofed forwarding metadata from a peer nobody vouches for is ignored: the
		// calls are limited by the peer's own address.
		s := newServer(t, grpclimit.Interceptor{Limiter: perHour(newStore(t), 2)})
		for i, xff := range []string{"203.0.113.1", "203.0.113.2", "203.0.113.3"} {
			_, _, err := s.check(forwarded(xff))
			if want := []codes.Code{codes.OK, codes.OK, codes.ResourceExhausted}[i]; status.Code(err) != want {
				t.Fatalf("call %d from %s: %v, want %v", i+1, xff, err, want)
			}
		}
	})
	t.Run("trusted proxy", func(t *testing.T) {
		s := newServer(t, grpclimit.Interceptor{
			Limiter:  perHour(newStore(t), 1),
			ClientIP: httplimit.ClientIP{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
		})
		for i, tc := range []struct {
			xff  string
			want codes.Code
		}{
			{"203.0.113.1", codes.OK},
			{"203.0.113.2", codes.OK},
			{"198.51.100.1, 203.0.113.1", codes.ResourceExhausted}, // the rightmost untrusted hop
			{"203.0.113.3, 127.0.0.9", codes.OK},                   // trusted hops are skipped
			{"2001:db8:1:2::1", codes.OK},
			{"2001:db8:1:2::2", codes.ResourceExhausted}, // the same /64
			{"not-an-address", codes.InvalidArgument},    // no guess
		} {
			if _, _, err := s.check(forwarded(tc.xff)); status.Code(err) != tc.want {
				t.Fatalf("call %d from %q: %v, want %v", i+1, tc.xff, err, tc.want)
			}
		}
		// A call without forwarding metadata is the proxy's own.
		if _, _, err := s.check(context.Background()); err != nil {
			t.Fatalf("the proxy's own call: %v", err)
		}
	})
}
