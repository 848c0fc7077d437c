package ginlimit_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/gin-gonic/gin"
	"github.com/go-ratelimit/ratelimit"
	ginlimit "github.com/go-ratelimit/ratelimit/contrib/gin"
	"github.com/go-ratelimit/ratelimit/httplimit"
	"github.com/go-ratelimit/ratelimit/memorystore"
)

func Example() {
	store := memorystore.New(nil)
	defer store.Close()

	// Two requests a minute per client IP address.
	m := &httplimit.Middleware{Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(2))}

	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(ginlimit.New(m))
	r.GET("/hello", func(c *gin.Context) { c.String(http.StatusOK, "hello\n") })

	srv := httptest.NewServer(r)
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

// A limit per gin route, shared by every client, next to the per-IP limit: the keys
// come from gin's view of the request.
func ExampleFullPath() {
	store := memorystore.New(nil)
	defer store.Close()

	m := &httplimit.Middleware{Rules: []httplimit.Rule{
		{Name: "ip", Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(100))},
		{Name: "route", Key: ginlimit.FullPath, KeyClass: "route", MissingKey: httplimit.MissingKeySkip,
			Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(2))},
	}}

	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(ginlimit.New(m))
	r.GET("/users/:id", func(c *gin.Context) { c.String(http.StatusOK, "user %s\n", c.Param("id")) })

	srv := httptest.NewServer(r)
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
