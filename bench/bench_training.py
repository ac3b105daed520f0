"""Training throughput (steps/s) of ConvALSTM and VideoLSTM beside keras.layers.ConvLSTM2D of
the same size, on random pool5-shaped inputs, with the pipeline's compile settings.

    .venv/bin/python bench/bench_training.py [--hidden 32] [--attention 128] [--dense 64]
        [--batch 8] [--grid 5]

Defaults are the CPU profile of luigi.cfg; --hidden 512 --attention 512 --dense 1024 --grid 7
is paper scale.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def steps_per_second(arch: str, args) -> float:
    """Mean training steps/s over ``args.steps`` steps after two warm-up steps."""
    import keras
    import numpy as np
    from models.registry import build_model
    from models.sizes import ModelSizes
    from pipeline.training.loop import compile_model
    keras.utils.set_random_seed(0)
    shape = (args.grid, args.grid, 512)
    motion = arch == "videolstm"
    model = build_model(arch, 8, shape, ModelSizes(hidden=args.hidden, attention=args.attention,
                                                        dense=args.dense),
                        motion_shape=shape if motion else None)
    compile_model(model, 0.001, 0.9)
    rng = np.random.default_rng(0)
    x = {"features": rng.normal(size=(args.batch, args.length, *shape)).astype("float32")}
    if motion:
        x["motion"] = rng.normal(size=(args.batch, args.length, *shape)).astype("float32")
    y = {"scores": rng.integers(0, 8, (args.batch, args.length))}
    for _ in range(2):
        model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(args.steps):
        model.train_on_batch(x, y)
    return args.steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--attention", type=int, default=128)
    parser.add_argument("--dense", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=30)
    parser.add_argument("--grid", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    rates = {arch: steps_per_second(arch, args) for arch in ("convlstm", "convalstm", "videolstm")}
    print(f"training steps/s, batch {args.batch} x {args.length} frames of "
          f"{args.grid}x{args.grid}x512, hidden {args.hidden}, attention {args.attention}, "
          f"dense {args.dense}, "
          f"{os.cpu_count()} cores")
    print(f"{'model':32s} {'steps/s':>8s} {'x ConvLSTM2D':>13s}")
    names = {"convlstm": "keras ConvLSTM2D", "convalstm": "ConvALSTM (Eq. 1-9)",
             "videolstm": "VideoLSTM (Eq. 1-15)"}
    for arch, rate in rates.items():
        print(f"{names[arch]:32s} {rate:8.2f} {rate / rates['convlstm']:13.2f}")


if __name__ == "__main__":
    main()
