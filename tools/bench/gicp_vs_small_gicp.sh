#!/usr/bin/env bash
# Our GICP vs small_gicp (PyPI `small-gicp`), side by side in one run on the same clouds:
# the PJLab lidar2lidar pairs and a real scan against a moved copy (see
# crates/hdmap-register/examples/gicp_pairs.rs and tools/bench/gicp_vs_small_gicp.py).
# Both tools use THREADS threads (default: all cores), in ROUNDS (default 3) alternating
# rounds. Prints the table in BENCHMARK.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
"$ROOT/tools/setup" >/dev/null
cd "$ROOT"
THREADS="${THREADS:-$(nproc)}"
VENV=.cache/bench-venv
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -c 'import small_gicp, numpy' 2>/dev/null ||
  "$VENV/bin/pip" install -q --disable-pip-version-check 'small_gicp==1.0.1' 'numpy>=1.26'
cargo build --release -q -p hdmap-register --example gicp_pairs
DUMP=$(mktemp -d)
trap 'rm -rf "$DUMP"' EXIT
ROUNDS="${ROUNDS:-3}"
dirs=()
for r in $(seq "$ROUNDS"); do
  RAYON_NUM_THREADS="$THREADS" target/release/examples/gicp_pairs --dump "$DUMP/$r" --repeat 5 >/dev/null 2>&1
  "$VENV/bin/python" tools/bench/gicp_vs_small_gicp.py time "$DUMP/$r" 5
  dirs+=("$DUMP/$r")
done
"$VENV/bin/python" tools/bench/gicp_vs_small_gicp.py summary "${dirs[@]}"
