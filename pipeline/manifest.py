"""The manifest: one table of every video (id, path, label, split, frame count, GT tubes).

The dataset readers build it without `n_frames` and `tubes_skipped`; `check_split` refuses a
split no model can be trained and tested on, and `probe_frames` adds the count and checks the
annotation against it. It is stored as parquet, and ground-truth tubes travel in it as a JSON
string so the table stays flat.

A reader's table carries, in `DataFrame.attrs`, what the check needs and the table cannot show:
`classes` (the label space, in label_index order, including classes without videos),
`classes_from` (the file or folder that defines them) and `split_files` (per class, the split
file that lists its "train" and its "test" videos), so that errors name the file to fix.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from pipeline.video import VideoError, count_frames, probe_frame_count

MANIFEST_COLUMNS = ("video_id", "path", "label", "label_index", "split", "n_frames", "tubes",
                    "annotated_frames", "tubes_skipped")
"""`annotated_frames`: the frame count the box annotation was made on (0: none given);
`tubes_skipped`: why the video's tubes were dropped ("" when kept)."""
SPLIT_COLUMNS = tuple(c for c in MANIFEST_COLUMNS if c not in ("n_frames", "tubes_skipped"))
"""The columns a dataset reader returns: the manifest's without those `probe_frames` adds."""


def split_frame(rows: list[dict], classes: Sequence[str], classes_from,
                split_files: Mapping[str, Mapping[str, str | PathLike]]) -> pd.DataFrame:
    """Build a reader's table from row dicts, with SPLIT_COLUMNS in order and fixed dtypes, and
    the split's label space and files in its attrs (see the module's docstring)."""
    df = pd.DataFrame(rows, columns=list(SPLIT_COLUMNS))
    df = df.astype({"video_id": str, "path": str, "label": str, "label_index": "int64",
                    "split": str, "tubes": str, "annotated_frames": "int64"})
    df.attrs = {"classes": list(classes), "classes_from": str(classes_from),
                "split_files": {name: {part: str(path) for part, path in files.items()}
                                for name, files in split_files.items()}}
    return df


def split_file_lines(path: Path) -> list[tuple[int, str]]:
    """(1-based line number, stripped text) of every non-blank line of a split file, read as
    UTF-8 with or without a byte-order mark; any other encoding is an error naming the file, the
    line and the encoding expected (a Latin-1 file would otherwise fail without saying where)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: split file does not exist")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ValueError(f"{path}, line {line}: not UTF-8 text (byte 0x{data[error.start]:02x}); "
                         "split files are read as UTF-8: convert it, e.g. with "
                         "iconv -f latin1 -t utf-8") from None
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return [(n, line.strip()) for n, line in enumerate(lines, start=1) if line.strip()]


def add_listed_video(rows: list[dict], seen: dict, list_path, listed: str, video: Path,
                     label: str, label_index: int, split: str) -> None:
    """Append a video named by a split file to a reader's rows; a listed path that leaves its
    class folder (it would be labelled by the folder it names, not the one it lies in), a
    listed video missing on disk or listed twice is an error naming the split file."""
    if PurePosixPath(listed).is_absolute() or ".." in PurePosixPath(listed).parts:
        raise ValueError(f"{list_path}: listed video {listed} leaves its class folder {label}/: "
                         "a listed path may not start with '/' or hold '..'")
    if not video.is_file():
        raise FileNotFoundError(f"{list_path}: listed video {listed} not found at {video}")
    if video.stem in seen:
        raise ValueError(f"{list_path}: video {video.stem} already listed in {seen[video.stem]}")
    seen[video.stem] = list_path
    rows.append({"video_id": video.stem, "path": str(video), "label": label,
                 "label_index": label_index, "split": split, "tubes": "",
                 "annotated_frames": 0})


def check_split(table: pd.DataFrame) -> None:
    """Refuse a reader's table that no model can be trained and tested on, before any work: no
    training or no test videos, or a class of the label space without training videos (the
    model scores every class, e.g. a UCF101 subset that keeps a class in classInd.txt but
    lists none of its videos). The error names the split file to fix."""
    classes, files = table.attrs["classes"], table.attrs["split_files"]
    train = table[table["split"] == "train"]
    labels = dict(zip(table["label_index"], table["label"]))
    if any(not 0 <= index < len(classes) or classes[index] != label
           for index, label in labels.items()):
        raise ValueError(f"{table.attrs['classes_from']}: the videos' labels do not match its "
                         f"{len(classes)} classes in order")
    for part, rows in (("train", train), ("test", table[table["split"] == "test"])):
        if rows.empty:
            raise ValueError(f"{_files_of(files, part)}: no {part} videos; a model needs "
                             "training videos to learn and test videos to be measured")
    counts = train["label_index"].value_counts()
    empty = [name for index, name in enumerate(classes) if counts.get(index, 0) == 0]
    if empty:
        more = f" (and {len(empty) - 1} more: {', '.join(empty[1:4])}...)" if len(empty) > 1 else ""
        raise ValueError(
            f"{files[empty[0]]['train']}: class {empty[0]}{more} has no training videos, but the "
            f"model scores all {len(classes)} classes of {table.attrs['classes_from']}: list "
            "training videos for it or leave the class out of the label space")


def _files_of(files: Mapping[str, Mapping[str, str]], part: str) -> str:
    """The split files that list a part's videos, for an error message."""
    names = sorted({f[part] for f in files.values()})
    return names[0] if len(names) == 1 else f"{names[0]} (and {len(names) - 1} more files)"


def check_trainable(manifest: pd.DataFrame, cached: set[str]) -> None:
    """Refuse to train when every training video of a class was skipped upstream (flow or
    features could not be computed): the model would score a class it never saw."""
    train = manifest[manifest["split"] == "train"]
    usable = set(train[train["video_id"].isin(cached)]["label_index"])
    lost = train[~train["label_index"].isin(usable)]
    if not lost.empty:
        first = lost.iloc[0]
        count = int((lost["label_index"] == first["label_index"]).sum())
        raise ValueError(f"class {first['label']}: all its {count} training videos were skipped "
                         f"upstream (e.g. {first['video_id']}; see the skipped videos), so no "
                         "model can learn it; fix the videos or leave the class out")


def probe_frames(df: pd.DataFrame, strict: bool = False) -> pd.DataFrame:
    """Return a copy of a reader's table with `n_frames`, checked against the video's
    annotation.

    `n_frames` is the container header's count, cheap but often an estimate, so flow and
    features trust the count they decode and record a disagreement. A video with ground truth
    is decoded to count its frames exactly instead, because its boxes must line up with the
    frames the pipeline decodes, not with the header's estimate. A video that cannot be opened
    gets 0 rather than an exception: later stages record it as a skipped video so one bad file
    does not stop the rest. Ground truth annotated on another frame count (`annotated_frames`),
    or with a tube ending after the last frame, would not line up with the video's frames:
    strict, that is an error naming the video and both counts; otherwise the video keeps its
    label but loses its tubes, and `tubes_skipped` says why.
    """
    out = df.copy()
    annotated = (df["annotated_frames"] > 0) | (df["tubes"] != "")
    out["n_frames"] = np.array([_count_or_zero(path, exact) for path, exact
                                in zip(df["path"], annotated)], dtype=np.int64)
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


def _count_or_zero(path: str, exact: bool) -> int:
    """The decoded (exact) or header frame count of a video; 0 when it cannot be read."""
    try:
        return count_frames(path) if exact else probe_frame_count(path)
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
