#!/usr/bin/env bash
# Side-by-side ShouldRateLimit benchmark of envoyproxy/ratelimit and ratelimitd
# (cmd/ratelimitd), on one private redis-server, same rules, same load.
#
# No input. Builds envoyproxy/ratelimit from the Go module proxy and
# ratelimitd from this repository into a temporary directory, starts its own
# redis-server on a free loopback port, runs the load generator in this
# directory against each target in turn, prints the table and writes it,
# with the machine's facts, to results.txt beside this script.
#
# Environment (all optional):
#   LEVELS=1,10,50,200   concurrency levels
#   DURATION=5s          measured time per level
#   WARMUP=1s            warm-up per level
#   CONNS=2              gRPC connections shared by the load generator's goroutines
#   QUIET_WAIT=60s       before each target, wait up to this long for the machine to be quiet (all
#                        processes under 25% of one core for 3 s); 0 does not wait
#   NOISE_LIMIT=25       a target's run in which other processes used more than this percentage of
#   RETRIES=2            one core at any level is discarded and run again, at most RETRIES times
#   ROUNDS=1             how many times to go through all targets (rounds after the first are named NAME#2...)
#   TARGETS="null-server envoy-redis envoy-redis-window150us envoy-redis-gogc400 ours-redis ours-redis-gcra ours-memory"
#   ENVOY_RATELIMIT_VERSION=latest   module version of github.com/envoyproxy/ratelimit
#   RESULTS=<file>       where to write the results (default results.txt beside this script)
#   PROFILE_DIR=<dir>    also profile each target in an extra run at PROFILE_LEVEL (default 50)
#                        callers, not in the table: perf record of the server (when perf works)
#                        and a Go CPU profile of the load generator, with top-40 summaries
#
# Traffic goes to 127.0.0.1 only. Every process this script starts is
# stopped by its pid when it exits.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

LEVELS="${LEVELS:-1,10,50,200}"
DURATION="${DURATION:-5s}"
WARMUP="${WARMUP:-1s}"
CONNS="${CONNS:-2}"
ROUNDS="${ROUNDS:-1}"
QUIET_WAIT="${QUIET_WAIT:-60s}"
NOISE_LIMIT="${NOISE_LIMIT:-25}"
RETRIES="${RETRIES:-2}"
TARGETS="${TARGETS:-null-server envoy-redis envoy-redis-window150us envoy-redis-gogc400 ours-redis ours-redis-gcra ours-memory}"
ENVOY_RATELIMIT_VERSION="${ENVOY_RATELIMIT_VERSION:-latest}"
RESULTS="${RESULTS:-$here/results.txt}"
PROFILE_DIR="${PROFILE_DIR:-}"
PROFILE_LEVEL="${PROFILE_LEVEL:-50}"
if [ -n "$PROFILE_DIR" ]; then
	mkdir -p "$PROFILE_DIR"
	PROFILE_DIR="$(cd "$PROFILE_DIR" && pwd)"
fi

