"""The manifest: one table of every video (id, path, label, split, frame count, GT tubes).

The dataset readers build it without `n_frames` and `tubes_skipped`; `probe_frames` adds the
count and checks the annotation against it. It is stored as parquet, and ground-truth tubes
travel in it as a JSON string so the table stays flat.
"""

from __future__ import annotations

import json
import os
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.video import VideoError, probe_frame_count

MANIFEST_COLUMNS = ("video_id", "path", "label", "label_index", "split", "n_frames", "tubes",
                    "annotated_frames", "tubes_skipped")
"""`annotated_frames`: the frame count the box annotation was made on (0: none given);
`tubes_skipped`: why the video's tubes were dropped ("" when kept)."""
SPLIT_COLUMNS = tuple(c for c in MANIFEST_COLUMNS if c not in ("n_frames", "tubes_skipped"))
"""The columns a dataset reader returns: the manifest's without those `probe_frames` adds."""


def split_frame(rows: list[dict]) -> pd.DataFrame:
    """Build a reader's table from row dicts, with SPLIT_COLUMNS in order and fixed dtypes."""
    df = pd.DataFrame(rows, columns=list(SPLIT_COLUMNS))
    return df.astype({"video_id": str, "path": str, "label": str, "label_index": "int64",
                      "split": str, "tubes": str, "annotated_frames": "int64"})


def add_listed_video(rows: list[dict], seen: dict, list_path, listed: str, video: Path,
                     label: str, label_index: int, split: str) -> None:
    """Append a video named by a split file to a reader's rows; a listed video missing on disk
    or listed twice is an error naming the split file."""
    if not video.is_file():
        raise FileNotFoundError(f"{list_path}: listed video {listed} not found at {video}")
    if video.stem in seen:
        raise ValueError(f"{list_path}: video {video.stem} already listed in {seen[video.stem]}")
    seen[video.stem] = list_path
    rows.append({"video_id": video.stem, "path": str(video), "label": label,
                 "label_index": label_index, "split": split, "tubes": "",
                 "annotated_frames": 0})


def probe_frames(df: pd.DataFrame, strict: bool = False) -> pd.DataFrame:
    """Return a copy of a reader's table with `n_frames` from the container headers, checked
    against the video's annotation.

    A video that cannot be opened gets 0 rather than an exception: later stages record it
    as a skipped video so one bad file does not stop the rest (they also check that the
    decoded count equals `n_frames`). Ground truth annotated on another frame count
    (`annotated_frames`), or with a tube ending after the last frame, would not line up with
    the video's frames: strict, that is an error naming the video and both counts; otherwise
    the video keeps its label but loses its tubes, and `tubes_skipped` says why.
    """
    out = df.copy()
    out["n_frames"] = np.array([_count_or_zero(p) for p in df["path"]], dtype=np.int64)
    out["tubes_skipped"] = [_misaligned(row) for row in out.itertuples()]
    misaligned = out["tubes_skipped"] != ""
    if strict and misaligned.any():
        first = out[misaligned].iloc[0]
        more = f" (and {misaligned.sum() - 1} more videos)" if misaligned.sum() > 1 else ""
        raise ValueError(f"{first['video_id']}: {first['tubes_skipped']}{more}")
    out.loc[misaligned, "tubes"] = ""
    return out[list(MANIFEST_COLUMNS)]


def _misaligned(row) -> str:
    """Why a probed row's ground truth does not fit its frames; "" when it does or when the
    count is unknown (0: the later stages skip the video)."""
    if row.n_frames == 0:
        return ""
    if row.annotated_frames and row.annotated_frames != row.n_frames:
        return (f"the annotation counts {row.annotated_frames} frames (numf) but {row.path} "
                f"has {row.n_frames}; its boxes would not line up with the frames")
    end = max((t["start"] + len(t["boxes"]) for t in decode_tubes(row.tubes)), default=0)
    if end > row.n_frames:
        return (f"an annotated tube ends at frame {end} (exclusive, ef) but {row.path} has "
                f"{row.n_frames} frames")
    return ""


def _count_or_zero(path: str) -> int:
    try:
        return probe_frame_count(path)
    except VideoError:
        return 0


def _check_columns(df: pd.DataFrame, path: str | PathLike):
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    extra = [c for c in df.columns if c not in MANIFEST_COLUMNS]
    if missing or extra:
        raise ValueError(
            f"{path}: manifest columns do not match {list(MANIFEST_COLUMNS)}: "
            f"missing {missing}, unexpected {extra}"
        )


def write_manifest(df: pd.DataFrame, path: str | PathLike):
    """Write the manifest as parquet, via a temporary name renamed when complete."""
    path = Path(path)
    _check_columns(df, path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        df[list(MANIFEST_COLUMNS)].to_parquet(tmp, engine="pyarrow", index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_manifest(path: str | PathLike) -> pd.DataFrame:
    """Read a manifest written by `write_manifest`, refusing a table with other columns."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: manifest file does not exist")
    df = pd.read_parquet(path, engine="pyarrow")
    _check_columns(df, path)
    return df[list(MANIFEST_COLUMNS)]


def encode_tubes(tubes: list[dict]) -> str:
    """JSON text for a list of tubes {"start": int, "boxes": (n, 4) x1, y1, x2, y2}."""
    return json.dumps([
        {"start": int(t["start"]), "boxes": np.asarray(t["boxes"], dtype=np.float64).tolist()}
        for t in tubes
    ])


def decode_tubes(tubes_json: str) -> list[dict]:
    """Inverse of `encode_tubes`: tubes with `start` int and `boxes` float32 (n, 4); "" is none."""
    if not tubes_json:
        return []
    try:
        tubes = [
            {"start": int(t["start"]),
             "boxes": np.asarray(t["boxes"], dtype=np.float32).reshape(-1, 4)}
            for t in json.loads(tubes_json)
        ]
    except (ValueError, TypeError, KeyError) as err:
        raise ValueError(f"malformed tubes JSON {tubes_json[:80]!r}: {err}") from err
    return tubes
