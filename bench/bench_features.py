"""Feature-extraction throughput (images/s) of VGG-16 pool5+fc7, as ExtractFeatures runs it,
beside a naive baseline: one thread, float32, batch 1.

TensorFlow fixes its thread pools when it starts, so each configuration runs in a fresh child
process started by this script; the ratio to the baseline is the figure we track.

    .venv/bin/python bench/bench_features.py [--size 160] [--images 64] [--batch 16]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

CONFIGS = {
    "naive: 1 thread, float32, batch 1": {"threads": 1, "precision": "float32", "batch": 1},
    "float32, all threads, batch B": {"threads": 0, "precision": "float32", "batch": None},
    "pipeline: mixed_bfloat16, all threads, batch B": {"threads": 0,
                                                       "precision": "mixed_bfloat16",
                                                       "batch": None},
}


def measure(size: int, images: int, batch: int, threads: int, precision: str) -> float:
    """Images/s of one configuration, in this process (called in a child)."""
    import numpy as np
    import tensorflow as tf
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    import keras
    from models import vgg16
    from pipeline import features
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"bench-vgg16-{size}.keras")
    if not os.path.exists(path):
        vgg16.initialise("rgb", 101, size, "none", seed=0).save(path)
    extractor = vgg16.load_extractor(path, precision)
    frames = np.random.default_rng(0).integers(0, 255, (images, 240, 320, 3), dtype=np.uint8)
    features.extract(extractor, iter(frames[:batch]), "rgb", size, batch)
    start = time.perf_counter()
    features.extract(extractor, iter(frames), "rgb", size, batch)
    keras.backend.clear_session()
    return images / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=160, help="network input side (224: paper)")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        setting = json.loads(args.child)
        print(json.dumps(measure(args.size, args.images, **setting)))
        return
    rates = {}
    for name, setting in CONFIGS.items():
        setting = dict(setting, batch=setting["batch"] or args.batch)
        images = args.images if setting["batch"] > 1 else max(8, args.images // 4)
        out = subprocess.run(
            [sys.executable, __file__, "--size", str(args.size), "--images", str(images),
             "--child", json.dumps(setting)],
            check=True, capture_output=True, text=True,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
                     PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
        rates[name] = json.loads(out.stdout.strip().splitlines()[-1])
    baseline = rates[next(iter(CONFIGS))]
    print(f"VGG-16 pool5+fc7 at {args.size}x{args.size}, {os.cpu_count()} cores, "
          f"batch B={args.batch}")
    print(f"{'configuration':50s} {'images/s':>9s} {'x naive':>8s}")
    for name, rate in rates.items():
        print(f"{name:50s} {rate:9.2f} {rate / baseline:8.2f}")


if __name__ == "__main__":
    main()
