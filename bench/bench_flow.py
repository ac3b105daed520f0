"""Throughput of TV-L1 flow (frame pairs per second) on a synthetic clip, three ways:

(a) naive baseline: one process, cv2.setNumThreads(1), pairs one after another;
(b) one process with OpenCV's own threading (its default thread count);
(c) FlowPool: one single-threaded spawned process per core, the clip's pairs split in chunks.

The clip is a smooth random texture moving by a known (dx, dy) per frame plus Gaussian noise;
the script also checks that (c) equals (a) exactly and prints the mean end-point error.
Usage: .venv/bin/python bench/bench_flow.py [--pairs N --width 320 --height 240 --processes P]
"""

import argparse
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.flow import FlowPool, TVL1Params, dequantize, video_flow  # noqa: E402

SHIFT = (1.5, -0.75)  # content motion per frame in pixels, (dx, dy)


def synthetic_clip(n_frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """(n_frames, height, width, 3) uint8 RGB: a periodic texture shifted by SHIFT per frame."""
    rng = np.random.default_rng(seed)
    texture = gaussian_filter(rng.random((height, width, 3)), (3.0, 3.0, 0.0), mode="wrap")
    texture = (texture - texture.min()) / (texture.max() - texture.min()) * 230 + 12
    spectrum = np.fft.fft2(texture, axes=(0, 1))
    fy = np.fft.fftfreq(height)[:, None, None]
    fx = np.fft.fftfreq(width)[None, :, None]
    frames = []
    for t in range(n_frames):
        phase = np.exp(-2j * np.pi * (fx * SHIFT[0] * t + fy * SHIFT[1] * t))
        frame = np.fft.ifft2(spectrum * phase, axes=(0, 1)).real + rng.normal(0, 2, texture.shape)
        frames.append(np.clip(np.rint(frame), 0, 255).astype(np.uint8))
    return np.stack(frames)


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=24)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--processes", type=int, default=os.cpu_count())
    args = parser.parse_args()

    frames = synthetic_clip(args.pairs + 1, args.height, args.width)
    params = TVL1Params()
    default_threads = cv2.getNumThreads()
    print(f"{args.pairs} pairs of {args.width}x{args.height}, {os.cpu_count()} cores, "
          f"OpenCV {cv2.__version__} (default threads {default_threads})")

    cv2.setNumThreads(1)
    baseline, t_a = timed(lambda: video_flow(frames, params))
    cv2.setNumThreads(default_threads)
    threaded, t_b = timed(lambda: video_flow(frames, params))
    with FlowPool(args.processes) as pool:
        pool.flow_frames(frames[:2, :32, :32], params)  # start the workers before timing
        pooled, t_c = timed(lambda: pool.flow_frames(frames, params))

    rows = [("(a) 1 process, 1 thread", t_a),
            (f"(b) 1 process, {default_threads} OpenCV threads", t_b),
            (f"(c) FlowPool, {args.processes} processes", t_c)]
    print(f"{'method':<36}{'seconds':>9}{'pairs/s':>9}")
    for name, seconds in rows:
        print(f"{name:<36}{seconds:>9.2f}{args.pairs / seconds:>9.2f}")
    print(f"speed-up (c)/(a): {t_a / t_c:.2f}x")

    flow = dequantize(baseline, params.bound)[:, 16:-16, 16:-16]
    epe = np.hypot(flow[..., 0] - SHIFT[0], flow[..., 1] - SHIFT[1]).mean()
    print(f"identical results: (b)=(a) {np.array_equal(threaded, baseline)}, "
          f"(c)=(a) {np.array_equal(pooled, baseline)}; mean end-point error {epe:.3f} px")


if __name__ == "__main__":
    main()
