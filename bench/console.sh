#!/usr/bin/env bash
# Console/API benchmark (issue 8): authenticated GET of a plugin schema and of an instance
# against a running `passerelle serve` (release build), with wrk as the load generator.
# Goal on the 2-core reference machine: >= 20 000 requests/s with p99 < 10 ms for each.
#
# Needs wrk (`apt-get install -y wrk`). Knobs: BENCH_SECONDS (default 10),
# BENCH_CONNECTIONS (default 32), BENCH_THREADS (wrk threads, default 1), BENCH_STRICT=1 to
# exit non-zero when a goal is missed. Only 127.0.0.1 is ever loaded.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_=${BENCH_SECONDS:-10}
CONNS=${BENCH_CONNECTIONS:-32}
THREADS=${BENCH_THREADS:-1}
command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install -y wrk" >&2; exit 2; }

cargo build -q --release -p passerelle -p passerelle-sirene
target=${CARGO_TARGET_DIR:-target}/release
work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/plugins"
cp "$target/libpasserelle_sirene.so" "$work/plugins/"
pl() { "$target/passerelle" --data-dir "$work/data" --plugin-dir "$work/plugins" --plugin-policy allow-unsigned "$@"; }
pl config create sirene --plugin sirene >/dev/null
pl config set sirene base_url http://127.0.0.1:9/api-sirene/3.11 >/dev/null
printf 'bench-key' | pl config set sirene api_key --stdin >/dev/null
pl config set sirene timeout_secs 15 >/dev/null
token=$(pl admin token create --name bench --scope admin 2>/dev/null)

# Started directly (not through `pl`) so that $! is the server itself, which cleanup stops.
PASSERELLE_ADMIN_PASSWORD=bench-password-long "$target/passerelle" --data-dir "$work/data" \
  --plugin-dir "$work/plugins" --plugin-policy allow-unsigned serve --listen 127.0.0.1:0 \
  > "$work/serve.out" 2> "$work/serve.err" &
server_pid=$!
for _ in $(seq 100); do
  addr=$(sed -n 's|^Passerelle console: http://\([^/]*\)/.*|\1|p' "$work/serve.out")
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "${addr:-}" ] || { echo "the server did not start:" >&2; cat "$work/serve.err" >&2; exit 1; }
echo "server: http://$addr (release), wrk: $THREADS thread(s), $CONNS connections, ${SECONDS_}s per endpoint"

# utime + stime of the server process, in clock ticks.
server_cpu_ticks() { awk '{print $14 + $15}' "/proc/$server_pid/stat"; }

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine lowers the figures)"
status=0
for path in /api/plugins/sirene/schema /api/instances/sirene; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "http://$addr$path")
  [ "$code" = 200 ] || { echo "GET $path answered $code" >&2; exit 1; }
  # Warm up, then measure.
  wrk -t1 -c"$CONNS" -d2s -H "Authorization: Bearer $token" "http://$addr$path" >/dev/null
  cpu_before=$(server_cpu_ticks)
  out=$(wrk -t"$THREADS" -c"$CONNS" -d"${SECONDS_}s" --latency -H "Authorization: Bearer $token" "http://$addr$path")
  cpu_after=$(server_cpu_ticks)
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  # Server CPU time per request: a figure that holds even when other work shares the machine.
  cpu_us=$(awk -v a="$cpu_before" -v b="$cpu_after" -v n="$requests" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%.1f", (b - a) / hz * 1e6 / n }')
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx or 3xx responses:/ {print $5}' <<<"$out")
  p99_ms=$(awk -v v="$p99" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); print v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); print v + 0 }
    else if (v ~ /s$/) { sub(/s$/, "", v); print v * 1000 }
    else print 99999 }')
  verdict=$(awk -v r="$rps" -v p="$p99_ms" -v e="${errors:-0}" 'BEGIN { print (r >= 20000 && p < 10 && e == 0) ? "PASS" : "MISS" }')
  [ "$verdict" = PASS ] || status=1
  printf 'GET %-28s %10s req/s   p99 %8s   non-2xx %s   server CPU %5s us/request   %s\n' \
    "$path" "$rps" "$p99" "${errors:-0}" "$cpu_us" "$verdict"
done
if [ "$status" != 0 ] && [ "${BENCH_STRICT:-0}" = 1 ]; then exit 1; fi
