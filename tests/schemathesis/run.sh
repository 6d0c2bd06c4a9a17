#!/usr/bin/env bash
# Schemathesis against the real `passerelle serve`: every operation of /api/openapi.json is
# called with generated valid and invalid inputs (admin token, one enabled Sirene instance
# against its emulator), and the run fails on any server error or any answer that the
# OpenAPI document does not declare (status code, content type, body schema).
#
# Bounded: a few examples per operation and a time budget, so the step stays under about
# three minutes on two cores. Uses the debug builds (`cargo build` below is a no-op after
# `cargo test --workspace`).
#
#   tests/schemathesis/run.sh            # from the repository root
#   ST_MAX_EXAMPLES=50 ST_MAX_TIME=600 tests/schemathesis/run.sh   # longer, by hand
set -euo pipefail
cd "$(dirname "$0")/../.."

SCHEMATHESIS_VERSION=4.32.5
VENV=${SCHEMATHESIS_VENV:-target/schemathesis-venv}
MAX_EXAMPLES=${ST_MAX_EXAMPLES:-10}
MAX_TIME=${ST_MAX_TIME:-100}
SEED=${ST_SEED:-20261204}

if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

cargo build -q -p passerelle -p passerelle-sirene -p passerelle-emulators
BIN=$PWD/target/debug/passerelle
EMULATORS=$PWD/target/debug/passerelle-emulators

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# Waits until FILE has a line matching REGEX and prints that line (30 s at most).
wait_line() {
  local file=$1 regex=$2 what=$3
  for _ in $(seq 300); do
    if line=$(grep -m1 -E "$regex" "$file" 2>/dev/null); then
      echo "$line"
      return 0
    fi
    sleep 0.1
  done
  echo "schemathesis: $what did not start within 30 s:" >&2
  cat "$file" "$file.err" >&2 || true
  return 1
}

"$EMULATORS" > "$WORK/emulators.out" 2> "$WORK/emulators.out.err" &
PIDS+=($!)
line=$(wait_line "$WORK/emulators.out" '^sirene: ' "the emulators")
SIRENE_URL=$(sed -E 's/^sirene: ([^ ]+) \(key: (.*)\)$/\1/' <<<"$line")
SIRENE_KEY=$(sed -E 's/^sirene: ([^ ]+) \(key: (.*)\)$/\2/' <<<"$line")

p() {
  "$BIN" --data-dir "$WORK/data" --plugin-dir target/debug --plugin-policy allow-unsigned "$@"
}
p config create demo-sirene --plugin sirene >/dev/null
p config set demo-sirene base_url "$SIRENE_URL" >/dev/null
printf '%s' "$SIRENE_KEY" | p config set demo-sirene api_key --stdin >/dev/null
p config enable demo-sirene >/dev/null
TOKEN=$(p admin token create --name schemathesis --scope admin)

PASSERELLE_ADMIN_PASSWORD=schemathesis-Pa55word p serve --listen 127.0.0.1:0 \
  > "$WORK/serve.out" 2> "$WORK/serve.out.err" &
PIDS+=($!)
line=$(wait_line "$WORK/serve.out" '^Passerelle console: http://' "passerelle serve")
BASE=$(sed -E 's#^Passerelle console: (http://[^/]+)/.*#\1#' <<<"$line")

echo "schemathesis $SCHEMATHESIS_VERSION against $BASE (at most $MAX_EXAMPLES examples per operation, ${MAX_TIME} s)"
# Real values where random ones would only ever meet 404: the demo instance, one of its
# fields, and the operation it serves.
cat > "$WORK/schemathesis.toml" <<'TOML'
[[operations]]
include-path = "/api/capabilities/{operation}"
parameters = { operation = "company.lookup" }

[[operations]]
include-path = "/api/instances/{id}/fields/{field}"
parameters = { id = "demo-sirene", field = "timeout_secs" }
TOML

status=0
# Run from the temporary directory: schemathesis keeps its cache in the current one.
VENV_ABS=$(cd "$VENV" && pwd)
(cd "$WORK" && "$VENV_ABS/bin/schemathesis" --config-file schemathesis.toml run "$BASE/api/openapi.json" \
  --url "$BASE" \
  --header "Authorization: Bearer $TOKEN" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-examples "$MAX_EXAMPLES" \
  --max-time "$MAX_TIME" \
  --seed "$SEED" \
  --request-timeout 30 \
  --workers 1 \
  --no-color \
  --suppress-health-check all) || status=$?
if [ "$status" -ne 0 ]; then
  echo "schemathesis found problems (exit $status); server log:" >&2
  tail -50 "$WORK/serve.out.err" >&2 || true
fi
exit "$status"
