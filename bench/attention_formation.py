"""Does VideoLSTM's motion attention form? Trains it on cached features of the configured
dataset, on a fit part of the TRAINING videos, once per training seed, and follows the
attention over epochs on the held-back validation part of the training videos: its mass on
the actor's cells, the tube recall at IoU 0.2 of the Sec. 4 box procedure, and accuracy.
Test videos are never read, so a training choice can be decided on what it prints.

    LUIGI_CONFIG_PATH=... .venv/bin/python bench/attention_formation.py --seeds 0 1 2

--fit-per-class N trains on N videos of each class only: run it at a few N for a learning
curve (does the attention form with more training videos?).

Needs the dataset's flow and features cached (e.g. by the embedded ReproducePaper) and box
annotations for the training videos (the synthetic dataset has them). [train] and [model]
settings are the config's; --learning-rate overrides [train] learning_rate.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RECALL_IOU = 0.2


def split_training_videos(manifest, per_class: int, seed: int,
                          fit_per_class: int | None = None) -> tuple[list[str], list[str]]:
    """(fit, validation) video ids: ``per_class`` training videos of each class held back, and
    of the rest all, or ``fit_per_class`` of each class (a learning curve's smaller steps)."""
    train = manifest[manifest["split"] == "train"]
    rng = np.random.default_rng(seed)
    held, fit = set(), set()
    for _, group in train.groupby("label_index"):
        videos = rng.permutation(group["video_id"].to_numpy())
        if fit_per_class is not None and fit_per_class > len(videos) - per_class:
            raise ValueError(f"--fit-per-class {fit_per_class}: class {group.name} has only "
                             f"{len(videos) - per_class} training videos besides the held-back")
        held.update(videos[:per_class])
        fit.update(videos[per_class:per_class + fit_per_class] if fit_per_class is not None
                   else videos[per_class:])
    return ([v for v in train["video_id"] if v in fit],
            [v for v in train["video_id"] if v in held])


def actor_cells(boxes: np.ndarray, grid: int, frame_hw: tuple[int, int]) -> np.ndarray:
    """(T, grid, grid) masks of the cells whose centres lie in each frame's box (T, 4)
    x1, y1, x2, y2 in frame pixels."""
    centre_y = (np.arange(grid) + 0.5) * frame_hw[0] / grid
    centre_x = (np.arange(grid) + 0.5) * frame_hw[1] / grid
    return np.stack([((centre_y >= y1) & (centre_y < y2))[:, None]
                     & ((centre_x >= x1) & (centre_x < x2))[None, :]
                     for x1, y1, x2, y2 in boxes])


def actor_mass(attention: np.ndarray, boxes: np.ndarray, frame_hw: tuple[int, int]) -> float:
    """Mean over frames of the attention (T, N, N) on the actor's cells (``actor_cells``)."""
    masks = actor_cells(boxes, attention.shape[1], frame_hw)
    return float(np.mean([a[m].sum() for a, m in zip(attention, masks)]))


def validate(model, source, manifest, videos: list[str], segments: int, length: int) -> dict:
    """Accuracy, mean actor mass and tube recall at RECALL_IOU on ``videos``."""
    from pipeline import localization, metrics
    from pipeline.manifest import decode_tubes
    from pipeline.training.loop import segment_scores, whole_video
    from pipeline.video import iter_frames
    rows = manifest.set_index("video_id")
    correct, masses, recalled = [], [], []
    for video in videos:
        row = rows.loc[video]
        scores = segment_scores(model, source, video, segments, length)
        correct.append(int(np.argmax(scores) == row["label_index"]))
        _, attention = whole_video(model, source, video)
        tube = decode_tubes(row["tubes"])[0]
        frame_hw = next(iter_frames(row["path"])).shape[:2]
        boxes = np.asarray(tube["boxes"])[:len(attention)]
        masses.append(actor_mass(attention[tube["start"]:][:len(boxes)], boxes, frame_hw))
        found = localization.localize(attention, frame_hw, 100.0, 8.0, 0.3)
        recalled.append(metrics.tube_iou(metrics.Tube(0, found),
                                         metrics.Tube(tube["start"], tube["boxes"])) > RECALL_IOU)
    return {"accuracy": float(np.mean(correct)), "actor mass": float(np.mean(masses)),
            f"recall@{RECALL_IOU}": float(np.mean(recalled))}


def epoch_row(seed: int, fit: list[str], epoch: int, losses: list[float], scores: dict) -> dict:
    """A row of a screen's table, printed as it comes: the run, the epoch's mean training loss
    and the held-back ``scores``."""
    row = {"seed": seed, "fit videos": len(fit), "epoch": epoch, "loss": float(np.mean(losses)),
           **scores}
    print(row, flush=True)
    return row


def run_seed(seed: int, args) -> list[dict]:
    """One training run: a row per validated epoch."""
    import keras
    import tasks
    from models.registry import build_model
    from pipeline import config
    from pipeline.identity import descriptions
    from pipeline.manifest import read_manifest
    from pipeline.training.loader import training_batches
    from pipeline.training.loop import compile_model, reseed
    from pipeline.training.source import FeatureSource, feature_statistics
    dataset = config.run().dataset
    manifest = read_manifest(tasks.Manifest(dataset=dataset, split=1).output().path)
    fit, held = split_training_videos(manifest, args.held_per_class, args.split_seed,
                                      args.fit_per_class)
    labels = dict(zip(manifest["video_id"], manifest["label_index"].astype(int)))
    inputs = descriptions.model_inputs("videolstm", "rgb", "motion")
    section, evaluate = config.train().validate(), config.evaluate().validate()
    rows = []
    with FeatureSource({s: descriptions.feature_shards(dataset, s) for s in ("flow", "rgb")},
                       inputs) as source:
        shapes = source.shapes()
        keras.utils.set_random_seed(seed)
        model = build_model("videolstm", len(set(labels.values())), shapes["features"],
                            config.model().sizes(), "motion", shapes["motion"],
                            feature_statistics(source, fit))
        compile_model(model, args.learning_rate or section.learning_rate, section.rho)
        rng = np.random.default_rng([seed, 1])
        for epoch in range(section.epochs):
            reseed(model, seed * 100003 + epoch)
            losses = [float(model.train_on_batch(x, y, return_dict=True)["loss"]) for x, y in
                      training_batches(source, fit, [labels[v] for v in fit],
                                       section.batch_size, section.snippet, rng)]
            if (epoch + 1) % args.every == 0 or epoch + 1 == section.epochs:
                rows.append(epoch_row(seed, fit, epoch + 1, losses, validate(
                    model, source, manifest, held, evaluate.segments, evaluate.length)))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--held-per-class", type=int, default=4)
    parser.add_argument("--split-seed", type=int, default=12345)
    parser.add_argument("--fit-per-class", type=int,
                        help="train on this many videos of each class (default: all not held back)")
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--every", type=int, default=5, help="validate every N epochs")
    args = parser.parse_args()
    import pandas as pd
    rows = [row for seed in args.seeds for row in run_seed(seed, args)]
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
