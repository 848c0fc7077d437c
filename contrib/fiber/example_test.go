package fiberlimit_test

import (
	"fmt"
	"net/http/httptest"

	"github.com/go-ratelimit/ratelimit"
	fiberlimit "github.com/go-ratelimit/ratelimit/contrib/fiber"
	"github.com/go-ratelimit/ratelimit/httplimit"
	"github.com/go-ratelimit/ratelimit/memorystore"
	"github.com/gofiber/fiber/v3"
)

func Example() {
	store := memorystore.New(nil)
	defer store.Close()

	// Two requests a minute per client IP address.
	m := &httplimit.Middleware{Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(2))}

	app := fiber.New()
	app.Use(fiberlimit.New(m))
	app.Get("/hello", func(c fiber.Ctx) error { return c.SendString("hello\n") })

	for range 3 {
		resp, err := app.Test(httptest.NewRequest("GET", "/hello", nil))
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

// A limit per fiber route, shared by every client. fiber matches routes as it goes, so
// a key from the route needs the handler among the route's own handlers.
func ExampleFullPath() {
	store := memorystore.New(nil)
	defer store.Close()

	perRoute := fiberlimit.New(&httplimit.Middleware{Rules: []httplimit.Rule{{
		Name: "route", Key: fiberlimit.FullPath, KeyClass: "route",
		Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(2)),
	}}})

	app := fiber.New()
	app.Get("/users/:id", perRoute, func(c fiber.Ctx) error { return c.SendString("user " + c.Params("id") + "\n") })

	for _, path := range []string{"/users/1", "/users/2", "/users/3"} {
		resp, err := app.Test(httptest.NewRequest("GET", path, nil))
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
