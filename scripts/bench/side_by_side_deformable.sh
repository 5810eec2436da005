#!/usr/bin/env bash
# Deformable DETR (multi-scale, full size: ResNet-50, 4 levels, 300 queries, 6 + 6 layers, random init) in detr-tui
# against Hugging Face transformers, same thread count, alternating so both see the same machine load: ROUNDS rounds
# of `detr-tui bench DIR --imgsz 640` and scripts/bench/transformers_deformable.py with RUNS timed runs each. The model
# is written once by transformers' save_pretrained to a temporary directory, so both run the same weights. Prints
# the CPU, each round's medians, the median of the round medians and the ratio detr-tui / transformers (goal: <= 0.5).
#
# Usage: scripts/bench/side_by_side_deformable.sh [ROUNDS] [RUNS]
# Needs a release build (swift build -c release) and python with torch and transformers (PYTHON=...).
# THREADS (default: nproc), BIN (default: .build/release/detr-tui) and IMGSZ (default: 640) as in side_by_side.sh.
set -euo pipefail
rounds=${1:-3}
runs=${2:-3}
threads=${THREADS:-$(nproc)}
imgsz=${IMGSZ:-640}
python=${PYTHON:-python3}
here=$(cd "$(dirname "$0")/../.." && pwd)
bin=${BIN:-"$here/.build/release/detr-tui"}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
model="$tmp/deformable-detr"
"$python" "$here/scripts/bench/transformers_deformable.py" "$model" --save >/dev/null 2>&1 \
  || { echo "side_by_side_deformable.sh: writing the model failed (run scripts/bench/transformers_deformable.py DIR --save to see why)" >&2; exit 1; }
# The alternating rounds are side_by_side_hf.sh's, with transformers_deformable.py as the peer.
THREADS=$threads IMGSZ=$imgsz PYTHON=$python BIN=$bin PEER="$here/scripts/bench/transformers_deformable.py" GOAL=0.50 \
  "$here/scripts/bench/side_by_side_hf.sh" "$model" "$rounds" "$runs"
