"""Hugging Face transformers' CPU forward time of Deformable DETR, for comparison with `detr-tui bench DIR`.

Usage: python scripts/bench/transformers_deformable.py DIR --save            # write the model to DIR
       python scripts/bench/transformers_deformable.py DIR [--imgsz 640] [--runs 5] [--threads 2]
--save writes the full-size multi-scale model (ResNet-50 backbone, 4 feature levels, 300 queries, 6 + 6 layers)
with its default random init (seeded) as save_pretrained does (config.json + model.safetensors), the layout
`detr-tui bench DIR` opens. Without it, times DeformableDetrForObjectDetection from DIR: the median and min of
`runs` timed forward passes (after one warm-up) in eval mode, no grad, on an imgsz x imgsz input.
"""
import argparse
import os
import statistics
import sys
import time

import torch

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("dir")
ap.add_argument("--save", action="store_true")
ap.add_argument("--imgsz", type=int, default=640)
ap.add_argument("--runs", type=int, default=5)
ap.add_argument("--threads", type=int, default=2)
a = ap.parse_args()
torch.set_num_threads(a.threads)

from transformers import DeformableDetrForObjectDetection  # noqa: E402

if a.save:
    # The golden-file generator's full-size multi-scale configuration, without its perturbation (the default init).
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures"))
    from gen_deformable import build_config

    torch.manual_seed(0)
    model = DeformableDetrForObjectDetection(build_config("multi-scale", small=False)).eval()
    model.save_pretrained(a.dir)
    print(f"{sum(p.numel() for p in model.parameters())} parameters -> {a.dir}")
    sys.exit(0)

model = DeformableDetrForObjectDetection.from_pretrained(a.dir).eval()
x = torch.rand(1, 3, a.imgsz, a.imgsz)
mask = torch.ones(1, a.imgsz, a.imgsz, dtype=torch.long)
times = []
with torch.inference_mode():
    model(pixel_values=x, pixel_mask=mask)
    for _ in range(a.runs):
        t = time.perf_counter()
        model(pixel_values=x, pixel_mask=mask)
        times.append((time.perf_counter() - t) * 1000)
print(f"deformable-detr {a.dir} imgsz {a.imgsz} threads {a.threads}: median {statistics.median(times):.1f} ms, "
      f"min {min(times):.1f} ms over {a.runs} runs")
