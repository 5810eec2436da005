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
"$bin" bench "$model" --imgsz "$imgsz" --runs 1 --threads "$threads" 2>/dev/null | sed -n 1,2p
ours=(); traced=(); hf=()
for r in $(seq "$rounds"); do
  json=$("$bin" bench "$model" --imgsz "$imgsz" --runs "$runs" --threads "$threads" --json 2>/dev/null)
  o=$(printf '%s' "$json" | "$python" -c 'import json,sys; print(json.load(sys.stdin)["median_ms"])')
  t=$(printf '%s' "$json" | "$python" -c 'import json,sys; print(json.load(sys.stdin).get("traced_median_ms", 0))')
  h=$("$python" "$here/scripts/bench/transformers_deformable.py" "$model" --imgsz "$imgsz" --runs "$runs" --threads "$threads" 2>/dev/null \
      | tail -n 1 | sed -E 's/.*median ([0-9.]+) ms.*/\1/')
  printf 'round %d: detr-tui %.1f ms (traced %.1f), transformers %.1f ms\n' "$r" "$o" "$t" "$h"
  ours+=("$o"); traced+=("$t"); hf+=("$h")
done
"$python" - "$imgsz" "$threads" "${ours[*]}" "${traced[*]}" "${hf[*]}" <<'PY'
import statistics, sys
imgsz, threads = sys.argv[1], sys.argv[2]
o, t, h = ([float(v) for v in a.split()] for a in sys.argv[3:6])
mo, mt, mh = (statistics.median(v) for v in (o, t, h))
print(f"deformable-detr (multi-scale) at {imgsz}x{imgsz}, {threads} threads, median of {len(o)} round medians: "
      f"detr-tui {mo:.1f} ms, traced {mt:.1f} ms, transformers {mh:.1f} ms")
print(f"detr-tui / transformers = {mo / mh:.2f}; traced: {mt / mh:.2f} (goal <= 0.50)")
PY
