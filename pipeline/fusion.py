"""Late fusion of per-video class scores by (weighted) product (paper 5.3, Tables 3 and 4).

Every score table is (V, C): V videos in one order, C classes in one order, non-negative.
Each table's rows are first normalised to sum 1, so a stream whose scores are sums over 30
frames weighs the same as one holding probabilities; the product is taken in log space with
a small epsilon, so a zero score does not send a row to log(0), and the fused rows are
renormalised to sum 1.

External score files (iDT, Objects) are CSVs supplied by the user:

    video_id,<class name 1>,...,<class name C>
    v_ApplyEyeMakeup_g01_c01,0.91,0.01,...

- the first column is `video_id`, holding the same ids as the pipeline's manifest;
- one column per class, named exactly as the dataset's classes, in any order (matched by
  name); every class must be present and no other column may be;
- one row per test video, each id once; rows for videos outside the evaluated set are
  ignored;
- scores are finite and non-negative (e.g. calibrated probabilities or exponentiated
  classifier margins); each row must have a positive sum and is normalised to sum 1.

The paper does not say how its exponential weights were chosen: the default is equal weights,
and other weights come from the configuration.
"""

from pathlib import Path
from typing import Mapping

import numpy as np

from pipeline import scoring
from pipeline.scoring import VIDEO_ID, read_score_csv

EPSILON = 1e-10


def product_fusion(score_tables):
    """Product of the tables' class scores per video, rows summing to 1 (Table 3)."""
    return weighted_product_fusion(score_tables, np.ones(len(score_tables)))


def weighted_product_fusion(score_tables, weights):
    """prod_i s_i ** w_i per video and class, rows summing to 1 (Table 4); weights positive."""
    weights = np.asarray(weights, dtype=np.float64)
    if len(score_tables) == 0:
        raise ValueError("fusion needs at least one score table")
    if weights.shape != (len(score_tables),):
        raise ValueError(
            f"need one fusion weight per score table: {len(score_tables)} tables, "
            f"weights of shape {weights.shape}"
        )
    if not np.all(np.isfinite(weights) & (weights > 0)):
        raise ValueError(f"fusion weights must be finite and positive, got {weights.tolist()}")
    tables = [_normalised(table, i) for i, table in enumerate(score_tables)]
    shapes = {table.shape for table in tables}
    if len(shapes) > 1:
        raise ValueError(f"score tables to fuse must share one shape (V, C), got {sorted(shapes)}")
    log_fused = sum(w * np.log(table + EPSILON) for w, table in zip(weights, tables))
    fused = np.exp(log_fused - log_fused.max(axis=1, keepdims=True))
    return fused / fused.sum(axis=1, keepdims=True)


def fuse_evaluations(rgb: str | Path, flow: str | Path, external: Mapping[str, str],
                     videolstm_weight: float, idt_weight: float, objects_weight: float):
    """Fuse's scores and accuracies from VideoLSTM's rgb and flow score tables (Table 3) and
    the user's ``external`` score files by name, idt and objects (Table 4): the fused score
    table and {fusion: accuracy}."""
    tables = {"rgb": scoring.read_scores_frame(rgb), "flow": scoring.read_scores_frame(flow)}
    weight = {"videolstm": videolstm_weight, "idt": idt_weight, "objects": objects_weight}
    rgb = tables["rgb"]
    flow = tables["flow"].set_index("video_id").loc[rgb["video_id"]]
    classes = list(rgb.columns[2:])
    labels = rgb["label"].to_numpy()
    fused = product_fusion([rgb[classes].to_numpy(), flow[classes].to_numpy()])
    results = {"videolstm": scoring.accuracy(fused, labels)}
    for name, path in external.items():
        scores = read_external_scores(path, list(rgb["video_id"]), classes)
        results[name] = scoring.accuracy(scores, labels)
        results[f"{name}+videolstm"] = scoring.accuracy(weighted_product_fusion(
            [scores, fused], [weight[name], weight["videolstm"]]), labels)
    if len(external) == 2:
        parts = [read_external_scores(p, list(rgb["video_id"]), classes)
                 for p in external.values()]
        weights = [weight["idt"], weight["objects"]]
        results["idt+objects"] = scoring.accuracy(weighted_product_fusion(parts, weights), labels)
        results["idt+objects+videolstm"] = scoring.accuracy(weighted_product_fusion(
            parts + [fused], weights + [weight["videolstm"]]), labels)
    return scoring.scores_frame(list(rgb["video_id"]), labels, fused, classes), results


def read_external_scores(path, video_ids, class_names):
    """Scores (V, C) from a user's external score CSV, in the order of `video_ids` and
    `class_names`, rows normalised to sum 1 (format in the module docstring)."""
    df = read_score_csv(path, [VIDEO_ID])
    columns = [str(c) for c in df.columns[1:]]
    class_names = [str(c) for c in class_names]
    missing_classes = sorted(set(class_names) - set(columns))
    extra_classes = sorted(set(columns) - set(class_names))
    if missing_classes or extra_classes:
        raise ValueError(
            f"{path}: class columns do not match the dataset's classes; "
            f"missing {missing_classes}, unexpected {extra_classes}"
        )
    df = df.set_index(VIDEO_ID)
    video_ids = [str(v) for v in video_ids]
    missing_videos = [v for v in video_ids if v not in df.index]
    if missing_videos:
        shown = ", ".join(missing_videos[:5])
        raise ValueError(
            f"{path}: no scores for {len(missing_videos)} of {len(video_ids)} videos, "
            f"e.g. {shown}"
        )
    scores = df.loc[video_ids, class_names].to_numpy(dtype=np.float64)
    negative = np.flatnonzero((scores < 0).any(axis=1))
    if negative.size:
        raise ValueError(
            f"{path}: scores must be non-negative; negative scores for videos "
            f"{', '.join(video_ids[i] for i in negative[:5])}"
        )
    zero = np.flatnonzero(scores.sum(axis=1) <= 0)
    if zero.size:
        raise ValueError(
            f"{path}: every video needs a positive score sum to normalise; all-zero rows for "
            f"videos {', '.join(video_ids[i] for i in zero[:5])}"
        )
    return scores / scores.sum(axis=1, keepdims=True)


def _normalised(table, index):
    table = np.asarray(table, dtype=np.float64)
    if table.ndim != 2:
        raise ValueError(f"score table {index} must have shape (V, C), got {table.shape}")
    if not np.all(np.isfinite(table)) or np.any(table < 0):
        raise ValueError(f"score table {index} must hold finite, non-negative scores")
    sums = table.sum(axis=1, keepdims=True)
    if np.any(sums <= 0):
        raise ValueError(
            f"score table {index} has videos whose scores are all zero (rows "
            f"{np.flatnonzero(sums[:, 0] <= 0)[:5].tolist()}); they cannot be normalised"
        )
    return table / sums
