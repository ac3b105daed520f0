"""How far OpenCV's TV-L1 stops from the converged flow at each stopping threshold, and its cost.

    .venv/bin/python bench/flow_convergence.py MANIFEST.parquet [--videos 8]

Runs on training videos only (the first of each class in the manifest, the Manifest task's
output), never on test videos. The reference is OpenCV's TV-L1 at its own defaults (5 scales, 5
warps) run to convergence (epsilon 0.001). Each candidate runs at the embedded default's 3 scales
and 3 warps with stopping threshold epsilon (the RMS flow update per iteration, pixels, below
which an iteration loop stops). Prints, per epsilon, seconds per pair on one thread and the mean
end-point error to the reference over all pixels and over moving pixels (reference motion of at
least MOVING pixels), and picks by the rule below.

Rule, written before the figures: the largest epsilon whose moving-pixel error exceeds the
current default's (epsilon 0.01) by at most one quantization level of the stored flow
(2 x bound / 255 pixels): a difference the uint8 flow images the convnet reads can barely hold.
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np
import pandas as pd

from pipeline.flow.tvl1 import TVL1Params, _decode_gray, tvl1

CANDIDATES = (0.01, 0.02, 0.03, 0.05, 0.1)
"""Stopping thresholds tried, pixels; 0.01 is OpenCV's default and the current setting."""
MOVING = 1.0
"""Reference motion, pixels, from which a pixel counts as moving."""


def flows(videos: list[np.ndarray], params: TVL1Params) -> tuple[np.ndarray, float]:
    """Every consecutive pair's flow (P, H, W, 2) and the seconds per pair on one thread."""
    start = time.perf_counter()
    out = np.stack([tvl1(v[i], v[i + 1], params) for v in videos for i in range(len(v) - 1)])
    return out, (time.perf_counter() - start) / len(out)


def errors(flow: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """Mean end-point error to the reference over all pixels and over moving ones, pixels."""
    epe = np.linalg.norm(flow - reference, axis=-1)
    moving = np.linalg.norm(reference, axis=-1) >= MOVING
    return float(epe.mean()), float(epe[moving].mean())


def screen(videos: list[np.ndarray], bound: float) -> tuple[pd.DataFrame, float]:
    """The figures of every candidate and the epsilon the rule picks."""
    reference, _ = flows(videos, TVL1Params(epsilon=0.001, bound=bound))
    rows = []
    for epsilon in CANDIDATES:
        flow, seconds = flows(videos, TVL1Params(nscales=3, warps=3, epsilon=epsilon,
                                                 bound=bound))
        mean, moving = errors(flow, reference)
        rows.append({"epsilon": epsilon, "s/pair": round(seconds, 4), "EPE all px": round(mean, 3),
                     "EPE moving px": round(moving, 3)})
    table = pd.DataFrame(rows)
    return table, pick(table, bound)


def pick(table: pd.DataFrame, bound: float) -> float:
    """The rule: the largest epsilon whose moving-pixel error is at most the first row's (the
    current setting's) plus one uint8 level of flow clipped to +-bound pixels."""
    allowed = table["EPE moving px"].iloc[0] + 2 * bound / 255
    return float(table[table["EPE moving px"] <= allowed]["epsilon"].max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest")
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--bound", type=float, default=20.0)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    manifest = pd.read_parquet(args.manifest)
    train = manifest[manifest["split"] == "train"].drop_duplicates("label_index")
    videos = [_decode_gray(path) for path in train["path"][:args.videos]]
    table, chosen = screen(videos, args.bound)
    print(f"{len(videos)} training videos, {sum(len(v) - 1 for v in videos)} pairs; reference: "
          f"5 scales, 5 warps, epsilon 0.001; moving: reference motion >= {MOVING} px")
    print(table.to_string(index=False))
    print(f"rule's pick: epsilon {chosen}")


if __name__ == "__main__":
    main()
