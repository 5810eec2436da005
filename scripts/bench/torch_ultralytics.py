"""PyTorch CPU forward time of an ultralytics model, for comparison with `detr-tui bench MODEL`.

Usage: python scripts/bench/torch_ultralytics.py assets/models/yolov8.yaml [--scale n] [--imgsz 640] [--runs 5] [--threads 2] [--fuse]
Prints the median and min of `runs` timed forward passes (after one warm-up) in eval mode, random init, no grad.
--fuse first folds batch norms into convs and RepConv branches, as ultralytics' predictor does
(detr-tui folds them too).
"""
import statistics
import time

import torch

from bench_model import arguments, build

ap = arguments(__doc__)
ap.add_argument("--fuse", action="store_true")
a = ap.parse_args()
torch.set_num_threads(a.threads)
model = build(a, fuse=a.fuse)
x = torch.rand(1, 3, a.imgsz, a.imgsz)
times = []
with torch.inference_mode():
    model(x)
    for _ in range(a.runs):
        t = time.perf_counter()
        model(x)
        times.append((time.perf_counter() - t) * 1000)
print(f"{a.yaml} {a.scale or ''} imgsz {a.imgsz} threads {a.threads}{' fused' if a.fuse else ''}: median {statistics.median(times):.1f} ms, min {min(times):.1f} ms over {a.runs} runs")
