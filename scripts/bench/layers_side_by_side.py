"""Per layer: detr-tui against onnxruntime, to see which layers make up the difference of side_by_side.sh.

Usage: python scripts/bench/layers_side_by_side.py MODEL [--rounds 3] [--runs 10] [--threads N] [--bin B] [--onnx F]
MODEL as for side_by_side.sh (yolov8n, yolo11s, rtdetr-l, ...). Exports the model as onnx_ultralytics.py does (to
--onnx, or a temporary file), then alternates ROUNDS rounds of `detr-tui bench MODEL --json` (its per-layer times)
and an onnxruntime session with profiling on (CPU provider, THREADS intra-op threads, full graph optimisation), RUNS
timed runs each after one warm-up. onnxruntime's node times are summed per layer by the `model.N` in the node names;
nodes without one (NCHWc layout reorders, the graph's glue) make a row of their own. Prints, per layer, the median
over the rounds of each round's median, and the ratio. A profile adds a little to each node's time: the whole-model
figures of side_by_side.sh are the ones to quote.
"""
import argparse
import collections
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))
ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("model")
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--runs", type=int, default=10)
ap.add_argument("--threads", type=int, default=os.cpu_count())
ap.add_argument("--imgsz", type=int, default=640)
ap.add_argument("--bin", default=os.path.join(root, ".build/release/detr-tui"))
ap.add_argument("--onnx", help="the exported model (written first when missing)")
a = ap.parse_args()

m = re.fullmatch(r"(yolo.*)([nsmblx])", a.model)
yaml, scale = (f"{root}/assets/models/{m.group(1)}.yaml", ["--scale", m.group(2)]) if m else \
    (f"{root}/assets/models/{a.model}.yaml", [])
tmp = tempfile.mkdtemp()
onnx = a.onnx or os.path.join(tmp, a.model + ".onnx")
subprocess.run([sys.executable, os.path.join(here, "onnx_ultralytics.py"), yaml, *scale, "--imgsz", str(a.imgsz),
                "--runs", "1", "--threads", str(a.threads), "--onnx", onnx], check=True, stdout=subprocess.DEVNULL)

import numpy as np  # noqa: E402  (after the export, which imports torch)
import onnxruntime as ort  # noqa: E402


def ort_round():
    """Per-layer medians (ms) of one round of onnxruntime runs, from its profile."""
    o = ort.SessionOptions()
    o.intra_op_num_threads = a.threads
    o.inter_op_num_threads = 1
    o.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    o.enable_profiling = True
    o.profile_file_prefix = os.path.join(tmp, "ort")
    s = ort.InferenceSession(onnx, o, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((1, 3, a.imgsz, a.imgsz), dtype=np.float32)
    for _ in range(a.runs + 1):
        s.run(None, {s.get_inputs()[0].name: x})
    path = s.end_profiling()
    with open(path) as f:
        events = json.load(f)
    os.remove(path)
    per = collections.defaultdict(lambda: collections.defaultdict(float))
    run = -1
    for e in events:
        if e.get("cat") == "Session" and e.get("name") == "model_run":
            run += 1
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time") or run < 1:
            continue
        layer = re.search(r"model\.(\d+)", e["name"])
        per[int(layer.group(1)) if layer else -1][run] += e["dur"] / 1000
    return {k: statistics.median(v.values()) for k, v in per.items()}


def ours_round():
    """Per-layer medians (ms) of one `detr-tui bench --json` and the layers' module names."""
    out = subprocess.run([a.bin, "bench", a.model, "--imgsz", str(a.imgsz), "--runs", str(a.runs), "--threads",
                          str(a.threads), "--json"], check=True, capture_output=True, text=True).stdout
    layers = json.loads(out)["layers"]
    return {int(l["path"].split(".")[1]): l["ms"] for l in layers if l["path"].startswith("model.")}, \
        {int(l["path"].split(".")[1]): l["module"] for l in layers if l["path"].startswith("model.")}


ours, theirs, names = collections.defaultdict(list), collections.defaultdict(list), {}
for r in range(a.rounds):
    o, names = ours_round()
    for k, v in o.items():
        ours[k].append(v)
    for k, v in ort_round().items():
        theirs[k].append(v)
    print(f"round {r + 1}/{a.rounds}: detr-tui {sum(o.values()):.1f} ms, onnxruntime "
          f"{sum(statistics.median(v) for v in theirs.values()):.1f} ms (sums of layers)", file=sys.stderr)

print(f"{a.model} at {a.imgsz}, {a.threads} threads, onnxruntime {ort.__version__}; medians of {a.rounds} rounds "
      f"of {a.runs} runs")
print(f"{'layer':>5}  {'module':<16} {'detr-tui':>9} {'onnxrt':>9} {'ratio':>6}")
tot_o = tot_t = 0.0
for k in sorted(set(ours) | set(theirs)):
    o = statistics.median(ours[k]) if k in ours else 0.0
    t = statistics.median(theirs[k]) if k in theirs else 0.0
    tot_o += o
    tot_t += t
    label = names.get(k, "(no layer)" if k < 0 else "?")
    ratio = f"{o / t:6.2f}" if t > 0 and o > 0 else "     -"
    print(f"{k if k >= 0 else '-':>5}  {label:<16} {o:9.2f} {t:9.2f} {ratio}")
print(f"{'sum':>5}  {'':<16} {tot_o:9.2f} {tot_t:9.2f} {tot_o / tot_t:6.2f}")
