"""Every field of a Hugging Face config.json set to odd values, one at a time, and the model run on each.

For each field of DIR/config.json (nested ones too) and each of 20 odd values (0, -1, huge, NaN, null, a string, a
list, ...), writes a copy of DIR with that one change (the weights linked, not copied), runs
`detr-tui run COPY --image IMAGE --imgsz 64` (or `info` with --info) and reports every run that ends in a signal
or a timeout instead of an answer or an error. A clear error is the expected outcome for most values.

Usage: python scripts/fuzz/hf_config_fields.py DIR [--bin .build/release/detr-tui] [--image IMG] [--info]
e.g. for d in Tests/Fixtures/hfdetr/* Tests/Fixtures/deformable/two-stage; do python scripts/fuzz/hf_config_fields.py $d; done
"""
import argparse
import json
import os
import subprocess
import tempfile

VALUES = [0, -1, 1, 2, 3, 7, 1000000, 2**40, -2**40, 0.0, -0.5, 1e30, float("nan"), None, "x", [], [0], [-1, 2], {}, True]


def fields(d, prefix=()):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from fields(v, prefix + (k,))
        yield prefix + (k,)


def main():
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--bin", default=os.path.join(here, ".build/release/detr-tui"))
    ap.add_argument("--image", default=os.path.join(here, "Tests/Fixtures/predict/coffee.png"))
    ap.add_argument("--info", action="store_true", help="run `info` (the shape pass) instead of a forward pass")
    a = ap.parse_args()
    src = os.path.abspath(a.dir)
    base = json.load(open(os.path.join(src, "config.json")))
    runs = bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for path in fields(base):
            for value in VALUES:
                cfg = json.loads(json.dumps(base))
                d = cfg
                for k in path[:-1]:
                    d = d[k]
                d[path[-1]] = value
                dst = os.path.join(tmp, "model")
                os.makedirs(dst, exist_ok=True)
                for f in os.listdir(dst):
                    os.remove(os.path.join(dst, f))
                for f in os.listdir(src):
                    if f not in ("config.json", "expected.safetensors"):
                        os.symlink(os.path.join(src, f), os.path.join(dst, f))
                with open(os.path.join(dst, "config.json"), "w") as fh:
                    json.dump(cfg, fh)
                cmd = [a.bin, "info", dst, "--imgsz", "64"] if a.info else [a.bin, "run", dst, "--image", a.image, "--imgsz", "64"]
                runs += 1
                try:
                    rc = subprocess.run(cmd, capture_output=True, timeout=60, env=dict(os.environ, SWIFT_BACKTRACE="enable=no")).returncode
                except subprocess.TimeoutExpired:
                    rc = "timeout"
                if rc not in (0, 1, 64):
                    bad += 1
                    print(f"CRASH ({rc}): {'.'.join(map(str, path))} = {value!r}")
    print(f"{src}: {runs} runs, {bad} crashes or timeouts")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
