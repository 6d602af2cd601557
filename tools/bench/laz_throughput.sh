#!/usr/bin/env bash
# LAZ read/write throughput: hdmap-io vs laspy+lazrs on autzen_trim.laz × 91 (10 M points).
# Prints the markdown table recorded in BENCHMARK.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
"$ROOT/tools/setup" >/dev/null
cd "$ROOT" && cargo bench -q -p hdmap-io --bench laz_throughput
