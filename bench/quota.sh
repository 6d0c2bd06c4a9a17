#!/usr/bin/env bash
# Quota benchmark (issue: host services): sustained throughput through the host's per-instance
# quota against a strict emulator refusing anything beyond N per rolling second.
# Goal: >= 97 % of N, zero rejections. QUOTA_BENCH_SECONDS (default 10) sets the length.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench -p passerelle-e2e --bench quota
