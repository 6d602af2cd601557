#!/usr/bin/env bash
# Layout extraction throughput at 8 cm GSD on this machine's cores: `hdmap layout` (release)
# with the classical and the learned segmenter on the simulated city orthophoto
# (configs/sim/city.toml, seed 101: 20 929 × 11 869 px = 1.59 km²), one after the other.
# Prints the markdown rows recorded in BENCHMARK.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
"$ROOT/tools/setup" >/dev/null
cd "$ROOT"
cargo build --release -q -p hdmap-cli
HDMAP=target/release/hdmap
SCENE=.cache/train/city101
[ -f "$SCENE/aerial/ortho.tif" ] || "$HDMAP" sim --config configs/sim/city.toml --seed 101 --aerial-only --out "$SCENE"
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
echo "| segmenter | area km² | time s | km²/min | cores |"
echo "|---|---|---|---|---|"
for seg in classical learned; do
  extra=()
  [ "$seg" = learned ] && extra=(--model datasets/models/layout_unet.safetensors)
  start=$(date +%s.%N)
  line=$("$HDMAP" layout --ortho "$SCENE/aerial/ortho.tif" --dsm "$SCENE/aerial/dsm.tif" --vertical-datum kngeoid18 \
    --segmenter "$seg" "${extra[@]}" --out "$OUT/$seg.gpkg" 2>/dev/null | tail -1)
  end=$(date +%s.%N)
  km2=$(echo "$line" | sed -E 's/.* from ([0-9.]+) km².*/\1/')
  python3 -c "s=$end-$start; print(f'| $seg | $km2 | {s:.1f} | {$km2/(s/60):.2f} | $(nproc) |')"
done
