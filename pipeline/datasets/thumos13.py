"""THUMOS13 localization (UCF101-24) ground-truth tubes and split reader.

Supported format: the corrected UCF101-24 annotations `pyannot.pkl` (the public file of
gurkirt/corrected-UCF101-Annots, also used by realtime-action-detection): a pickled dict
keyed "Class/v_Class_gXX_cYY" whose values are
    {"label": int (0-based among the 24 classes), "numf": int (frames in the video),
     "annotations": [{"label": int, "sf": int (0-based first frame), "ef": int (exclusive end),
                      "boxes": ndarray (ef - sf, 4) int of x, y, w, h in 1-based pixels}]}.
In the public file the labels, sf and ef are Python ints, numf is numpy uint8 (2,864 videos)
or uint16 (330), and boxes are uint8 (4,291 tubes) or uint16 (167). It is read with a
restricted unpickler that rebuilds only numpy arrays and builtin values, so a shared
annotation file cannot run code. Tubes are returned as 0-based x1, y1, x2, y2 float32 boxes
with x2 = x1 + w, y2 = y1 + h, widened to float32 before adding (x1 + w exceeds 255 in 1,418
of the uint8 tubes).
"""

from __future__ import annotations

import importlib
import os
import pickle
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.datasets import ucf101
from pipeline.manifest import encode_tubes

_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}
_BUILTIN_GLOBALS = {("builtins", name) for name in ("set", "frozenset", "bytearray", "complex")}
_BUILTIN_GLOBALS.add(("_codecs", "encode"))
_NUMPY_CORE = "numpy._core" if int(np.__version__.split(".")[0]) >= 2 else "numpy.core"


class AnnotationError(ValueError):
    """An annotation file that is unsafe, malformed or inconsistent; the message names it."""


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals needed to rebuild numpy arrays and builtins."""

    def __init__(self, file, path: Path):
        super().__init__(file, encoding="latin1")
        self._path = path

    def find_class(self, module: str, name: str):
        if module == "__builtin__":
            module = "builtins"
        canonical = module.replace("numpy._core", "numpy.core", 1)
        if (canonical, name) in _NUMPY_GLOBALS:
            installed = canonical.replace("numpy.core", _NUMPY_CORE, 1)
            return getattr(importlib.import_module(installed), name)
        if (canonical, name) in _BUILTIN_GLOBALS:
            return getattr(importlib.import_module(canonical), name)
        raise AnnotationError(
            f"{self._path}: refusing to load global {module}.{name}; an annotation file may only "
            "hold numpy arrays and builtin values"
        )


def _load(path: Path) -> dict:
    """The validated raw pyannot dict."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: annotation file does not exist")
    with open(path, "rb") as f:
        try:
            data = _RestrictedUnpickler(f, path).load()
        except AnnotationError:
            raise
        except Exception as err:
            raise AnnotationError(f"{path}: not a readable pickle ({err})") from err
    if not isinstance(data, dict):
        raise AnnotationError(
            f"{path}: expected a dict keyed 'Class/video', got {type(data).__name__}")
    for key, video in data.items():
        _check_video(path, key, video)
    return data


def _check_video(path: Path, key, video):
    if not (isinstance(key, str) and key.count("/") == 1):
        raise AnnotationError(f"{path}: key {key!r} is not of the form 'Class/video'")
    if not (isinstance(video, dict) and {"label", "numf", "annotations"} <= set(video)):
        raise AnnotationError(f"{path}: entry {key} lacks 'label', 'numf' or 'annotations'")
    if not (all(_is_int(video[k]) for k in ("label", "numf"))
            and isinstance(video["annotations"], list)):
        raise AnnotationError(
            f"{path}: entry {key} needs integer 'label' and 'numf' and a list of 'annotations'")
    for i, ann in enumerate(video["annotations"]):
        if not (isinstance(ann, dict) and {"sf", "ef", "boxes"} <= set(ann)):
            raise AnnotationError(f"{path}: {key} annotation {i} lacks 'sf', 'ef' or 'boxes'")
        if not (_is_int(ann["sf"]) and _is_int(ann["ef"])):
            raise AnnotationError(f"{path}: {key} annotation {i} has a non-integer 'sf' or 'ef'")
        boxes = np.asarray(ann["boxes"])
        if ann["sf"] < 0 or boxes.shape != (int(ann["ef"]) - int(ann["sf"]), 4):
            raise AnnotationError(
                f"{path}: {key} annotation {i} has boxes of shape {boxes.shape} for frames "
                f"sf={ann['sf']} to ef={ann['ef']}; expected (ef - sf, 4) with sf >= 0"
            )


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _tubes(video: dict) -> list[dict]:
    tubes = []
    for ann in video["annotations"]:
        xywh = np.asarray(ann["boxes"], dtype=np.float32)
        x1y1 = xywh[:, :2] - 1
        tubes.append({"start": int(ann["sf"]),
                      "boxes": np.concatenate([x1y1, x1y1 + xywh[:, 2:]], axis=1)})
    return tubes


