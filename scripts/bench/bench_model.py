"""What torch_ultralytics.py and onnx_ultralytics.py share: their arguments and the model they time."""
import argparse


def arguments(doc):
    """The parser of both scripts: the YAML, --scale, --imgsz, --runs and --threads."""
    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("yaml")
    ap.add_argument("--scale")
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    return ap


def build(a, fuse):
    """The ultralytics model of a.yaml (a.scale) in eval mode with random init; fuse folds batch norms into convs
    and RepConv branches, as ultralytics' predictor does (detr-tui folds them too)."""
    from ultralytics.nn.tasks import DetectionModel, RTDETRDetectionModel, yaml_model_load

    cfg = yaml_model_load(a.yaml)
    if a.scale:
        cfg["scale"] = a.scale
    cls = RTDETRDetectionModel if cfg["head"][-1][2] == "RTDETRDecoder" else DetectionModel
    model = cls(cfg, verbose=False).eval()
    return model.fuse(verbose=False) if fuse else model
