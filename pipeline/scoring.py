"""Video-level scores from frame-level predictions, accuracy, and the per-video score table (5.2).

The score table is a CSV with header `video_id,label,<class name 1>,...,<class name C>`: one
row per test video, its integer label (index into the class columns, 0-based) and its score
for every class. Evaluate writes it and Fuse reads it.
"""

import csv
from pathlib import Path

import numpy as np
import pandas as pd

VIDEO_ID = "video_id"
LABEL = "label"
HELD_OUT = "heldout_test_accuracy"
"""Training-history column of the per-epoch accuracy on the test split: shown, never used to
pick a model or an epoch."""
CURVES_REPLICATE = 0
"""The replicate whose training curves the report draws: only its trainings score the test
split after every epoch (``HELD_OUT``), about a tenth of a recurrent model's training time."""


def video_scores(frame_scores):
    """Scores (C,) of one video from frame scores (n_segments, length, C) (paper 5.2).

    The frame-level class predictions are summed over time within each segment, then the
    segment scores are averaged.
    """
    frame_scores = np.asarray(frame_scores, dtype=np.float64)
    if frame_scores.ndim != 3:
        raise ValueError(
            f"frame scores must have shape (n_segments, length, C), got {frame_scores.shape}"
        )
    return frame_scores.sum(axis=1).mean(axis=0)


def accuracy(video_scores, labels):
    """Fraction of videos whose highest-scoring class is their label; ties go to the lower index."""
    video_scores = np.asarray(video_scores)
    labels = np.asarray(labels)
    if video_scores.ndim != 2 or labels.shape != (video_scores.shape[0],):
        raise ValueError(
            f"need scores (V, C) and labels (V,), got {video_scores.shape} and {labels.shape}"
        )
    if labels.size == 0:
        raise ValueError("accuracy of zero videos is undefined")
    return float(np.mean(np.argmax(video_scores, axis=1) == labels))


def mean_over_splits(accuracies):
    """Mean accuracy over dataset splits (HMDB51 reports the mean of its 3 splits, paper 5.1)."""
    accuracies = np.asarray(accuracies, dtype=np.float64)
    if accuracies.ndim != 1 or accuracies.size == 0:
        raise ValueError(f"need a non-empty list of split accuracies, got shape {accuracies.shape}")
    return float(accuracies.mean())


def scores_frame(video_ids, labels, scores, class_names):
    """The per-video score table: columns video_id, label, then one column per class name."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    video_ids = [str(v) for v in video_ids]
    class_names = [str(c) for c in class_names]
    if scores.shape != (len(video_ids), len(class_names)) or labels.shape != (len(video_ids),):
        raise ValueError(
            f"need {len(video_ids)} video ids, labels of shape ({len(video_ids)},) and scores of "
            f"shape ({len(video_ids)}, {len(class_names)}); got labels {labels.shape} and "
            f"scores {scores.shape}"
        )
    df = pd.DataFrame(scores, columns=class_names)
    df.insert(0, LABEL, labels.astype(np.int64))
    df.insert(0, VIDEO_ID, pd.Series(video_ids, dtype=object))
    _check_score_table(df, "the score table", [VIDEO_ID, LABEL])
    _check_labels(df, "the score table")
    return df


def write_scores_frame(df, path):
    """Write a score table made by `scores_frame` to CSV at `path` (floats written losslessly)."""
    _check_score_table(df, str(path), [VIDEO_ID, LABEL])
    _check_labels(df, str(path))
    df.to_csv(path, index=False)


def read_scores_frame(path):
    """Read a score table written by `write_scores_frame`, checking its columns and values."""
    df = read_score_csv(path, [VIDEO_ID, LABEL])
    _check_labels(df, str(path))
    return df


def read_score_csv(path, leading_columns):
    """Read a CSV of per-video class scores whose header starts with `leading_columns`.

    Every other column is a class. Checks that the header has no repeated names and at least
    one class, that every class score is a finite number and that video ids are unique;
    errors name the file. video_id is read as text so ids such as "007" keep their zeros.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: score file not found")
    with path.open(newline="") as f:
        header = next(csv.reader(f), None)
    if not header:
        raise ValueError(f"{path}: empty file, expected a header {','.join(leading_columns)},...")
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise ValueError(f"{path}: repeated column names in header: {repeated}")
    df = pd.read_csv(
        path,
        dtype={VIDEO_ID: object},
        keep_default_na=False,
        na_values=[""],
    )
    _check_score_table(df, str(path), leading_columns)
    return df


def _check_score_table(df, source, leading_columns):
    columns = [str(c) for c in df.columns]
    if columns[: len(leading_columns)] != list(leading_columns):
        raise ValueError(
            f"{source}: header must start with {','.join(leading_columns)}, "
            f"got {','.join(columns[: len(leading_columns)])}"
        )
    class_columns = columns[len(leading_columns):]
    if not class_columns:
        raise ValueError(f"{source}: no class score columns after {','.join(leading_columns)}")
    ids = df[VIDEO_ID]
    if ids.isna().any():
        raise ValueError(f"{source}: empty video_id in rows {_rows(ids.isna())}")
    duplicated = ids[ids.duplicated()].unique().tolist()
    if duplicated:
        raise ValueError(f"{source}: duplicate video ids {_few(duplicated)}")
    for name in class_columns:
        values = pd.to_numeric(df[name], errors="coerce")
        bad = values.isna() | ~np.isfinite(values.to_numpy(dtype=np.float64, na_value=np.nan))
        if bad.any():
            raise ValueError(
                f"{source}: class column {name!r} has missing, non-numeric or non-finite scores "
                f"for videos {_few(ids[bad].tolist())}"
            )


def _check_labels(df, source):
    labels = df[LABEL]
    n_classes = df.shape[1] - 2
    if not pd.api.types.is_integer_dtype(labels):
        raise ValueError(f"{source}: column 'label' must hold integers only")
    out_of_range = (labels < 0) | (labels >= n_classes)
    if out_of_range.any():
        raise ValueError(
            f"{source}: labels must lie in [0, {n_classes}) (one per class column); "
            f"videos {_few(df.loc[out_of_range, VIDEO_ID].tolist())} do not"
        )


def _rows(mask):
    return _few((np.flatnonzero(mask.to_numpy()) + 1).tolist())


def _few(items, limit=5):
    """A short listing of `items` for error messages: the first few and how many in all."""
    shown = ", ".join(str(i) for i in items[:limit])
    return shown if len(items) <= limit else f"{shown}, ... ({len(items)} in all)"
