package httplimit_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/httplimit"
	"github.com/go-ratelimit/ratelimit/memorystore"
)

func Example() {
	store := memorystore.New(nil)
	defer store.Close()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello\n")
	})

	// Two requests a minute per client IP address.
	mw := &httplimit.Middleware{Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(2))}
	srv := httptest.NewServer(mw.Handler(mux))
	defer srv.Close()

	for range 3 {
		resp, err := http.Get(srv.URL + "/hello")
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Println(resp.Status)
		fmt.Println("  RateLimit-Policy:", resp.Header.Get("RateLimit-Policy"))
		fmt.Println("  RateLimit:", resp.Header.Get("RateLimit"))
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			fmt.Println("  Retry-After:", ra)
		}
	}
	// Output:
	// 200 OK
	//   RateLimit-Policy: "default";q=2;w=60
	//   RateLimit: "default";r=1;t=30
	// 200 OK
	//   RateLimit-Policy: "default";q=2;w=60
	//   RateLimit: "default";r=0;t=60
	// 429 Too Many Requests
	//   RateLimit-Policy: "default";q=2;w=60
	//   RateLimit: "default";r=0;t=30
	//   Retry-After: 30
}

// Several rules: a per-IP limit on every request, a per-user limit where a user is
// known, and a tighter limit on logins. A request denied by one rule takes nothing from
// the others.
func ExampleMiddleware_Check() {
	store := memorystore.New(nil)
	defer store.Close()

	mw := &httplimit.Middleware{Rules: []httplimit.Rule{
		{Name: "ip", Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(100))},
		{
			Name: "user", Key: httplimit.Header("X-User"), KeyClass: "user", MissingKey: httplimit.MissingKeySkip,
			Limiter: ratelimit.New(store, ratelimit.SlidingWindowLog, ratelimit.PerHour(1000)),
		},
		{Name: "login", Pattern: "POST /login", Limiter: ratelimit.New(store, ratelimit.FixedWindow, ratelimit.Limit{Rate: 1, Period: time.Minute})},
	}}
	for range 2 {
		r := httptest.NewRequest("POST", "/login", nil)
		r.Header.Set("X-User", "alice")
		d, err := mw.Check(r)
		if err != nil {
			panic(err)
		}
		lim, _ := d.Limiting()
		fmt.Println(d.Allowed, d.Status, lim.Name, len(d.Results()))
	}
	d, _ := mw.Check(httptest.NewRequest("GET", "/", nil))
	for _, rr := range d.Results() {
		fmt.Println(rr.Name, rr.Result.Remaining)
	}
	// Output:
	// true 0 login 3
	// false 429 login 3
	// ip 98
}

func ExampleFromEnv() {
	store := memorystore.New(nil)
	defer store.Close()

	vars := map[string]string{
		"RATELIMIT_DEFAULT":     "100/minute",
		"RATELIMIT_ROUTES":      "login",
		"RATELIMIT_ROUTE_LOGIN": "POST /login 5/m",
		"RATELIMIT_EXCLUDE":     "GET /healthz",
	}
	getenv := func(name string) string { return vars[name] } // os.Getenv in a program
	mw, err := httplimit.FromEnv(getenv, store)
	if err != nil {
		panic(err)
	}
	for _, rule := range mw.Rules {
		fmt.Printf("%s %q\n", rule.Name, rule.Pattern)
	}

	vars["RATELIMIT_ROUTE_LOGIN"] = "POST /login often"
	_, err = httplimit.FromEnv(getenv, store)
	fmt.Println(err != nil)
	// Output:
	// default "/"
	// login "POST /login"
	// true
}