tmp="$(mktemp -d)"
started=()
cleanup() {
	local pid
	for pid in "${started[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${started[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '== %s\n' "$*" >&2; }

# stop PID [SIGNAL]: stop one process this script started and forget it.
stop() {
	local pid="$1" keep=() p
	kill -"${2:-TERM}" "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	for p in "${started[@]}"; do
		[ "$p" = "$pid" ] || keep+=("$p")
	done
	started=("${keep[@]}")
}

# wait_http URL PID LOG: wait up to 60 s for URL to answer 200 while PID lives.
wait_http() {
	local url="$1" pid="$2" logf="$3" i
	for ((i = 0; i < 600; i++)); do
		if curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null; then
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "process $pid exited before $url answered; its log:" >&2
			tail -n 30 "$logf" >&2
			return 1
		fi
		sleep 0.1
	done
	echo "$url did not answer 200 within 60 s; log:" >&2
	tail -n 30 "$logf" >&2
	return 1
}

# --- build -------------------------------------------------------------------
log "building the load generator"
go -C "$here" build -o "$tmp/loadgen" .

log "downloading github.com/envoyproxy/ratelimit@$ENVOY_RATELIMIT_VERSION"
envoy_json="$(go mod download -json "github.com/envoyproxy/ratelimit@$ENVOY_RATELIMIT_VERSION")"
envoy_dir="$(printf '%s\n' "$envoy_json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
envoy_version="$(printf '%s\n' "$envoy_json" | sed -n 's/^[[:space:]]*"Version": "\(.*\)",\{0,1\}$/\1/p')"
if [ -z "$envoy_dir" ] || [ ! -d "$envoy_dir" ]; then
	echo "could not download envoyproxy/ratelimit:" >&2
	printf '%s\n' "$envoy_json" >&2
	exit 1
fi
log "building envoyproxy/ratelimit $envoy_version"
cp -r "$envoy_dir" "$tmp/envoy-src"
chmod -R u+w "$tmp/envoy-src"
(cd "$tmp/envoy-src" && GOFLAGS="-mod=mod -buildvcs=false" go build -o "$tmp/envoy-ratelimit" ./src/service_cmd)

have_ours=0
ours_note=""
if [ -f "$repo/cmd/ratelimitd/main.go" ]; then
	log "building ratelimitd"
	if go -C "$repo/cmd/ratelimitd" build -o "$tmp/ratelimitd" . 2>"$tmp/ours-build.log"; then
		have_ours=1
	else
		ours_note="ratelimitd did not build: $(head -n 5 "$tmp/ours-build.log" | tr '\n' ' ')"
		cat "$tmp/ours-build.log" >&2
	fi
else
	ours_note="cmd/ratelimitd does not exist in this tree"
fi
if [ "$have_ours" = 0 ]; then
	log "SKIPPING ratelimitd targets: $ours_note"
fi

# --- rules -------------------------------------------------------------------
# One rule file for both services; limits so high that every call is allowed
# and still counted in the store (10,000 users, a few thousand calls/s each
# at most).
mkdir -p "$tmp/rules/fixed" "$tmp/rules/gcra" "$tmp/runtime/ratelimit/config"
cat >"$tmp/rules/fixed/bench.yaml" <<'EOF'
domain: bench
descriptors:
  - key: user
    rate_limit:
      unit: second
      requests_per_unit: 1000000
EOF
cat >"$tmp/rules/gcra/bench.yaml" <<'EOF'
domain: bench
descriptors:
  - key: user
    rate_limit:
      unit: second
      requests_per_unit: 1000000
      algorithm: gcra
EOF
cp "$tmp/rules/fixed/bench.yaml" "$tmp/runtime/ratelimit/config/bench.yaml"

# --- redis -------------------------------------------------------------------
mapfile -t ports < <("$tmp/loadgen" -free-ports 4)
redis_port="${ports[0]}"
mkdir -p "$tmp/redis"
redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no \
	--dir "$tmp/redis" --logfile "$tmp/redis.log" --daemonize no &
redis_pid=$!
started+=("$redis_pid")
for ((i = 0; ; i++)); do
	if redis-cli -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null | grep -q PONG; then
		break
	fi
	if ((i >= 100)) || ! kill -0 "$redis_pid" 2>/dev/null; then
		echo "redis-server did not start:" >&2
		cat "$tmp/redis.log" >&2
		exit 1
	fi
	sleep 0.1
done
rcli() { redis-cli -h 127.0.0.1 -p "$redis_port" "$@"; }
redis_stat() { rcli INFO stats | tr -d '\r' | sed -n "s/^$1://p"; }
log "redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') on 127.0.0.1:$redis_port (pid $redis_pid)"

# Each attempt at a target writes its own rows, totals and store line; an
# attempt that is kept is appended to the run's.
rows="$tmp/rows.tsv"
totals="$tmp/totals.tsv"
store="$tmp/store.txt"
a_rows="$tmp/attempt-rows.tsv"
a_totals="$tmp/attempt-totals.tsv"
a_store="$tmp/attempt-store.txt"
: >"$rows"
: >"$totals"
: >"$store"
: >"$tmp/quiet.txt"
: >"$tmp/noise.txt"

# measure NAME SERVER_PID GRPC_PORT USES_REDIS
measure() {
	local name="$1" pid="$2" port="$3" uses_redis="$4" keys answered cmds redis_args=()
	if [ "$uses_redis" = 1 ]; then
		redis_args=(-redis-pid "$redis_pid")
	fi
	rcli CONFIG RESETSTAT >/dev/null
	"$tmp/loadgen" -addr "127.0.0.1:$port" -name "$name" -levels "$LEVELS" \
		-duration "$DURATION" -warmup "$WARMUP" -conns "$CONNS" \
		-rows "$a_rows" -totals "$a_totals" -server-pid "$pid" "${redis_args[@]}" >/dev/null
	# Commands per call, by command; those a Lua script runs count too.
	cmds="$(rcli INFO commandstats | tr -d '\r' | sed -n 's/^cmdstat_\([^:]*\):calls=\([0-9]*\),.*/\1 \2/p')"
	keys="$(rcli DBSIZE | tr -d '\r')"
	answered="$(awk -F'\t' -v n="$name" '$1 == n { s += $2 } END { print s + 0 }' "$a_totals")"
	if [ -n "$PROFILE_DIR" ]; then
		profile "$name" "$pid" "$port"
	fi
	printf '%s\n' "$cmds" | awk -v n="$name" -v a="$answered" -v k="$keys" '
		$1 != "" && $1 != "config|resetstat" && $1 != "info" && $2 >= a / 100 { list = list sprintf(" %s %.2f", $1, (a ? $2 / a : 0)) }
		END { printf "%-26s %9d calls answered, %6d keys left; redis commands per call:%s\n", n, a, k, (list == "" ? " none" : list) }
	' >>"$a_store"
}

# profile NAME SERVER_PID GRPC_PORT: one more level at PROFILE_LEVEL callers
# with the server under perf and the load generator under its CPU profiler.
# Its calls count neither in the table nor in the store activity.
profile() {
	local name="$1" pid="$2" port="$3" perf_pid=""
	if command -v perf >/dev/null 2>&1; then
		perf record -F 499 -g -p "$pid" -o "$PROFILE_DIR/$name-server.perf.data" \
			>"$PROFILE_DIR/$name-perf.log" 2>&1 &
		perf_pid=$!
		started+=("$perf_pid")
	fi
	"$tmp/loadgen" -addr "127.0.0.1:$port" -name "$name-profiled" -levels "$PROFILE_LEVEL" \
		-duration "$DURATION" -warmup "$WARMUP" -conns "$CONNS" \
		-cpuprofile "$PROFILE_DIR/$name-client.pprof" >"$PROFILE_DIR/$name-profiled.txt"
	go tool pprof -top -nodecount=40 "$tmp/loadgen" "$PROFILE_DIR/$name-client.pprof" \
		>"$PROFILE_DIR/$name-client-top.txt" 2>&1 || true
	if [ -n "$perf_pid" ]; then
		stop "$perf_pid" INT
		{
			perf report -i "$PROFILE_DIR/$name-server.perf.data" --stdio --no-children -g none --sort dso 2>/dev/null |
				grep '%' | grep -v '^#' | head -n 8
			echo
			perf report -i "$PROFILE_DIR/$name-server.perf.data" --stdio --no-children -g none --sort dso,sym 2>/dev/null |
				grep '%' | grep -v '^#' | head -n 40
		} >"$PROFILE_DIR/$name-server-top.txt" || true
	fi
}

# run_envoy NAME [VAR=VALUE...]: envoyproxy/ratelimit with its defaults but
# for the addresses, the rules and the settings given.
run_envoy() {
	local name="$1"
	shift
	mapfile -t p < <("$tmp/loadgen" -free-ports 3)
	rcli FLUSHALL >/dev/null
	log "$name: starting envoyproxy/ratelimit ($*)"
	env USE_STATSD=false LOG_LEVEL=warn \
		BACKEND_TYPE=redis REDIS_SOCKET_TYPE=tcp REDIS_URL="127.0.0.1:$redis_port" \
		RUNTIME_ROOT="$tmp/runtime" RUNTIME_SUBDIRECTORY=ratelimit RUNTIME_APPDIRECTORY=config \
		RUNTIME_WATCH_ROOT=false \
		HOST=127.0.0.1 PORT="${p[0]}" GRPC_HOST=127.0.0.1 GRPC_PORT="${p[1]}" \
		DEBUG_HOST=127.0.0.1 DEBUG_PORT="${p[2]}" \
		"$@" "$tmp/envoy-ratelimit" >"$tmp/$name.log" 2>&1 &
	local pid=$!
	started+=("$pid")
	wait_http "http://127.0.0.1:${p[0]}/healthcheck" "$pid" "$tmp/$name.log"
	measure "$name" "$pid" "${p[1]}" 1
	stop "$pid"
}

# run_null NAME: the load generator's own do-nothing service, the ceiling of
# what this client measures on this machine.
run_null() {
	local name="$1"
	mapfile -t p < <("$tmp/loadgen" -free-ports 1)
	rcli FLUSHALL >/dev/null
	log "$name: starting the null service"
	"$tmp/loadgen" -null-server "127.0.0.1:${p[0]}" -null-server-life 30m >"$tmp/$name.log" 2>&1 &
	local pid=$!
	started+=("$pid")
	measure "$name" "$pid" "${p[0]}" 0
	stop "$pid"
}

# run_ours NAME RULES STORE
run_ours() {
	local name="$1" rules="$2" storeflag="$3" uses_redis=0
	mapfile -t p < <("$tmp/loadgen" -free-ports 3)
	rcli FLUSHALL >/dev/null
	case "$storeflag" in redis://*) uses_redis=1 ;; esac
	log "$name: starting ratelimitd -store $storeflag"
	"$tmp/ratelimitd" -config "$rules" -grpc "127.0.0.1:${p[0]}" -http "127.0.0.1:${p[1]}" \
		-admin "127.0.0.1:${p[2]}" -store "$storeflag" -log-level warn >"$tmp/$name.log" 2>&1 &
	local pid=$!
	started+=("$pid")
	wait_http "http://127.0.0.1:${p[1]}/readyz" "$pid" "$tmp/$name.log"
	measure "$name" "$pid" "${p[0]}" "$uses_redis"
	stop "$pid"
}

loadavg_start="$(cut -d' ' -f1-3 /proc/loadavg)"
# noise FILE: the most CPU, in percent of one core, that other processes used
# at any level of the rows in FILE.
noise() {
	awk -F'\t' 'function p(s) { if (s ~ /%$/) { sub(/%$/, "", s); return s + 0 } return 0 }
		{ o = p($14) - p($11) - p($12) - p($13); if (o > m) m = o }
		END { printf "%d\n", m }' "$1"
}

# attempt NAME COMMAND...: run COMMAND (run_null, run_envoy or run_ours) for
# target NAME after waiting for a quiet machine, again while other processes
# took more than NOISE_LIMIT% of one core and RETRIES allow.
attempt() {
	local name="$1" try q n
	shift
	for ((try = 1; ; try++)); do
		if [ "$QUIET_WAIT" != 0 ] && [ "$QUIET_WAIT" != 0s ]; then
			q="$("$tmp/loadgen" -wait-quiet "$QUIET_WAIT")"
			log "$name: machine before start: $q"
			printf '%-26s attempt %d, machine before start: %s\n' "$name" "$try" "$q" >>"$tmp/quiet.txt"
		fi
		: >"$a_rows"
		: >"$a_totals"
		: >"$a_store"
		"$@"
		n="$(noise "$a_rows")"
		if ((n > NOISE_LIMIT)) && ((try <= RETRIES)); then
			log "$name: other processes took up to $n% of one core: run again"
			printf '%-26s attempt %d discarded: other processes took up to %d%% of one core\n' "$name" "$try" "$n" >>"$tmp/noise.txt"
			continue
		fi
		if ((n > NOISE_LIMIT)); then
			printf '%-26s attempt %d KEPT although other processes took up to %d%% of one core (no retries left)\n' "$name" "$try" "$n" >>"$tmp/noise.txt"
		fi
		cat "$a_rows" >>"$rows"
		cat "$a_totals" >>"$totals"
		cat "$a_store" >>"$store"
		return 0
	done
}

skipped=()
for ((round = 1; round <= ROUNDS; round++)); do
	for t in $TARGETS; do
		n="$t"
		if ((round > 1)); then
			n="$t#$round"
		fi
		case "$t" in
		null-server) attempt "$n" run_null "$n" ;;
		envoy-redis) attempt "$n" run_envoy "$n" ;;
		envoy-redis-window150us) attempt "$n" run_envoy "$n" REDIS_PIPELINE_WINDOW=150us ;;
		envoy-redis-gogc400) attempt "$n" run_envoy "$n" GOGC=400 ;;
		ours-redis | ours-redis-gcra | ours-memory)
			if [ "$have_ours" = 0 ]; then
				((round > 1)) || skipped+=("$t")
				continue
			fi
			case "$t" in
			ours-redis) attempt "$n" run_ours "$n" "$tmp/rules/fixed/bench.yaml" "redis://127.0.0.1:$redis_port" ;;
			ours-redis-gcra) attempt "$n" run_ours "$n" "$tmp/rules/gcra/bench.yaml" "redis://127.0.0.1:$redis_port" ;;
			ours-memory) attempt "$n" run_ours "$n" "$tmp/rules/fixed/bench.yaml" memory ;;
			esac
			;;
		*)
			echo "unknown target $t" >&2
			exit 2
			;;
		esac
	done
