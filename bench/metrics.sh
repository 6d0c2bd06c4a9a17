#!/usr/bin/env bash
# Cost of a metric-instrumented capability call (issue 18): ns per call with the Prometheus
# recorder installed against no recorder, and the time to render /metrics.
# METRICS_BENCH_CALLS (default 1000000) sets the calls per measurement.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench -p passerelle --bench metrics
