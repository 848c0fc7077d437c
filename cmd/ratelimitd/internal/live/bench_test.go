package live

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/engine"
	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/rules"
	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/rulestest"
)

// busyBoard returns a Board whose rules and key rankings are full, as on a busy
// service: five rules, a history of rates, and more limited keys than it tracks.
func busyBoard(b *testing.B) *Board {
	set := rulestest.Compile(b, rulestest.Limits("api",
		"user", "2/minute", "route", "100/second", "ip", "100/second", "plan", "100/second", "org", "100/second"))
	board := New(nil)
	board.Loaded(set)
	for i := range 20000 {
		es := []rules.Entry{{Key: "user", Value: "u" + strconv.Itoa(i%3000)}}
		st := &engine.Status{Code: engine.OverLimit, Rule: set.Match("api", es, make([]string, 1))}
		board.Decided("api", es, st, 1)
	}
	return board
}

// serveBoard serves the routes of board over loopback until b ends.
func serveBoard(b *testing.B, board *Board) *httptest.Server {
	mux := http.NewServeMux()
	for _, r := range board.Routes() {
		mux.Handle(r.Pattern, r.Handler)
	}
	srv := httptest.NewServer(mux)
	b.Cleanup(srv.Close)
	return srv
}

// BenchmarkDashboardLoad loads the page as a browser does, over loopback: the page, its
// script and style sheet, and the first JSON.
func BenchmarkDashboardLoad(b *testing.B) {
	srv := serveBoard(b, busyBoard(b))
	paths := []string{"/dashboard", "/dashboard/app.js", "/dashboard/style.css", "/v1/live?n=10"}
	b.ReportAllocs()
	for b.Loop() {
		for _, p := range paths {
			resp, err := http.Get(srv.URL + p)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("GET %s: %s", p, resp.Status)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1e3, "ms/load")
}

// BenchmarkPoll is the work of one poll of the open page, the JSON it reads every two
// seconds, with its CPU time: a poll's cpu-ns/op over 2e9 is the share of one core the
// open page costs the service (client side included, so an upper bound).
func BenchmarkPoll(b *testing.B) {
	srv := serveBoard(b, busyBoard(b))
	cpu0 := cpuTime(b)
	for b.Loop() {
		resp, err := http.Get(srv.URL + "/v1/live?n=10")
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	cpu := float64(cpuTime(b)-cpu0) / float64(b.N)
	b.ReportMetric(cpu, "cpu-ns/op")
	b.ReportMetric(100*cpu/2e9, "%core-at-1/2s")
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