def read_annotations(path: str | PathLike) -> dict[str, list[dict]]:
    """Ground-truth tubes per video id (file stem): [{"start": int, "boxes": (n, 4) float32}]."""
    return {key.split("/")[1]: _tubes(video) for key, video in _load(Path(path)).items()}


def write_annotations(
    path: str | PathLike,
    tubes_by_key: dict[str, list[dict]],
    labels: dict[str, int],
    numf: dict[str, int],
):
    """Write tubes (0-based x1, y1, x2, y2 boxes) in the pyannot.pkl format read above.

    Keys are "Class/video"; boxes are rounded to whole pixels. The values have the public
    file's types: numpy.str_ keys, Python int labels, sf and ef, and numf and each tube's boxes
    in the smallest unsigned type that holds them (uint8, or uint16 past 255), so most boxes
    are uint8 and a reader must not add x + w in their type.
    """
    path = Path(path)
    data = {}
    for key, tubes in tubes_by_key.items():
        annotations = []
        for tube in tubes:
            corners = np.asarray(tube["boxes"], dtype=np.float64).reshape(-1, 4)
            x1y1x2y2 = np.rint(corners).astype(np.int32)
            xywh = np.concatenate([x1y1x2y2[:, :2] + 1, x1y1x2y2[:, 2:] - x1y1x2y2[:, :2]], axis=1)
            start = int(tube["start"])
            annotations.append({"label": int(labels[key]), "sf": start, "ef": start + len(xywh),
                                "boxes": xywh.astype(np.min_scalar_type(xywh.max(initial=0)))})
        data[np.str_(key)] = {"label": int(labels[key]),
                              "numf": np.min_scalar_type(numf[key]).type(numf[key]),
                              "annotations": annotations}
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            pickle.dump(data, f, protocol=2)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def attach_tubes(manifest_df: pd.DataFrame, annotations: dict[str, list[dict]]) -> pd.DataFrame:
    """Copy of the table with `tubes` filled as JSON for videos that have tubes, else ""."""
    out = manifest_df.copy()
    out["tubes"] = [encode_tubes(annotations[v]) if annotations.get(v) else ""
                    for v in out["video_id"]]
    return out


def read_split(
    splits_dir: str | PathLike,
    videos_root: str | PathLike,
    annotations_path: str | PathLike,
    split: int = 1,
) -> pd.DataFrame:
    """UCF101 split restricted to the classes in the annotation file, with tubes attached.

    Labels are re-indexed 0..K-1 in classInd order; each annotated video's own label must
    agree with that index. The label space is the annotation file's classes (attrs).
    `annotated_frames` is the file's numf (0 for a video it lacks), which `probe_frames`
    compares with the video's frame count.
    """
    annotations_path = Path(annotations_path)
    raw = _load(annotations_path)
    classes = sorted({key.split("/")[0] for key in raw})
    df = ucf101.read_split(splits_dir, videos_root, split, classes=classes)
    by_id = {key.split("/")[1]: video for key, video in raw.items()}
    for video_id, label_index in zip(df["video_id"], df["label_index"]):
        if video_id in by_id and int(by_id[video_id]["label"]) != label_index:
            raise AnnotationError(
                f"{annotations_path}: {video_id} has label {by_id[video_id]['label']} but its "
                f"class is {label_index} among the annotated classes in classInd order"
            )
    df["annotated_frames"] = np.array([int(by_id[v]["numf"]) if v in by_id else 0
                                       for v in df["video_id"]], dtype=np.int64)
    df.attrs["classes_from"] = str(annotations_path)
    return attach_tubes(df, {video_id: _tubes(video) for video_id, video in by_id.items()})
