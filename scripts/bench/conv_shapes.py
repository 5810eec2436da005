#!/usr/bin/env python
"""Lists the distinct conv2d shapes that RT-DETR-l and YOLOv8s run at 640x640, as Swift literals for
Sources/Tensor/OpsBenchmark.swift: (model, Cin, Cout, kH, kW, stride, padding, dilation, groups, H, W, count).

Builds each model from its ultralytics YAML (random weights), hooks every nn.Conv2d and records the
input size of one forward pass on a 1x3x640x640 tensor.
"""
import collections

import torch
from ultralytics.nn.tasks import DetectionModel, RTDETRDetectionModel

torch.set_num_threads(1)


def shapes(model):
    seen = collections.Counter()

    def hook(m, inputs, _):
        x = inputs[0]
        seen[(m.in_channels, m.out_channels, *m.kernel_size, m.stride[0], m.padding[0], m.dilation[0], m.groups,
              x.shape[2], x.shape[3])] += 1

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, 640, 640))
    for h in hooks:
        h.remove()
    return seen


for name, model in [("rtdetr-l", RTDETRDetectionModel("rtdetr-l.yaml", verbose=False)),
                    ("yolov8s", DetectionModel("yolov8s.yaml", verbose=False))]:
    for key, count in sorted(shapes(model).items(), key=lambda kv: (-kv[0][8] == -1, kv[0][8], kv[0][0])):
        cin, cout, kh, kw, s, p, d, g, h, w = key
        print(f'    ConvShape("{name}", cin: {cin}, cout: {cout}, k: ({kh}, {kw}), stride: {s}, padding: {p}, '
              f'dilation: {d}, groups: {g}, h: {h}, w: {w}, count: {count}),')
