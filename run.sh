#!/usr/bin/env bash
# Builds the host and every bundled plugin (release), signs the bundled plugins with a local
# publisher key trusted by ./data/host.toml (so `serve`, strict by default, loads them), then
# runs `passerelle` with the given arguments on ./data. Without arguments: list the plugins.
#   ./run.sh                 # build everything, list loaded plugins
#   ./run.sh serve           # HTTP API and web console on 127.0.0.1:8080
#   ./run.sh test <instance> # any passerelle command
# PASSERELLE_RUN_PROFILE=dev uses a debug build instead (the e2e test of this script does).
set -euo pipefail
cd "$(dirname "$0")"
profile=${PASSERELLE_RUN_PROFILE:-release}
case "$profile" in dev) out=debug ;; *) out=$profile ;; esac
cargo build --profile "$profile" --quiet
bin=./target/$out/passerelle
# The data directory is private (keys, host.toml): what this script creates there too.
umask 077
data=${PASSERELLE_DATA_DIR:-data}
key="$data/keys/local-build.key"
if [ ! -f "$key" ]; then
  "$bin" --data-dir "$data" plugin keygen --out "$data/keys" --name local-build >/dev/null
fi
public=$(cat "$data/keys/local-build.pub")
if [ ! -f "$data/host.toml" ]; then
  printf '# Written by run.sh: trusts the key that signs the locally built plugins.\n[plugins]\ntrusted_keys = ["%s"]\n' "$public" > "$data/host.toml"
elif ! grep -qF "$public" "$data/host.toml"; then
  echo "note: $data/host.toml does not trust $public (the key signing local builds); add it to trusted_keys" >&2
fi
for lib in ./target/"$out"/*passerelle_*.{so,dylib,dll}; do
  [ -f "$lib" ] || continue
  "$bin" --data-dir "$data" plugin sign "$lib" --key "$key" >/dev/null
done
exec "$bin" --data-dir "$data" "${@:-plugins}"
