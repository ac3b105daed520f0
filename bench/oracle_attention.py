"""What would VideoLSTM classify with its attention on the actor? Its top layer and head trained
on oracle attention, on training videos only.

The attention of Eq. 9 is replaced by the oracle's: each frame's map is uniform over the cells
whose centres lie in the actor's box (``attention_formation.actor_cells``), so the model reads
A_t . X_t with A_t on the actor. The rest is VideoLSTM's top layer and head (a ConvLSTM of the
configured size on the standardised RGB pool5, the same per-frame classifier) trained with the
[train] settings on the fit part of the training videos that bench/attention_formation.py
holds back from, and scored on its 32 held-back videos: accuracy, and whether the predicted
class has the right look and the right motion. Against attention_formation's figures for the
same data seed, it tells whether a weak classification comes from the learned attention (the
oracle does much better) or from what follows it (the oracle does no better).

    LUIGI_CONFIG_PATH=<a sweep pair's cfg> .venv/bin/python bench/oracle_attention.py --seeds 5 1005

Needs the dataset's RGB features cached and box annotations for the training videos.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from attention_formation import (actor_cells, epoch_row,  # noqa: E402
                                 split_training_videos)

LOOKS = 4
"""Looks per motion on the synthetic dataset: class k has look k % 4 and motion k // 4."""


def oracle_attention(boxes: np.ndarray, start: int, frames: int, grid: int,
                     frame_hw: tuple[int, int]) -> np.ndarray:
    """(frames, grid, grid) maps, each uniform over the actor's cells of its frame (the tube's
    ``boxes`` begin at frame ``start``), and uniform over the grid where no cell is the actor's."""
    maps = np.full((frames, grid, grid), 1.0 / grid ** 2, np.float32)
    shown = actor_cells(np.asarray(boxes)[:max(frames - start, 0)], grid, frame_hw)
    for t, mask in enumerate(shown, start=start):
        if mask.any():
            maps[t] = mask / mask.sum()
    return maps


def held_back_scores(model, inputs: dict, labels: dict, videos: list[str], segments: int,
                     length: int) -> dict:
    """Accuracy and the share of right looks and right motions on ``videos``."""
    from pipeline import sampling
    predicted = []
    for video in videos:
        windows = sampling.segment_indices(len(inputs[video]), segments, length)
        scores = np.asarray(model.predict_on_batch({"features": inputs[video][windows]})["scores"])
        predicted.append(int(scores.sum(axis=1).mean(axis=0).argmax()))
    predicted, true = np.asarray(predicted), np.asarray([labels[v] for v in videos])
    return {"accuracy": float(np.mean(predicted == true)),
            "look right": float(np.mean(predicted % LOOKS == true % LOOKS)),
            "motion right": float(np.mean(predicted // LOOKS == true // LOOKS))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--held-per-class", type=int, default=4)
    parser.add_argument("--split-seed", type=int, default=12345)
    parser.add_argument("--every", type=int, default=13, help="score every N epochs")
    args = parser.parse_args()
    import keras
    import pandas as pd
    import tasks
    from models.registry import build_model
    from pipeline import config, sampling
    from pipeline.identity import descriptions
    from pipeline.manifest import decode_tubes, read_manifest
    from pipeline.training.loop import compile_model, reseed
    from pipeline.training.source import (FeatureSource, ModelInputs, PreloadedSource,
                                          feature_statistics)
    from pipeline.video import iter_frames
    dataset = config.run().dataset
    manifest = read_manifest(tasks.Manifest(dataset=dataset, split=1).output().path)
    fit, held = split_training_videos(manifest, args.held_per_class, args.split_seed)
    rows = manifest.set_index("video_id")
    labels = {video: int(rows.loc[video, "label_index"]) for video in fit + held}
    section, evaluate = config.train().validate(), config.evaluate().validate()
    with FeatureSource({"rgb": descriptions.feature_shards(dataset, "rgb")},
                       ModelInputs("rgb", "pool5", False)) as shards:
        source = PreloadedSource(shards, fit + held)
    mean, variance = feature_statistics(source, fit)["features"]
    grid = source.shapes()["features"][0]
    inputs = {}
    for video in fit + held:
        frames = source.length(video)
        features = (source.frames(video, np.arange(frames))["features"] - mean) / np.sqrt(variance)
        tube = decode_tubes(rows.loc[video, "tubes"])[0]
        frame_hw = next(iter_frames(rows.loc[video, "path"])).shape[:2]
        attention = oracle_attention(tube["boxes"], tube["start"], frames, grid, frame_hw)
        inputs[video] = (attention[..., None] * features).astype(np.float32)
    table = []
    for seed in args.seeds:
        keras.utils.set_random_seed(seed)
        model = build_model("convlstm", len(set(labels.values())), source.shapes()["features"],
                            config.model().sizes())
        compile_model(model, section.learning_rate, section.rho)
        rng = np.random.default_rng([seed, 1])
        for epoch in range(section.epochs):
            reseed(model, seed * 100003 + epoch)
            order, losses = rng.permutation(len(fit)), []
            for first in range(0, len(order), section.batch_size):
                chosen = [fit[i] for i in order[first:first + section.batch_size]]
                x = np.stack([inputs[v][sampling.random_snippet(len(inputs[v]), section.snippet,
                                                                rng)] for v in chosen])
                y = np.repeat(np.asarray([labels[v] for v in chosen])[:, None], section.snippet,
                              axis=1)
                losses.append(float(model.train_on_batch({"features": x}, {"scores": y},
                                                         return_dict=True)["loss"]))
            if (epoch + 1) % args.every == 0 or epoch + 1 == section.epochs:
                table.append(epoch_row(seed, fit, epoch + 1, losses, held_back_scores(
                    model, inputs, labels, held, evaluate.segments, evaluate.length)))
    print(pd.DataFrame(table).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
