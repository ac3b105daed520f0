"""Evaluation metrics: classification accuracy and action-localization overlap, AP and recall.

Boxes are float (x1, y1, x2, y2) in frame pixels with x2, y2 exclusive; a NaN row is a frame
without a box. A tube is a `Tube(start, boxes)`: boxes (n, 4) for frames start .. start+n-1.
Localization results and annotations are passed as mappings keyed by video id:
`{video: Detection(tube, scores)}` and `{video: GroundTruth(label, tubes)}`.
"""

from typing import Mapping, NamedTuple, Sequence

import numpy as np


class Tube(NamedTuple):
    """Boxes (n, 4) of frames start, start + 1, ...; NaN rows are frames without a box."""

    start: int
    boxes: np.ndarray


class Detection(NamedTuple):
    """A video's single predicted tube and its class scores (C,)."""

    tube: Tube
    scores: np.ndarray


class GroundTruth(NamedTuple):
    """A video's class label index and its annotated tubes (one per actor)."""

    label: int
    tubes: Sequence[Tube]


def box_iou(a, b):
    """Intersection over union of boxes a (..., 4) and b (..., 4), broadcast.

    0 where either box has a NaN coordinate or the union is empty.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape[-1:] != (4,) or b.shape[-1:] != (4,):
        raise ValueError(f"boxes must end in 4 coordinates, got shapes {a.shape} and {b.shape}")
    valid = np.all(np.isfinite(a), axis=-1) & np.all(np.isfinite(b), axis=-1)
    a = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)
    b = np.nan_to_num(b, nan=0.0, posinf=0.0, neginf=0.0)

    def area(box):
        width = np.clip(box[..., 2] - box[..., 0], 0, None)
        return width * np.clip(box[..., 3] - box[..., 1], 0, None)

    inter_w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    inter_h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = inter_w * inter_h
    union = area(a) + area(b) - inter
    ok = valid & (union > 0)
    return np.where(ok, inter / np.where(ok, union, 1.0), 0.0)


def tube_iou(tube_a, tube_b):
    """Spatio-temporal overlap of two tubes, each (start_frame, boxes (n, 4)).

    The mean, over the temporal union of the frames where either tube has a box, of the
    per-frame box IoU, a frame where only one tube has a box counting 0 (Jain et al., "Action
    localization with tubelets from motion", CVPR 2014; van Gemert et al., "APT: Action
    localization proposals from dense trajectories", BMVC 2015). It equals the temporal IoU
    times the mean spatial IoU over the temporal intersection. 0 when neither has a box.
    """
    spans = []
    for start, boxes in (tube_a, tube_b):
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        spans.append((int(start), boxes))
    first = min(start for start, _ in spans)
    last = max(start + len(boxes) for start, boxes in spans)
    aligned = np.full((2, max(last - first, 0), 4), np.nan)
    for i, (start, boxes) in enumerate(spans):
        aligned[i, start - first : start - first + len(boxes)] = boxes
    present = np.all(np.isfinite(aligned), axis=-1)
    union = present[0] | present[1]
    if not union.any():
        return 0.0
    return float(box_iou(aligned[0], aligned[1])[union].mean())


def average_precision(scores, is_true_positive, n_positives):
    """All-point interpolated average precision of a ranked list (PASCAL VOC 2010+).

    As get_PR_curve and xVOCap in the UCF101-24 evaluator of gurkirt/corrected-UCF101-Annots:
    detections are ranked by descending score compared in single precision, as the evaluator
    stores them (scores equal in float32 tie), ties keeping input order (its stable sort);
    recall = cumsum(tp) / n_positives, the precision is made non-increasing from the right, and
    AP is the area under that recall-precision step curve, so positives no detection found
    contribute 0.
    """
    scores = np.asarray(scores, dtype=np.float32).ravel()
    hits = np.asarray(is_true_positive, dtype=bool).ravel()
    if scores.shape != hits.shape:
        raise ValueError(f"{scores.size} scores but {hits.size} true-positive flags")
    return float(average_precisions(scores[:, None], hits[:, None], [n_positives])[0])


def average_precisions(scores, is_true_positive, n_positives) -> np.ndarray:
    """``average_precision`` of every column at once: scores and hits (n, C), n_positives (C,);
    each column's value is bit for bit the one-column value (the same sort, cumulative sums and
    summation order per column), in one pass rather than C (the mAP bootstrap's inner loop)."""
    scores = np.asarray(scores, dtype=np.float32)
    hits = np.asarray(is_true_positive, dtype=bool)
    n_positives = np.asarray(n_positives)
    if scores.ndim != 2 or scores.shape != hits.shape:
        raise ValueError(f"scores {scores.shape} and true-positive flags {hits.shape} must be "
                         "the same (n, C)")
    if n_positives.shape != (scores.shape[1],):
        raise ValueError(f"{n_positives.size} positive counts for {scores.shape[1]} columns")
    if (n_positives < 1).any():
        raise ValueError(f"n_positives must be >= 1, got {n_positives.min()}")
    found = hits.sum(axis=0)
    if (found > n_positives).any():
        column = int(np.argmax(found > n_positives))
        raise ValueError(f"{found[column]} true positives exceed n_positives = "
                         f"{n_positives[column]}")
    order = np.argsort(-scores.T, axis=1, kind="stable")
    true_positives = np.cumsum(np.take_along_axis(hits.T, order, axis=1), axis=1)
    precision = true_positives / np.arange(1, scores.shape[0] + 1)
    interpolated = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
    recall_steps = np.diff(true_positives, prepend=0, axis=1) / n_positives[:, None]
    return np.sum(recall_steps * interpolated, axis=1)


def video_map(detections: Mapping[str, Detection], ground_truth: Mapping[str, GroundTruth],
              classes, iou_threshold):
    """Video mean average precision of single-tube detections at one tube-IoU threshold.

    For each class c in `classes` (indices into the score vectors) every video's detection is
    ranked by its score for c; it is a true positive when its video is labelled c and one of
    its ground-truth tubes overlaps it (`tube_iou`) by more than `iou_threshold` (strictly, as
    the evaluator's get_PR_curve). There are as many positives as ground-truth tubes of class
    c; with one detection per video, each ground-truth tube can be matched at most once. Videos
    without a detection miss their positives. Equal scores (in float32) keep the order of
    `ground_truth`, which is the test list's ("Class/video" as in testlist01.txt, the order in
    which the evaluator collects detections; `localization_eval.ground_truth` keeps the
    manifest's). Returns (mAP over the classes with at least one ground-truth tube,
    {class: AP}, NaN for classes without one).
    """
    if not 0 <= iou_threshold <= 1:
        raise ValueError(f"iou_threshold must be in [0, 1], got {iou_threshold}")
    if not detections:
        raise ValueError("no detections to evaluate")
    unknown = [video for video in detections if video not in ground_truth]
    if unknown:
        raise ValueError(f"detections for videos without ground truth: {unknown[:5]}")
    videos = [video for video in ground_truth if video in detections]
    lengths = {np.asarray(detections[v].scores).shape for v in videos}
    if len(lengths) != 1 or len(next(iter(lengths))) != 1:
        raise ValueError(f"detection scores must be vectors of one length, got shapes {lengths}")
    scores = np.stack([np.asarray(detections[v].scores, dtype=np.float64) for v in videos])
    outside = [c for c in classes if not 0 <= c < scores.shape[1]]
    if outside:
        raise ValueError(f"classes {outside} outside the {scores.shape[1]} detection scores")
    best_overlap = np.array([
        max((tube_iou(detections[v].tube, gt) for gt in ground_truth[v].tubes), default=0.0)
        for v in videos
    ])
    labels = np.array([ground_truth[v].label for v in videos], dtype=np.int64)
    per_class = {}
    for c in classes:
        n_positives = sum(len(gt.tubes) for gt in ground_truth.values() if gt.label == c)
        if n_positives == 0:
            per_class[c] = float("nan")
            continue
        hits = (labels == c) & (best_overlap > iou_threshold)
        per_class[c] = average_precision(scores[:, c], hits, n_positives)
    evaluated = [ap for ap in per_class.values() if not np.isnan(ap)]
    if not evaluated:
        raise ValueError("no class in `classes` has a ground-truth tube")
    return float(np.mean(evaluated)), per_class


def recall_at_iou(detections: Mapping[str, Detection], ground_truth: Mapping[str, GroundTruth],
                  thresholds):
    """Fraction of ground-truth tubes whose overlap with their video's tube exceeds each
    threshold.

    Class-agnostic, as in the paper's Fig. 4a; a video without a detection overlaps 0. A tube
    is recalled at t exactly when it could be a hit of `video_map` at t (overlap > t).
    Returns an array shaped like `thresholds`.
    """
    thresholds = np.asarray(thresholds, dtype=np.float64)
    overlaps = np.array([
        tube_iou(detections[video].tube, gt) if video in detections else 0.0
        for video, annotation in ground_truth.items()
        for gt in annotation.tubes
    ])
    if overlaps.size == 0:
        raise ValueError("ground truth holds no tube")
    return (overlaps[:, None] > thresholds.ravel()[None, :]).mean(axis=0).reshape(thresholds.shape)


def accuracy(scores, labels):
    """Fraction of videos whose highest-scoring class (first on ties) is the label."""
    scores = np.asarray(scores)
    labels = np.asarray(labels)
    if scores.ndim != 2 or labels.shape != (scores.shape[0],) or scores.shape[0] == 0:
        raise ValueError(f"need scores (V, C) and labels (V,) with V >= 1, got {scores.shape} "
                         f"and {labels.shape}")
    return float(np.mean(np.argmax(scores, axis=1) == labels))
