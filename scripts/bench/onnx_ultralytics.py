"""onnxruntime CPU forward time of an ultralytics model, for comparison with `detr-tui bench MODEL`.

Usage: python scripts/bench/onnx_ultralytics.py assets/models/yolov8.yaml [--scale n] [--imgsz 640] [--runs 5]
           [--threads 2] --onnx MODEL.onnx
Builds the model as scripts/bench/torch_ultralytics.py does (random init, batch norms fused, eval mode), exports it
with torch.onnx to --onnx when that file does not exist yet (so that rounds reuse one export), then times `runs`
onnxruntime passes (CPU provider, `threads` intra-op threads, one inter-op thread, full graph optimisation) after
one warm-up. Prints the median and min in the same form as torch_ultralytics.py.
"""
import os
import statistics
import time

import numpy as np
import onnxruntime as ort

from bench_model import arguments, build

ap = arguments(__doc__)
ap.add_argument("--onnx", required=True, help="the exported model (written first when missing)")
a = ap.parse_args()

if not os.path.exists(a.onnx):
    import torch

    model = build(a, fuse=True)
    for m in model.modules():  # the heads return only the inference output, as ultralytics' exporter sets them
        if hasattr(m, "export"):
            m.export = True
            m.format = "onnx"
    x = torch.rand(1, 3, a.imgsz, a.imgsz)
    tmp = a.onnx + ".part"
    with torch.no_grad():
        model(x)
        torch.onnx.export(model, (x,), tmp, opset_version=17, input_names=["images"], output_names=["output0"],
                          dynamo=False)
    os.replace(tmp, a.onnx)

opts = ort.SessionOptions()
opts.intra_op_num_threads = a.threads
opts.inter_op_num_threads = 1
opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
session = ort.InferenceSession(a.onnx, opts, providers=["CPUExecutionProvider"])
name = session.get_inputs()[0].name
x = np.random.default_rng(0).random((1, 3, a.imgsz, a.imgsz), dtype=np.float32)
session.run(None, {name: x})
times = []
for _ in range(a.runs):
    t = time.perf_counter()
    session.run(None, {name: x})
    times.append((time.perf_counter() - t) * 1000)
print(f"{a.yaml} {a.scale or ''} imgsz {a.imgsz} threads {a.threads} onnxruntime {ort.__version__}: "
      f"median {statistics.median(times):.1f} ms, min {min(times):.1f} ms over {a.runs} runs")
