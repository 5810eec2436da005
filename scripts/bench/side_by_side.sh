#!/usr/bin/env bash
# detr-tui against PyTorch (ultralytics, fused, same thread count), alternating so that both see the same
# machine load: ROUNDS rounds of `detr-tui bench MODEL` and scripts/bench/torch_ultralytics.py with RUNS timed
# runs each. Prints each round's medians and the median of the round medians, and their ratio.
#
# Usage: scripts/bench/side_by_side.sh MODEL [ROUNDS] [RUNS]    (MODEL: yolov8n/s/m/l/x, rtdetr-l, ...)
# Needs a release build (swift build -c release) and python with torch + ultralytics (PYTHON=...).
set -euo pipefail
model=${1:?usage: side_by_side.sh MODEL [ROUNDS] [RUNS]}
rounds=${2:-5}
runs=${3:-5}
python=${PYTHON:-python3}
here=$(cd "$(dirname "$0")/../.." && pwd)
bin="$here/.build/release/detr-tui"
case "$model" in
  yolov8?) yaml="$here/assets/models/yolov8.yaml"; scale=(--scale "${model#yolov8}") ;;
  *) yaml="$here/assets/models/$model.yaml"; scale=() ;;
esac
ours=(); theirs=(); traced=()
for r in $(seq "$rounds"); do
  json=$("$bin" bench "$model" --imgsz 640 --runs "$runs" --json 2>/dev/null)
  o=$(printf '%s' "$json" | "$python" -c 'import json,sys; print(json.load(sys.stdin)["median_ms"])')
  t=$(printf '%s' "$json" | "$python" -c 'import json,sys; print(json.load(sys.stdin).get("traced_median_ms", 0))')
  p=$("$python" "$here/scripts/bench/torch_ultralytics.py" "$yaml" "${scale[@]}" --runs "$runs" --fuse 2>/dev/null | tail -n 1 | sed -E 's/.*median ([0-9.]+) ms.*/\1/')
  printf 'round %d: detr-tui %.1f ms (traced %.1f), torch %.1f ms\n' "$r" "$o" "$t" "$p"
  ours+=("$o"); traced+=("$t"); theirs+=("$p")
done
"$python" - "${ours[*]}" "${traced[*]}" "${theirs[*]}" <<'PY'
import statistics, sys
o, t, p = ([float(v) for v in a.split()] for a in sys.argv[1:4])
mo, mt, mp = statistics.median(o), statistics.median(t), statistics.median(p)
print(f"median of round medians: detr-tui {mo:.1f} ms, traced {mt:.1f} ms ({(mt / mo - 1) * 100:+.1f}%), "
      f"torch {mp:.1f} ms; detr-tui / torch = {mo / mp:.2f}")
PY
