#!/usr/bin/env bash
# detr-tui against PyTorch (ultralytics, fused, inference mode) and onnxruntime (CPU provider, the same fused model
# exported by torch.onnx), all with the same thread count, alternating so that all three see the same machine load:
# ROUNDS rounds of `detr-tui bench MODEL --imgsz 640`, scripts/bench/torch_ultralytics.py and
# scripts/bench/onnx_ultralytics.py with RUNS timed runs each. Prints the CPU, each round's medians, the median of
# the round medians and the ratios detr-tui / PyTorch and detr-tui / onnxruntime.
#
# Usage: scripts/bench/side_by_side.sh MODEL [ROUNDS] [RUNS]    (MODEL: yolov8n/s/m/l/x, yolo11n/s/m/l/x, rtdetr-l, ...)
# Needs a release build (swift build -c release) and python with torch, ultralytics, onnx and onnxruntime
# (PYTHON=...). THREADS (default: nproc, every processor) sets every engine's threads; the model is exported once, to a temporary directory.
# BIN (default: .build/release/detr-tui) names the detr-tui binary, e.g. another build to compare; the environment
# reaches it (DETR_TUI_NO_AVX512=1 runs it on its AVX2 kernels).
# ONNX=1 makes detr-tui run the very .onnx file onnxruntime runs (its ONNX interpreter) instead of its native model.
set -euo pipefail
model=${1:?usage: side_by_side.sh MODEL [ROUNDS] [RUNS]}
rounds=${2:-5}
runs=${3:-5}
threads=${THREADS:-$(nproc)}
python=${PYTHON:-python3}
here=$(cd "$(dirname "$0")/../.." && pwd)
bin=${BIN:-"$here/.build/release/detr-tui"}
case "$model" in
  yolo*[nsmblx]) yaml="$here/assets/models/${model%?}.yaml"; scale=(--scale "${model: -1}") ;;   # yolov8n, yolo11s, ...
  *) yaml="$here/assets/models/$model.yaml"; scale=() ;;
esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
onnx="$tmp/$model.onnx"
median_of() { sed -E 's/.*median ([0-9.]+) ms.*/\1/'; }
"$python" "$here/scripts/bench/onnx_ultralytics.py" "$yaml" "${scale[@]}" --runs 1 --threads "$threads" --onnx "$onnx" \
  >/dev/null 2>&1 || { echo "side_by_side.sh: exporting $model to ONNX failed (run scripts/bench/onnx_ultralytics.py to see why)" >&2; exit 1; }
target=$model
if [ "${ONNX:-0}" = 1 ]; then target=$onnx; echo "detr-tui runs the ONNX export ($model.onnx) through its interpreter"; fi
"$bin" bench "$target" --imgsz 640 --runs 1 --threads "$threads" 2>/dev/null | sed -n 1,2p
ours=(); traced=(); torch=(); ort=()
for r in $(seq "$rounds"); do
  json=$("$bin" bench "$target" --imgsz 640 --runs "$runs" --threads "$threads" --json 2>/dev/null)
  o=$(printf '%s' "$json" | "$python" -c 'import json,sys; print(json.load(sys.stdin)["median_ms"])')
  t=$(printf '%s' "$json" | "$python" -c 'import json,sys; print(json.load(sys.stdin).get("traced_median_ms", 0))')
  p=$("$python" "$here/scripts/bench/torch_ultralytics.py" "$yaml" "${scale[@]}" --runs "$runs" --threads "$threads" --fuse 2>/dev/null | tail -n 1 | median_of)
  x=$("$python" "$here/scripts/bench/onnx_ultralytics.py" "$yaml" "${scale[@]}" --runs "$runs" --threads "$threads" --onnx "$onnx" 2>/dev/null | tail -n 1 | median_of)
  printf 'round %d: detr-tui %.1f ms (traced %.1f), torch %.1f ms, onnxruntime %.1f ms\n' "$r" "$o" "$t" "$p" "$x"
  ours+=("$o"); traced+=("$t"); torch+=("$p"); ort+=("$x")
done
"$python" - "$model" "$threads" "${ours[*]}" "${traced[*]}" "${torch[*]}" "${ort[*]}" <<'PY'
import statistics, sys
model, threads = sys.argv[1], sys.argv[2]
o, t, p, x = ([float(v) for v in a.split()] for a in sys.argv[3:7])
mo, mt, mp, mx = (statistics.median(v) for v in (o, t, p, x))
print(f"{model} at 640x640, {threads} threads, median of {len(o)} round medians: detr-tui {mo:.1f} ms, "
      f"traced {mt:.1f} ms ({(mt / mo - 1) * 100:+.1f}%), torch {mp:.1f} ms, onnxruntime {mx:.1f} ms")
print(f"detr-tui / torch = {mo / mp:.2f}; detr-tui / onnxruntime = {mo / mx:.2f}; "
      f"traced: {mt / mp:.2f} and {mt / mx:.2f}")
PY
