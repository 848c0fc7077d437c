// Command service is a load generator for Envoy rate limit services (the
// envoy.service.ratelimit.v3 RateLimitService gRPC API). It calls
// ShouldRateLimit with one descriptor entry {key: user, value: one of a fixed
// set of user ids} from 1, 10, 50 and 200 concurrent goroutines in turn, each
// making one call at a time, and reports calls per second, latency
// percentiles, errors and the OK/OVER_LIMIT split for every level.
//
// The goroutines share a few gRPC connections (-conns, 2 by default):
// goroutine i uses connection i mod conns.
//
// Modes:
//
//	service -addr 127.0.0.1:8081 -name NAME [-rows FILE] [flags]   measure one target
//	service -table FILE                                             print the table of rows in FILE
//	service -free-ports N                                           print N free loopback TCP ports
//	service -null-server 127.0.0.1:PORT                             serve an RLS that answers OK to everything
//
// run.sh beside this file builds envoyproxy/ratelimit and ratelimitd, starts
// them one after the other on a private redis-server and measures each.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	commonrl "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rls "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

type config struct {
	addr        string
	name        string
	domain      string
	key         string
	users       int
	levels      []int
	duration    time.Duration
	warmup      time.Duration
	callTimeout time.Duration
	readyWait   time.Duration
	conns       int
	rows        string
	totals      string
	serverPID   string
	redisPID    string
	cpuProfile  string
}

func main() {
	var (
		cfg        config
		levels     string
		table      string
		freePorts  int
		nullAddr   string
		nullLife   time.Duration
		nullWork   uint
		quietWait  time.Duration
		quietBelow float64
	)
	flag.StringVar(&cfg.addr, "addr", "127.0.0.1:8081", "gRPC address of the rate limit service (loopback only)")
	flag.StringVar(&cfg.name, "name", "target", "name of the target in the output")
	flag.StringVar(&cfg.domain, "domain", "bench", "rate limit domain")
	flag.StringVar(&cfg.key, "key", "user", "descriptor entry key")
	flag.IntVar(&cfg.users, "users", 10000, "number of distinct user ids")
	flag.StringVar(&levels, "levels", "1,10,50,200", "comma-separated concurrency levels")
	flag.DurationVar(&cfg.duration, "duration", 5*time.Second, "measured time per level")
	flag.DurationVar(&cfg.warmup, "warmup", time.Second, "unmeasured warm-up before each level")
	flag.DurationVar(&cfg.callTimeout, "timeout", 2*time.Second, "deadline of each call")
	flag.DurationVar(&cfg.readyWait, "ready-wait", 30*time.Second, "how long to wait for the first successful call")
	flag.IntVar(&cfg.conns, "conns", 2, "gRPC connections shared by the caller goroutines")
	flag.StringVar(&cfg.rows, "rows", "", "append one tab-separated row per level to this file")
	flag.StringVar(&cfg.totals, "totals", "", "append the target's name and its number of answered calls, warm-up and readiness probes included, to this file")
	flag.StringVar(&cfg.serverPID, "server-pid", "", "pid of the server, to report its CPU use")
	flag.StringVar(&cfg.redisPID, "redis-pid", "", "pid of redis-server, to report its CPU use")
	flag.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write a CPU profile of this load generator to this file")
	flag.StringVar(&table, "table", "", "print the table of the rows in this file and exit")
	flag.IntVar(&freePorts, "free-ports", 0, "print this many free loopback TCP ports and exit")
	flag.StringVar(&nullAddr, "null-server", "", "serve, on this loopback address, a rate limit service that answers OK to every call and does nothing else")
	flag.DurationVar(&nullLife, "null-server-life", 30*time.Minute, "the null server stops by itself after this long")
	flag.UintVar(&nullWork, "null-server-workers", 0, "serve the null server's calls on this many long-lived goroutines (0: a new goroutine per call, gRPC's default)")
	flag.DurationVar(&quietWait, "wait-quiet", 0, "wait at most this long for the machine to be quiet (see -quiet-below), print what it found and exit")
	flag.Float64Var(&quietBelow, "quiet-below", 25, "with -wait-quiet: quiet is all processes together under this percentage of one core")
	flag.Parse()

	var err error
	switch {
	case table != "":
		err = printTableFile(os.Stdout, table)
	case freePorts > 0:
		err = printFreePorts(os.Stdout, freePorts)
	case quietWait > 0:
		ok, last := waitQuiet(min(quietWait, time.Hour), quietBelow/100)
		switch {
		case last < 0:
			fmt.Println("unknown (no /proc/stat)")
		case ok:
			fmt.Printf("quiet (%.0f%% of one core busy)\n", 100*last)
		default:
			fmt.Printf("NOT quiet after %s (%.0f%% of one core busy)\n", quietWait, 100*last)
		}
	case nullAddr != "":
		err = serveNull(nullAddr, nullLife, uint32(min(nullWork, 1024)))
	default:
		cfg.levels, err = parseLevels(levels)
		if err == nil {
			err = run(cfg)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "service:", err)
		os.Exit(1)
	}
}

