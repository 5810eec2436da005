#!/usr/bin/env python
"""transformers' speed on a Hugging Face real-time DETR config (the peer of `detr-tui bench` for the catalogue's
rtdetr-*/rtdetr-v2-* entries): the config.json (e.g. assets/models/rtdetr-r18vd.json) built with random init, eval,
inference mode, N threads, one 1x3xSxS input; prints the best and median of the timed runs in ms."""
import argparse
import statistics
import time

import torch
import transformers

ap = argparse.ArgumentParser(description=__doc__)
ap.add_argument("config")
ap.add_argument("--imgsz", type=int, default=640)
ap.add_argument("--runs", type=int, default=5)
ap.add_argument("--threads", type=int, default=2)
a = ap.parse_args()
torch.set_num_threads(a.threads)
cfg = transformers.AutoConfig.from_pretrained(a.config)
model = transformers.AutoModelForObjectDetection.from_config(cfg).eval()
x = torch.rand(1, 3, a.imgsz, a.imgsz)
times = []
with torch.inference_mode():
    model(pixel_values=x)  # warm-up
    for _ in range(a.runs):
        t0 = time.perf_counter()
        model(pixel_values=x)
        times.append((time.perf_counter() - t0) * 1000)
print(f"transformers {cfg.model_type} {a.imgsz}: best {min(times):.1f} ms, median {statistics.median(times):.1f} ms "
      f"({a.runs} runs, {a.threads} threads, torch {torch.__version__})")