done
loadavg_end="$(cut -d' ' -f1-3 /proc/loadavg)"

# --- report ------------------------------------------------------------------
commit="$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
dirty="$(git -C "$repo" status --porcelain -- cmd/ratelimitd bench/service 2>/dev/null | wc -l)"
if [ "$dirty" != 0 ]; then
	commit="$commit (plus uncommitted changes in cmd/ratelimitd or bench/service)"
fi
{
	echo "ShouldRateLimit, side by side: envoyproxy/ratelimit and ratelimitd"
	echo
	echo "date:        $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "commit:      $commit"
	echo "machine:     $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), $(uname -sr)"
	echo "go:          $(go version | cut -d' ' -f3-)"
	echo "redis:       $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p'), private instance on loopback TCP, --save \"\" --appendonly no, FLUSHALL before each target"
	echo "envoy:       github.com/envoyproxy/ratelimit $envoy_version, built from the module proxy"
	echo "load:        levels $LEVELS; $WARMUP warm-up then $DURATION measured per level; $CONNS gRPC connections shared by"
	echo "             the caller goroutines (goroutine i on connection i mod $CONNS); each goroutine makes one call at a time;"
	echo "             domain bench, one descriptor {user: one of 10,000 ids drawn uniformly}"
	echo "rounds:      $ROUNDS (targets in the order: $TARGETS)"
	echo "load average (1/5/15 min): $loadavg_start at start, $loadavg_end at end"
	echo
	echo "targets:"
	echo "  null-server              not a rate limiter: the load generator's own gRPC service that answers OK at once;"
	echo "                           the most this client can measure on this machine, whatever the server"
	echo "  envoy-redis              envoyproxy/ratelimit, its defaults: REDIS_POOL_SIZE=10, REDIS_PIPELINE_WINDOW=0 (no write"
	echo "                           buffering), LOCAL_CACHE_SIZE_IN_BYTES=0; USE_STATSD=false, LOG_LEVEL=warn,"
	echo "                           REDIS_SOCKET_TYPE=tcp, RUNTIME_WATCH_ROOT=false"
	echo "  envoy-redis-window150us  the same with REDIS_PIPELINE_WINDOW=150us (the low end of its README's 150us-500us advice)"
	echo "  envoy-redis-gogc400      the same with GOGC=400, the garbage collector setting ratelimitd starts with"
	echo "  ours-redis               ratelimitd -store redis://127.0.0.1:PORT, the same rule file (fixed window, its default);"
	echo "                           its defaults otherwise but -log-level warn, as envoyproxy/ratelimit's LOG_LEVEL"
	echo "  ours-redis-gcra          the same with algorithm: gcra in the rule"
	echo "  ours-memory              ratelimitd -store memory -log-level warn, the same rule file"
	echo "  rule: unit second, requests_per_unit 1000000 per user, so every call is allowed and counted in the store"
	if [ "${#skipped[@]}" != 0 ]; then
		echo
		echo "NOT MEASURED: ${skipped[*]}: $ours_note"
	fi
	echo
	"$tmp/loadgen" -table "$rows"
	echo
	echo "calls/s counts the calls started in the measured window. p50/p99 are per call as the client saw it"
	echo "(histogram buckets 0.8% wide). errors counts failed calls and UNKNOWN answers. over% is OVER_LIMIT among answers."
	echo "cpu columns: CPU time over the measured window as a share of one core (the machine has $(nproc) cores, so"
	echo "$(( $(nproc) * 100 ))% is all of it): the server, redis-server, the load generator itself, and all other processes"
	echo "(the machine's busy time less those three: noise from whatever else runs on the machine)."
	echo "server cpu/call and redis cpu/call: that CPU time divided by the calls, what one call cost each process."
	echo
	echo "noise: a target's run in which other processes took more than $NOISE_LIMIT% of one core at any level"
	echo "was discarded and run again, at most $RETRIES times; before each, up to $QUIET_WAIT waiting for a quiet machine."
	if [ -s "$tmp/noise.txt" ]; then
		cat "$tmp/noise.txt"
	else
		echo "no run was discarded."
	fi
	if [ -s "$tmp/quiet.txt" ]; then
		cat "$tmp/quiet.txt"
	fi
	echo
	echo "store activity per target (all levels, warm-ups and readiness probes included; commands that Lua"
	echo "scripts run count as commands; commands under 0.01 per call left out):"
	cat "$store"
} >"$tmp/results.txt"

cp "$tmp/results.txt" "$RESULTS"
cat "$tmp/results.txt"
