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
from pipeline.report.stats import bootstrap_interval, wilson_interval


def correct_per_video(scores_csv: str | Path) -> pd.Series:
    """Whether each test video's top-scoring class is its label, indexed by video id."""
    table = scoring.read_scores_frame(scores_csv)
    scores = table.iloc[:, 2:].to_numpy()
    return pd.Series(scores.argmax(axis=1) == table[scoring.LABEL].to_numpy(),
                     index=table[scoring.VIDEO_ID].to_numpy())


def common_videos(series: Mapping[str, pd.Series]) -> list[str]:
    """The test videos every measurement has (videos skipped by one stream drop out of all),
    sorted, so that every comparison is made on the same videos."""
    shared = set.intersection(*(set(s.index) for s in series.values())) if series else set()
    return sorted(shared)


def tube_evidence(tube_path: str | Path, truth: Mapping[str, metrics.GroundTruth]
                  ) -> pd.DataFrame:
    """Per localized video: label, the best overlap of its smoothed and not-smoothed tube
    with a ground-truth tube, and its tube class scores (columns score_0 ...)."""
    rows = []
    with cache.Shard(tube_path) as shard:
        for video in shard.videos:
            row = {"video_id": video, "label": truth[video].label}
            for name, variant in VARIANTS.items():
                tube = metrics.Tube(0, shard.read(video, variant))
                row[name] = max((metrics.tube_iou(tube, gt) for gt in truth[video].tubes),
                                default=0.0)
            row.update({f"score_{c}": s for c, s in enumerate(shard.read(video, "scores"))})
            rows.append(row)
    return pd.DataFrame(rows).set_index("video_id").sort_index()


def score_matrix(evidence: pd.DataFrame) -> np.ndarray:
    """The (V, C) tube class scores of a tube_evidence table."""
    return evidence[[c for c in evidence.columns if c.startswith("score_")]].to_numpy()


def map_at(overlaps, scores, labels, threshold: float = RECALL_IOU) -> float:
    """Video mAP of single-tube detections from per-video arrays: for each class present, the
    videos ranked by their score for it, a hit when labelled so and overlapping >= threshold,
    as many positives as videos of the class (one tube each); the mean over those classes."""
    overlaps, scores, labels = (np.asarray(a) for a in (overlaps, scores, labels))
    aps = []
    for c in np.unique(labels):
        hits = (labels == c) & (overlaps >= threshold)
        aps.append(metrics.average_precision(scores[:, c], hits, int((labels == c).sum())))
    return float(np.mean(aps))


def recall_with_interval(overlaps, threshold: float) -> tuple[float, float, float]:
    """Fraction of tubes overlapping >= threshold with its 95% Wilson interval; ``overlaps``
    (V,) or one row per replicate (K, V): the replicates' mean, its interval over the V."""
    hits = np.atleast_2d(np.asarray(overlaps)) >= threshold
    return (float(hits.mean()),
            *wilson_interval(round(hits.mean() * hits.shape[1]), hits.shape[1]))


def map_with_interval(evidence: list[pd.DataFrame], variant: str, threshold: float,
                      resamples: int = 1000) -> tuple[float, float, float]:
    """Video mAP at a threshold (the mean over the replicates' tube evidence, one table each)
    with its 95% bootstrap interval over videos."""
    values = [(table[variant].to_numpy(), score_matrix(table), table["label"].to_numpy())
              for table in evidence]

    def statistic(overlaps, scores, labels):
        return map_at(overlaps, scores, labels, threshold)
    return (float(np.mean([statistic(*v) for v in values])),
            *bootstrap_interval(values, statistic, resamples=resamples))


def streaming_difference(model, source, videos: list[str]) -> float:
    """Largest absolute difference between frame scores (and attention maps) of the model run
    frame by frame as a stream (FrameStepper) and run on each whole video at once (Sec. 4)."""
    from models.registry import FrameStepper
    from pipeline.training.loop import whole_video
    stepper = FrameStepper(model)
    largest = 0.0
    for video in videos:
        scores, attention = whole_video(model, source, video)
        inputs = source.frames(video, np.arange(source.length(video)))
        states = stepper.initial_states(1)
        for t in range(len(scores)):
            step_scores, step_attention, states = stepper.step(
                {name: array[t][None] for name, array in inputs.items()}, states)
            largest = max(largest, float(np.abs(np.asarray(step_scores)[0] - scores[t]).max()))
            if attention is not None:
                largest = max(largest, float(np.abs(np.asarray(step_attention)[0]
                                                    - attention[t]).max()))
    return largest
