package echolimit_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/go-ratelimit/ratelimit"
	echolimit "github.com/go-ratelimit/ratelimit/contrib/echo"
	"github.com/go-ratelimit/ratelimit/httplimit"
	"github.com/go-ratelimit/ratelimit/memorystore"
	"github.com/labstack/echo/v4"
)

func Example() {
	store := memorystore.New(nil)
	defer store.Close()

	// Two requests a minute per client IP address.
	m := &httplimit.Middleware{Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(2))}

	e := echo.New()
	e.Use(echolimit.New(m))
	e.GET("/hello", func(c echo.Context) error { return c.String(http.StatusOK, "hello\n") })

	srv := httptest.NewServer(e)
	defer srv.Close()
	for range 3 {
		resp, err := http.Get(srv.URL + "/hello")
		if err != nil {
			fmt.Println(err)
			return
		}
		resp.Body.Close()
		fmt.Println(resp.Status)
		fmt.Println("  RateLimit:", resp.Header.Get("RateLimit"))
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			fmt.Println("  Retry-After:", ra)
		}
	}
	// Output:
	// 200 OK
	//   RateLimit: "default";r=1;t=30
	// 200 OK
	//   RateLimit: "default";r=0;t=60
	// 429 Too Many Requests
	//   RateLimit: "default";r=0;t=30
	//   Retry-After: 30
}

// A limit per echo route, shared by every client, next to the per-IP limit: the keys
// come from echo's view of the request.
func ExamplePath() {
	store := memorystore.New(nil)
	defer store.Close()

	m := &httplimit.Middleware{Rules: []httplimit.Rule{
		{Name: "ip", Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(100))},
		{Name: "route", Key: echolimit.Path, KeyClass: "route", MissingKey: httplimit.MissingKeySkip,
			Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(2))},
	}}

	e := echo.New()
	e.Use(echolimit.New(m))
	e.GET("/users/:id", func(c echo.Context) error { return c.String(http.StatusOK, "user "+c.Param("id")+"\n") })

	srv := httptest.NewServer(e)
	defer srv.Close()
	for _, path := range []string{"/users/1", "/users/2", "/users/3"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			fmt.Println(err)
			return
		}
		resp.Body.Close()
		fmt.Println(path, resp.Status)
	}
	// Output:
	// /users/1 200 OK
	// /users/2 200 OK
	// /users/3 429 Too Many Requests
}
