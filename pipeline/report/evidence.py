"""Per-video evidence behind the report's intervals and the claims: which test videos a model
got right, each localization method's tube overlaps, and the streaming check of Sec. 4."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from pipeline import cache, metrics, scoring
from pipeline.report.claims import RECALL_IOU
from pipeline.localization_eval import VARIANTS
from pipeline.report.stats import bootstrap_interval, replicate_mean_interval


def correct_per_video(scores_csv: str | Path) -> pd.Series:
    """Whether each test video's top-scoring class is its label, indexed by video id."""
    table = scoring.read_scores_frame(scores_csv)
    scores = table.iloc[:, 2:].to_numpy()
    return pd.Series(scores.argmax(axis=1) == table[scoring.LABEL].to_numpy(),
                     index=table[scoring.VIDEO_ID].to_numpy())


def common_videos(series: Mapping[str, pd.Series]) -> list[str]:
    """The test videos every measurement has (videos skipped by one stream drop out of all), in
    the first measurement's order (the test list's for tube evidence: score ties rank in it),
    so that every comparison is made on the same videos."""
    if not series:
        return []
    first, *others = series.values()
    shared = set(first.index).intersection(*(s.index for s in others))
    return [video for video in first.index if video in shared]


def tube_evidence(tube_path: str | Path, truth: Mapping[str, metrics.GroundTruth]
                  ) -> pd.DataFrame:
    """Per ground-truth video, in the order of `truth` (the test list's): label, the overlap of
    its smoothed and not-smoothed tube with each of its ground-truth tubes (columns
    "smoothed 0", "smoothed 1", ..., NaN past its tubes) and its tube class scores (score_0
    ...). A video the shard lacks overlaps 0 and has NaN scores, as in the tables (map.csv and
    recall.csv count its tubes as missed)."""
    rows = []
    with cache.Shard(tube_path) as shard:
        localized = set(shard.videos)
        for video, gt in truth.items():
            row = {"video_id": video, "label": gt.label}
            for name, variant in VARIANTS.items():
                tube = metrics.Tube(0, shard.read(video, variant)) if video in localized else None
                row.update({f"{name} {k}": 0.0 if tube is None else metrics.tube_iou(tube, t)
                            for k, t in enumerate(gt.tubes)})
            if video in localized:
                row.update({f"score_{c}": s for c, s in enumerate(shard.read(video, "scores"))})
            rows.append(row)
    return pd.DataFrame(rows).set_index("video_id")


def overlap_matrix(evidence: pd.DataFrame, variant: str) -> np.ndarray:
    """The (V, K) overlaps of a tube_evidence table's `variant` ("smoothed" or "not smoothed")
    with each video's ground-truth tubes, NaN past a video's tubes."""
    prefix = f"{variant} "
    tubes = sorted(int(c[len(prefix):]) for c in evidence.columns
                   if c.startswith(prefix) and c[len(prefix):].isdigit())
    return evidence[[f"{prefix}{k}" for k in tubes]].to_numpy(np.float64)


def score_matrix(evidence: pd.DataFrame) -> np.ndarray:
    """The (V, C) tube class scores of a tube_evidence table (NaN for a video not localized)."""
    return evidence[[c for c in evidence.columns if c.startswith("score_")]].to_numpy()


def map_at(overlaps, scores, labels, threshold: float = RECALL_IOU) -> float:
    """Video mAP of single-tube detections from per-video arrays, counted as map.csv counts it
    (metrics.video_map): overlaps (V, K) with each ground-truth tube (NaN past a video's
    tubes; (V,) for one tube each), scores (V, C), NaN for a video without a detection, labels
    (V,), rows in test-list order. For each class present, the detected videos ranked by their
    score for it (ties in row order), a hit when labelled so and one of its tubes overlapping
    > threshold, as many positives as ground-truth tubes of the class; the mean over classes.
    A bootstrap over the rows resamples videos, each with all its tubes."""
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    overlaps = np.asarray(overlaps, dtype=np.float64).reshape(len(labels), -1)
    tubes = np.isfinite(overlaps).sum(axis=1)
    best = np.max(np.nan_to_num(overlaps, nan=0.0), axis=1)
    detected = np.all(np.isfinite(scores), axis=1)
    classes = np.unique(labels)
    members = labels[:, None] == classes
    hits = members & (best > threshold)[:, None]
    return float(np.mean(metrics.average_precisions(scores[detected][:, classes],
                                                    hits[detected], tubes @ members)))


def recall_with_interval(overlaps, threshold: float) -> tuple[float, float, float]:
    """Fraction of ground-truth tubes overlapping > threshold (recall.csv's value) with its 95%
    Wilson interval over tubes: overlaps of any shape, NaN where there is no tube, so a video
    with two tubes counts twice; or a list of such arrays, one per replicate, whose mean rate
    has the interval over the same tubes."""
    replicates = [np.asarray(o, dtype=np.float64)
                  for o in (overlaps if isinstance(overlaps, list) else [overlaps])]
    hits = np.stack([o[np.isfinite(o)] > threshold for o in replicates])
    return float(hits.mean()), *replicate_mean_interval(hits)


def map_with_interval(evidence: list[pd.DataFrame], variant: str, threshold: float,
                      resamples: int = 1000) -> tuple[float, float, float]:
    """Video mAP at a threshold (map.csv's value; with one tube evidence table per replicate,
    their mean) with its 95% bootstrap interval over videos, each resampled with all its
    ground-truth tubes."""
    values = [(overlap_matrix(table, variant), score_matrix(table), table["label"].to_numpy())
              for table in evidence]

    def statistic(overlaps, scores, labels):
        return map_at(overlaps, scores, labels, threshold)
    return (float(np.mean([statistic(*v) for v in values])),
            *bootstrap_interval(values, statistic, resamples=resamples))


def streaming_difference(model, source, videos: list[str]) -> float:
    """Largest absolute difference between frame scores (and attention maps) of the model run
    frame by frame as a stream (FrameStepper) and run on each whole video at once (Sec. 4).

    The stream starts from the initial states the whole-sequence run uses (zero, or under
    [model] initial_state = mean those of the mean over the whole video), so that like is
    compared with like: the recurrence frame by frame against the sequence at once."""
    from models.registry import FrameStepper
    from pipeline.training.loop import whole_video
    stepper = FrameStepper(model)
    largest = 0.0
    for video in videos:
        scores, attention = whole_video(model, source, video)
        inputs = source.frames(video, np.arange(source.length(video)))
        states = stepper.initial_states(1, {name: array[None] for name, array in inputs.items()})
        for t in range(len(scores)):
            step_scores, step_attention, states = stepper.step(
                {name: array[t][None] for name, array in inputs.items()}, states)
            largest = max(largest, float(np.abs(np.asarray(step_scores)[0] - scores[t]).max()))
            if attention is not None:
                largest = max(largest, float(np.abs(np.asarray(step_attention)[0]
                                                    - attention[t]).max()))
    return largest
