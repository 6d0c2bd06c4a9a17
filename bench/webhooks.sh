#!/usr/bin/env bash
# Webhook delivery throughput (issue 18): events/s from the outbox to a local receiver.
# N events (EVENTS, default 400) are stored with `passerelle events emit` over INSTANCES
# instances (default 1: strictly in order, one delivery in flight; more instances deliver in
# parallel, up to 16 in flight), then `passerelle serve` starts and the time until the
# receiver (Python, HTTP/1.1 keep-alive, answers 204) has them all is measured.
#
#   bench/webhooks.sh                       # 400 events, one instance
#   EVENTS=1000 INSTANCES=8 bench/webhooks.sh
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${EVENTS:-400}
INSTANCES=${INSTANCES:-1}

cargo build -q -p passerelle
BIN=$PWD/target/debug/passerelle
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

cat > "$WORK/receiver.py" <<'PY'
import http.server, sys, threading
count = 0
lock = threading.Lock()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        global count
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with lock:
            count += 1
            n = count
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()
        with open(sys.argv[1], "w") as f:
            f.write(str(n))
    def log_message(self, *a):
        pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
PY
python3 "$WORK/receiver.py" "$WORK/count" > "$WORK/port" &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$WORK/port" ] && break; sleep 0.05; done
PORT=$(cat "$WORK/port")

p() { "$BIN" --data-dir "$WORK/data" --plugin-dir "$WORK/no-plugins" --plugin-policy allow-unsigned "$@"; }
mkdir -p "$WORK/no-plugins"
openssl rand -hex 32 | p webhooks add "http://127.0.0.1:$PORT/hook" --events '*' >/dev/null
echo "storing $EVENTS events over $INSTANCES instance(s)…"
for i in $(seq "$EVENTS"); do
  p events emit esign.completed --instance "bench-$((i % INSTANCES))" --data "{\"n\":$i}" >/dev/null
done

START=$(date +%s.%N)
"$BIN" --data-dir "$WORK/data" --plugin-dir "$WORK/no-plugins" --plugin-policy allow-unsigned \
  serve --listen 127.0.0.1:0 > "$WORK/serve.out" 2> "$WORK/serve.err" &
PIDS+=($!)
delivered() { local c; c=$(cat "$WORK/count" 2>/dev/null || true); echo "${c:-0}"; }
while [ "$(delivered)" -lt "$EVENTS" ]; do
  sleep 0.02
  if ! kill -0 "${PIDS[-1]}" 2>/dev/null; then cat "$WORK/serve.err" >&2; exit 1; fi
done
END=$(date +%s.%N)
python3 - "$START" "$END" "$EVENTS" "$INSTANCES" <<'PY'
import sys
start, end, n, inst = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
secs = end - start
print(f"{n} deliveries over {inst} instance(s) in {secs:.2f} s (server start included): {n/secs:.0f} events/s")
PY
