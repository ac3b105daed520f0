"""Evaluation of the localization stage (paper 5.4, Fig. 4): video mAP at IoU thresholds and
recall vs IoU, with and without temporal smoothing, from tube shards and the manifest's boxes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import cache, metrics
from pipeline.manifest import decode_tubes

VARIANTS = {"smoothed": "smooth", "not smoothed": "raw"}
LOCALIZED = {"VideoLSTM": ("videolstm", "motion"), "ALSTM": ("alstm", "appearance")}
"""The two attention models of Fig. 4a: ours, and Sharma et al.'s ALSTM (appearance)."""
BASELINE = "Motion saliency"
"""The non-learned baseline printed beside them (MotionSaliencyTubes)."""
IOU_THRESHOLDS = (0.05, 0.1, 0.125, 0.2, 0.3, 0.4, 0.5)
"""Video mAP thresholds: Fig. 4b's range, with 0.125 where it compares with Yu et al."""
RECALL_THRESHOLDS = tuple(np.round(np.arange(0.05, 0.80, 0.05), 2))


def ground_truth(manifest: pd.DataFrame) -> dict[str, metrics.GroundTruth]:
    """The annotated test videos: label and ground-truth tubes."""
    test = manifest[(manifest["split"] == "test") & (manifest["tubes"] != "")]
    return {row.video_id: metrics.GroundTruth(int(row.label_index), [
        metrics.Tube(tube["start"], np.asarray(tube["boxes"], np.float64))
        for tube in decode_tubes(row.tubes)]) for row in test.itertuples()}


def detections(shard: cache.Shard, variant: str) -> dict[str, metrics.Detection]:
    """One detection per localized video: its raw or smoothed tube and tube class scores."""
    return {video: metrics.Detection(metrics.Tube(0, shard.read(video, variant)),
                                     shard.read(video, "scores")) for video in shard.videos}


def evaluate(tube_path: str, truth: dict[str, metrics.GroundTruth],
             iou_thresholds, recall_thresholds) -> dict[str, dict[str, list[float]]]:
    """{variant: {"map": [...per IoU threshold], "recall": [...per recall threshold]}}."""
    classes = sorted({gt.label for gt in truth.values()})
    results = {}
    with cache.Shard(tube_path) as shard:
        for name, variant in VARIANTS.items():
            found = detections(shard, variant)
            results[name] = {
                "map": [metrics.video_map(found, truth, classes, t)[0] for t in iou_thresholds],
                "recall": [float(r) for r in metrics.recall_at_iou(found, truth,
                                                                    recall_thresholds)]}
    return results


def write_tables(results: dict, iou_thresholds, recall_thresholds, folder: str | Path) -> None:
    """map.csv and recall.csv (one column per method and variant) and metrics.json."""
    folder = Path(folder)
    columns = {f"{method}, {variant}": values for method, variants in results.items()
               for variant, values in variants.items()}
    pd.DataFrame({"iou": iou_thresholds, **{k: v["map"] for k, v in columns.items()}}).to_csv(
        folder / "map.csv", index=False)
    pd.DataFrame({"iou": recall_thresholds,
                  **{k: v["recall"] for k, v in columns.items()}}).to_csv(
        folder / "recall.csv", index=False)
    (folder / "metrics.json").write_text(json.dumps(results, indent=2) + "\n")


def attention_strip(tube_path: str, manifest: pd.DataFrame, sigma: float, path: str | Path,
                    title: str, frames_shown: int = 6) -> Path:
    """A Fig. 3-style strip of the first localized video: frames with the attention saliency,
    the smoothed predicted box (green) and the ground truth (yellow)."""
    from pipeline.report import figures
    from pipeline.localization import saliency_map
    from pipeline.video import read_frames
    with cache.Shard(tube_path) as shard:
        video = shard.videos[0]
        attention = shard.read(video, "attention").astype(np.float32)
        boxes = shard.read(video, "smooth")
    row = manifest.set_index("video_id").loc[video]
    frames = read_frames(row["path"])
    shown = np.linspace(0, len(attention) - 1, frames_shown).round().astype(int)
    truth = np.full((len(frames), 4), np.nan)
    for tube in decode_tubes(row["tubes"]):
        boxes_gt = np.asarray(tube["boxes"], np.float64)
        truth[tube["start"]:tube["start"] + len(boxes_gt)] = boxes_gt
    height, width = frames.shape[1:3]
    saliency = np.stack([saliency_map(attention[t], (height, width), sigma) for t in shown])
    return Path(figures.attention_strip(frames[shown], saliency, boxes[shown], truth[shown],
                                        path, title, frame_numbers=shown))
