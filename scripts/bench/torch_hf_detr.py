#!/usr/bin/env python
"""transformers' speed on a Hugging Face real-time DETR (the peer of `detr-tui bench` for the catalogue's
rtdetr-*/rtdetr-v2-*/dfine-* entries): a config.json (e.g. assets/models/dfine-s.json) built with random init, or a
saved directory (config.json + model.safetensors) loaded with its weights; eval, inference mode, N threads, one
1x3xSxS input; prints the best and median of the timed runs in ms.
`--save DIR`: build the config with random init (seed 0), save_pretrained it to DIR and exit (both sides then run the
same weights: scripts/bench/side_by_side_hf.sh)."""
import argparse
import os
import statistics
import time

import torch
import transformers

ap = argparse.ArgumentParser(description=__doc__)
ap.add_argument("config", help="a config.json, or a directory saved by save_pretrained")
ap.add_argument("--imgsz", type=int, default=640)
ap.add_argument("--runs", type=int, default=5)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--save", default=None, help="write the random-init model to this directory and exit")
a = ap.parse_args()
torch.set_num_threads(a.threads)
if os.path.isdir(a.config):
    model = transformers.AutoModelForObjectDetection.from_pretrained(a.config).eval()
    cfg = model.config
else:
    cfg = transformers.AutoConfig.from_pretrained(a.config)
    torch.manual_seed(0)
    model = transformers.AutoModelForObjectDetection.from_config(cfg).eval()
if a.save:
    model.save_pretrained(a.save, safe_serialization=True)
    raise SystemExit(0)
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
