#!/usr/bin/env bash
# A Hugging Face real-time DETR (RT-DETR, RT-DETRv2, D-FINE) in detr-tui against transformers, same weights, same
# thread count, alternating rounds so both see the same machine load: ROUNDS rounds of `detr-tui bench DIR` and
# scripts/bench/torch_hf_detr.py DIR (inference mode) with RUNS timed runs each. MODEL is a catalogue id whose config
# is assets/models/<id>.json (e.g. rtdetr-r18vd, dfine-s), a config.json, or a saved directory; a config is built by
# transformers with random init (seed 0) and saved once to a temporary directory, which both sides then open. Prints
# the CPU, each round's medians, the median of the round medians and the ratio detr-tui / transformers (goal <= 1).
#
# Usage: scripts/bench/side_by_side_hf.sh MODEL [ROUNDS] [RUNS]
# Needs a release build (swift build -c release) and python with torch and transformers (PYTHON=...).
# THREADS (default: 2), BIN (default: .build/release/detr-tui) and IMGSZ (default: 640); PEER (default
# scripts/bench/torch_hf_detr.py: any script taking DIR --imgsz --runs --threads and printing "median N ms") and
# GOAL (default 1.00) let side_by_side_deformable.sh run the same rounds.
set -euo pipefail
model_arg=${1:?usage: side_by_side_hf.sh MODEL_DIR|CONFIG.json|CATALOGUE_ID [ROUNDS] [RUNS]}
rounds=${2:-3}
runs=${3:-3}
threads=${THREADS:-2}
imgsz=${IMGSZ:-640}
python=${PYTHON:-python3}
here=$(cd "$(dirname "$0")/../.." && pwd)
peer=${PEER:-"$here/scripts/bench/torch_hf_detr.py"}
goal=${GOAL:-1.00}
bin=${BIN:-"$here/.build/release/detr-tui"}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -d "$model_arg" ]; then
  model=$model_arg
else
  config=$model_arg
  [ -f "$config" ] || config="$here/assets/models/$model_arg.json"
  [ -f "$config" ] || { echo "side_by_side_hf.sh: no directory, config.json or catalogue config named '$model_arg'" >&2; exit 1; }
  model="$tmp/$(basename "$config" .json)"
  "$python" "$here/scripts/bench/torch_hf_detr.py" "$config" --save "$model" >/dev/null 2>&1 \
    || { echo "side_by_side_hf.sh: writing the model failed (run scripts/bench/torch_hf_detr.py $config --save DIR to see why)" >&2; exit 1; }
fi
grep -m1 'model name' /proc/cpuinfo | sed 's/.*: /CPU: /' || true
"$bin" bench "$model" --imgsz "$imgsz" --runs 1 --threads "$threads" 2>/dev/null | sed -n 1,2p
ours=(); traced=(); hf=()
for r in $(seq "$rounds"); do
  json=$("$bin" bench "$model" --imgsz "$imgsz" --runs "$runs" --threads "$threads" --json 2>/dev/null)
  o=$(printf '%s' "$json" | "$python" -c 'import json,sys; print(json.load(sys.stdin)["median_ms"])')
  t=$(printf '%s' "$json" | "$python" -c 'import json,sys; print(json.load(sys.stdin).get("traced_median_ms", 0))')
  h=$("$python" "$peer" "$model" --imgsz "$imgsz" --runs "$runs" --threads "$threads" 2>/dev/null \
      | tail -n 1 | sed -E 's/.*median ([0-9.]+) ms.*/\1/')
  printf 'round %d: detr-tui %.1f ms (traced %.1f), transformers %.1f ms\n' "$r" "$o" "$t" "$h"
  ours+=("$o"); traced+=("$t"); hf+=("$h")
done
"$python" - "$(basename "$model")" "$imgsz" "$threads" "$goal" "${ours[*]}" "${traced[*]}" "${hf[*]}" <<'PY'
import statistics, sys
name, imgsz, threads, goal = sys.argv[1:5]
o, t, h = ([float(v) for v in a.split()] for a in sys.argv[5:8])
mo, mt, mh = (statistics.median(v) for v in (o, t, h))
print(f"{name} at {imgsz}x{imgsz}, {threads} threads, median of {len(o)} round medians: "
      f"detr-tui {mo:.1f} ms, traced {mt:.1f} ms, transformers {mh:.1f} ms")
print(f"detr-tui / transformers = {mo / mh:.2f}; traced: {mt / mh:.2f} (goal <= {goal})")
PY