func parseLevels(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > 10000 {
			return nil, fmt.Errorf("bad concurrency level %q (want 1..10000)", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("no concurrency levels")
	}
	return out, nil
}

// checkLoopback refuses any address that is not on this machine's loopback.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s is not a loopback address", addr)
	}
	return nil
}

func userID(i int) string { return fmt.Sprintf("user-%05d", i) }

func run(cfg config) error {
	if err := checkLoopback(cfg.addr); err != nil {
		return err
	}
	if cfg.users < 1 || cfg.users > 1000000 {
		return fmt.Errorf("-users %d: want 1..1000000", cfg.users)
	}
	if cfg.duration <= 0 || cfg.duration > time.Hour || cfg.warmup < 0 || cfg.warmup > time.Hour {
		return errors.New("-duration must be in (0, 1h] and -warmup in [0, 1h]")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	call, answered, closeConns, err := newGRPCCaller(cfg.addr, cfg.conns, cfg.users, cfg.domain, cfg.key)
	if err != nil {
		return err
	}
	defer closeConns()

	if err := waitReady(ctx, cfg, call); err != nil {
		return err
	}

	var rowsOut io.Writer = io.Discard
	if cfg.rows != "" {
		f, err := os.OpenFile(cfg.rows, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		rowsOut = f
	}

	names := []string{"self", "machine"}
	pids := []string{"self", machinePID}
	if cfg.serverPID != "" {
		names, pids = append(names, "server"), append(pids, cfg.serverPID)
	}
	if cfg.redisPID != "" {
		names, pids = append(names, "redis"), append(pids, cfg.redisPID)
	}

	var results []row
	for i, c := range cfg.levels {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		p := plan{
			Concurrency: c,
			Warmup:      cfg.warmup,
			Duration:    cfg.duration,
			CallTimeout: cfg.callTimeout,
			Users:       cfg.users,
			Seed:        uint64(i+1) * 1000003,
		}
		meter := newCPUMeter(names, pids)
		var cpu []string
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			sleepCtx(ctx, p.Warmup)
			meter.begin()
			sleepCtx(ctx, p.Duration)
			cpu = meter.end()
		}()
		res := runLevel(ctx, p, call)
		wg.Wait()

		r := newRow(cfg.name, res)
		for j, n := range names {
			switch n {
			case "self":
				r.CPUClient = cpu[j]
			case "server":
				r.CPUServer = cpu[j]
			case "redis":
				r.CPURedis = cpu[j]
			case "machine":
				r.CPUMachine = cpu[j]
			}
		}
		results = append(results, r)
		if _, err := io.WriteString(rowsOut, r.tsv()+"\n"); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "%s c=%d: %.0f calls/s p50=%s p99=%s errors=%d\n",
			cfg.name, c, r.Rate, fmtLatency(r.P50), fmtLatency(r.P99), r.Errors)
		if r.FirstError != "" {
			fmt.Fprintf(os.Stderr, "%s c=%d: first error: %s\n", cfg.name, c, r.FirstError)
		}
	}
	printTable(os.Stdout, results)
	if cfg.totals != "" {
		f, err := os.OpenFile(cfg.totals, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(f, "%s\t%d\n", clean(cfg.name), answered.Load())
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// newGRPCCaller connects conns gRPC connections to addr and returns a caller
// that sends ShouldRateLimit for domain with one descriptor {key: user id},
// and a counter of the calls that got an answer. Every request is built once
// here; gRPC only reads them while marshalling.
func newGRPCCaller(addr string, conns, users int, domain, key string) (caller, *atomic.Uint64, func(), error) {
	if conns < 1 {
		conns = 1
	}
	var ccs []*grpc.ClientConn
	closeAll := func() {
		for _, cc := range ccs {
			cc.Close()
		}
	}
	clients := make([]rls.RateLimitServiceClient, conns)
	for i := range clients {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			closeAll()
			return nil, nil, nil, err
		}
		ccs = append(ccs, cc)
		cc.Connect()
		clients[i] = rls.NewRateLimitServiceClient(cc)
	}
	reqs := make([]*rls.RateLimitRequest, users)
	for i := range reqs {
		reqs[i] = &rls.RateLimitRequest{
			Domain: domain,
			Descriptors: []*commonrl.RateLimitDescriptor{{
				Entries: []*commonrl.RateLimitDescriptor_Entry{{Key: key, Value: userID(i)}},
			}},
		}
	}
	answered := new(atomic.Uint64)
	call := func(ctx context.Context, worker, user int) (outcome, error) {
		resp, err := clients[worker%len(clients)].ShouldRateLimit(ctx, reqs[user])
		if err != nil {
			return outError, err
		}
		answered.Add(1)
		switch resp.GetOverallCode() {
		case rls.RateLimitResponse_OK:
			return outOK, nil
		case rls.RateLimitResponse_OVER_LIMIT:
			return outOver, nil
		default:
			return outUnknown, nil
		}
	}
	return call, answered, closeAll, nil
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// waitReady calls until one call succeeds, so a run starts on a server that
// has loaded its rules and reached its store.
func waitReady(ctx context.Context, cfg config, call caller) error {
	deadline := time.Now().Add(cfg.readyWait)
	var last error
	for time.Now().Before(deadline) {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		out, err := call(cctx, 0, 0)
		cancel()
		if err == nil && out != outUnknown {
			return nil
		}
		if err == nil {
			err = errors.New("overall_code UNKNOWN (are the rules loaded?)")
		}
		last = err
		if ctx.Err() != nil {
			return ctx.Err()
		}
		sleepCtx(ctx, 100*time.Millisecond)
	}
	return fmt.Errorf("%s at %s not ready after %s: %v", cfg.name, cfg.addr, cfg.readyWait, last)
}

func printFreePorts(w io.Writer, n int) error {
	if n > 100 {
		return errors.New("at most 100 ports")
	}
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		ls = append(ls, l)
		fmt.Fprintln(w, l.Addr().(*net.TCPAddr).Port)
	}
	return nil
}

// row is one line of the results table.
type row struct {
	Name        string
	Concurrency int
	Calls       uint64
	Rate        float64
	P50, P99    time.Duration
	OK, Over    uint64
	Unknown     uint64
	Errors      uint64
	CPUServer   string
	CPURedis    string
	CPUClient   string
	CPUMachine  string
	FirstError  string
}

func newRow(name string, r *levelResult) row {
	return row{
		Name:        name,
		Concurrency: r.Concurrency,
		Calls:       r.Calls,
		Rate:        r.rate(),
		P50:         r.Latency.quantile(0.50),
		P99:         r.Latency.quantile(0.99),
		OK:          r.OK,
		Over:        r.Over,
		Unknown:     r.Unknown,
		Errors:      r.Errors,
		CPUServer:   "-",
		CPURedis:    "-",
		CPUClient:   "-",
		CPUMachine:  "-",
		FirstError:  r.FirstError,
	}
}

func clean(s string) string {
	if s == "" {
		return "-"
	}
	return strings.NewReplacer("\t", " ", "\n", " ").Replace(s)
}

func (r row) tsv() string {
	return strings.Join([]string{
		clean(r.Name),
		strconv.Itoa(r.Concurrency),
		strconv.FormatUint(r.Calls, 10),
		strconv.FormatFloat(r.Rate, 'g', -1, 64),
		strconv.FormatInt(int64(r.P50), 10),
		strconv.FormatInt(int64(r.P99), 10),
		strconv.FormatUint(r.OK, 10),
		strconv.FormatUint(r.Over, 10),
		strconv.FormatUint(r.Unknown, 10),
		strconv.FormatUint(r.Errors, 10),
		clean(r.CPUServer),
		clean(r.CPURedis),
		clean(r.CPUClient),
		clean(r.CPUMachine),
		clean(r.FirstError),
	}, "\t")
}

func parseRow(line string) (row, error) {
	f := strings.Split(line, "\t")
	if len(f) != 15 {
		return row{}, fmt.Errorf("want 15 fields, got %d", len(f))
	}
	var r row
	var errs []error
	atoi := func(s string) int { n, err := strconv.Atoi(s); errs = append(errs, err); return n }
	atou := func(s string) uint64 { n, err := strconv.ParseUint(s, 10, 64); errs = append(errs, err); return n }
	r.Name = f[0]
	r.Concurrency = atoi(f[1])
	r.Calls = atou(f[2])
	rate, err := strconv.ParseFloat(f[3], 64)
	errs = append(errs, err)
	r.Rate = rate
	r.P50 = time.Duration(atou(f[4]))
	r.P99 = time.Duration(atou(f[5]))
	r.OK, r.Over, r.Unknown, r.Errors = atou(f[6]), atou(f[7]), atou(f[8]), atou(f[9])
	r.CPUServer, r.CPURedis, r.CPUClient, r.CPUMachine = f[10], f[11], f[12], f[13]
	if f[14] != "-" {
		r.FirstError = f[14]
	}
	return r, errors.Join(errs...)
}

func printTableFile(w io.Writer, name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	var rows []row
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		r, err := parseRow(sc.Text())
		if err != nil {
			return fmt.Errorf("%s:%d: %v", name, n, err)
		}
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	printTable(w, rows)
	return nil
}

func fmtLatency(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/1e3, 'f', 0, 64) + "us"
}

// overShare is OVER_LIMIT as a percentage of the answered calls.
func overShare(r row) string {
	answered := r.OK + r.Over + r.Unknown
	if answered == 0 {
		return "-"
	}
	return strconv.FormatFloat(100*float64(r.Over)/float64(answered), 'f', 2, 64) + "%"
}

// cpuOthers is the CPU that the machine used besides the server, redis-server
// and the load generator: other processes, the noise on a shared machine.
func cpuOthers(r row) string {
	pct := func(s string) (float64, bool) {
		v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
		return v, err == nil && strings.HasSuffix(s, "%")
	}
	m, ok := pct(r.CPUMachine)
	if !ok {
		return "-"
	}
	for _, s := range []string{r.CPUServer, r.CPURedis, r.CPUClient} {
		if v, ok := pct(s); ok {
			m -= v
		}
	}
	return strconv.FormatFloat(max(m, 0), 'f', 0, 64) + "%"
}

// cpuPerCall turns a CPU share ("87%" of one core) and a call rate into the
// CPU time each call cost, or "-" when either is unknown.
func cpuPerCall(share string, rate float64) string {
	pct, err := strconv.ParseFloat(strings.TrimSuffix(share, "%"), 64)
	if err != nil || !strings.HasSuffix(share, "%") || rate <= 0 {
		return "-"
	}
	return strconv.FormatFloat(pct/100/rate*1e6, 'f', 1, 64) + "us"
}

func printTable(w io.Writer, rows []row) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tcallers\tcalls/s\tp50\tp99\terrors\tOK\tOVER_LIMIT\tover%\tcpu server\tcpu redis\tcpu client\tcpu others\tserver cpu/call\tredis cpu/call\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
			r.Name, r.Concurrency, r.Rate, fmtLatency(r.P50), fmtLatency(r.P99),
			r.Errors+r.Unknown, r.OK, r.Over, overShare(r), r.CPUServer, r.CPURedis, r.CPUClient, cpuOthers(r),
			cpuPerCall(r.CPUServer, r.Rate), cpuPerCall(r.CPURedis, r.Rate))
	}
	tw.Flush()
	for _, r := range rows {
		if r.FirstError != "" {
			fmt.Fprintf(w, "%s at %d callers, first error: %s\n", r.Name, r.Concurrency, r.FirstError)
		}
	}
}
