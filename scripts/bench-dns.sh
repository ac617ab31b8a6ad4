#!/usr/bin/env bash
# Benchmark kubelite's cluster DNS server with dnsperf, side by side with a
# reference server answering the same names in the same run.
#
# The reference is unbound (Debian's package), serving the same records from
# local-data in "static" zones, so both are authoritative answers from memory.
# dns/internal/benchserver makes up one cluster (SERVICES ClusterIP Services,
# HEADLESS headless ones with 3 endpoints each) and derives from it the
# kubelite server's data, unbound's configuration and dnsperf's query mix
# (A, AAAA/NODATA, SRV, PTR, search-path NXDOMAIN); before timing, it checks
# that both servers give the same answers to every query.
#
# Servers run pinned to SERVER_CPUS (kubelite with GOMAXPROCS and unbound
# with num-threads equal to their count), dnsperf to CLIENT_CPUS, one server
# at a time; the defaults measure one core each, comparable to CoreDNS's
# published figure of about 17k QPS per core. ROUNDS rounds alternate which
# server goes first, and the medians are reported, so that noise from other
# work on the machine hits both alike. It prints, per server, QPS, average
# latency and the server's CPU time per query (user + system, the figure
# least disturbed by other work on a shared machine), and kubelite/unbound
# ratios. Traffic stays on 127.0.0.1.
#
# Usage: scripts/bench-dns.sh     (env: DURATION ROUNDS SERVICES HEADLESS
#                                  CLIENTS OUTSTANDING SERVER_CPUS
#                                  CLIENT_CPUS KUBELITE_PORT UNBOUND_PORT)
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
SERVICES=${SERVICES:-1000}
HEADLESS=${HEADLESS:-100}
CLIENTS=${CLIENTS:-8}
OUTSTANDING=${OUTSTANDING:-100}
SERVER_CPUS=${SERVER_CPUS:-1}
CLIENT_CPUS=${CLIENT_CPUS:-0}
KUBELITE_PORT=${KUBELITE_PORT:-15353}
UNBOUND_PORT=${UNBOUND_PORT:-15354}

# Install what is missing (Debian packages), as scripts/install-deps.sh would.
need() { # need COMMAND PACKAGE
	if ! command -v "$1" >/dev/null 2>&1; then
		echo "installing $2 for $1" >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y "$2" >/dev/null ||
			{ apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y "$2" >/dev/null; }
	fi
}
need dnsperf dnsperf
need unbound unbound
need taskset util-linux

# The servers' threads: as many as SERVER_CPUS lists CPUs.
IFS=, read -r -a server_cpu_list <<<"$SERVER_CPUS"
threads=${#server_cpu_list[@]}

work=$(mktemp -d)
pids=()
cleanup() {
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/benchserver" ./dns/internal/benchserver
bench=("$work/benchserver")
sizes=(-services "$SERVICES" -headless "$HEADLESS")

"${bench[@]}" queries "${sizes[@]}" >"$work/queries.txt"
"${bench[@]}" unbound-conf "${sizes[@]}" -listen "127.0.0.1:$UNBOUND_PORT" -dir "$work" -threads "$threads" >"$work/unbound.conf"
unbound-checkconf "$work/unbound.conf" >/dev/null

GOMAXPROCS=$threads taskset -c "$SERVER_CPUS" "${bench[@]}" serve "${sizes[@]}" -listen "127.0.0.1:$KUBELITE_PORT" &
kubelite_pid=$!
pids+=("$kubelite_pid")
taskset -c "$SERVER_CPUS" unbound -d -c "$work/unbound.conf" 2>"$work/unbound.log" &
unbound_pid=$!
pids+=("$unbound_pid")
"${bench[@]}" wait "127.0.0.1:$KUBELITE_PORT"
"${bench[@]}" wait "127.0.0.1:$UNBOUND_PORT"
"${bench[@]}" compare -queries "$work/queries.txt" "127.0.0.1:$KUBELITE_PORT" "127.0.0.1:$UNBOUND_PORT"

# cpu_ticks PID: CPU time the process has used, user + system, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
ticks_per_second=$(getconf CLK_TCK)

# run_dnsperf NAME PORT PID: one timed run; prints
# "NAME QPS AVG_LATENCY_S LOST SERVER_CPU_US_PER_QUERY". CPU time per query
# is the figure least disturbed by other work on the machine.
run_dnsperf() {
	local out="$work/dnsperf-$1.txt" before after
	before=$(cpu_ticks "$3")
	taskset -c "$CLIENT_CPUS" dnsperf -s 127.0.0.1 -p "$2" -d "$work/queries.txt" \
		-l "$DURATION" -c "$CLIENTS" -q "$OUTSTANDING" -T 1 >"$out" 2>&1
	after=$(cpu_ticks "$3")
	awk -v name="$1" -v ticks=$((after - before)) -v hz="$ticks_per_second" '
		/Queries completed:/ { completed = $3 }
		/Queries per second:/ { qps = $4 }
		/Average Latency \(s\):/ { latency = $4 }
		/Queries lost:/ { lost = $3 }
		END {
			if (qps == "" || completed == 0) exit 1
			printf "%s %s %s %s %.1f\n", name, qps, latency, lost, ticks / hz / completed * 1e6
		}
	' "$out" || { cat "$out" >&2; return 1; }
}

echo "dnsperf: $ROUNDS rounds of $DURATION s per server, $CLIENTS clients, $OUTSTANDING outstanding," \
	"$(wc -l <"$work/queries.txt") distinct queries; servers on CPU $SERVER_CPUS, dnsperf on CPU $CLIENT_CPUS"
results=$(
	for ((round = 1; round <= ROUNDS; round++)); do
		if ((round % 2)); then
			run_dnsperf kubelite "$KUBELITE_PORT" "$kubelite_pid"
			run_dnsperf unbound "$UNBOUND_PORT" "$unbound_pid"
		else
			run_dnsperf unbound "$UNBOUND_PORT" "$unbound_pid"
			run_dnsperf kubelite "$KUBELITE_PORT" "$kubelite_pid"
		fi
	done
)
printf '%s\n' "$results" | awk '{ printf "  round: %-9s %9.0f QPS %8.3f ms %7.1f us CPU/query\n", $1, $2, $3 * 1000, $5 }'
printf '%s\n' "$results" | awk '
	# Per server, the median of the rounds of each figure.
	{ n[$1]++; qps[$1, n[$1]] = $2; lat[$1, n[$1]] = $3; cpu[$1, n[$1]] = $5; lost[$1] += $4 }
	function median(values, s,   i, j, v, sorted) {
		for (i = 1; i <= n[s]; i++) sorted[i] = values[s, i]
		for (i = 2; i <= n[s]; i++) {
			v = sorted[i]
			for (j = i - 1; j >= 1 && sorted[j] > v; j--) sorted[j + 1] = sorted[j]
			sorted[j + 1] = v
		}
		return sorted[int((n[s] + 1) / 2)]
	}
	END {
		printf "%-10s %12s %16s %18s %6s\n", "server", "median QPS", "median latency", "CPU per query", "lost"
		for (s in n) printf "%-10s %12.0f %13.3f ms %15.1f us %6d\n", s, median(qps, s), median(lat, s) * 1000, median(cpu, s), lost[s]
		printf "kubelite/unbound: QPS x%.2f, latency x%.2f, CPU per query x%.2f\n",
			median(qps, "kubelite") / median(qps, "unbound"), median(lat, "kubelite") / median(lat, "unbound"),
			median(cpu, "kubelite") / median(cpu, "unbound")
	}
'
