#!/usr/bin/env bash
# Builds the host and every bundled plugin (release), then runs `passerelle` with the given
# arguments on the default data directory (./data). Without arguments: list the plugins.
#   ./run.sh                 # build everything, list loaded plugins
#   ./run.sh test <instance> # any passerelle command
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release --quiet
exec ./target/release/passerelle "${@:-plugins}"
