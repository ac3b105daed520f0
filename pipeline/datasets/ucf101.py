"""UCF101 split reader: the official `ucfTrainTestlist` files.

Supported format (as distributed with UCF101): `classInd.txt` with lines "1 ApplyEyeMakeup"
(1-based ids), `trainlist0N.txt` with lines "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1",
`testlist0N.txt` with lines "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi" (class from the
folder). Videos live at `<videos_root>/<Class>/<file>`. Either line ending is accepted, and
UTF-8 files with or without a byte-order mark.
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from pathlib import Path

import pandas as pd

from pipeline.manifest import add_listed_video, split_file_lines, split_frame


def _lines(path: Path) -> list[tuple[int, list[str]]]:
    """(1-based line number, whitespace-separated fields) of every non-blank line."""
    return [(n, line.split()) for n, line in split_file_lines(path)]


def read_class_index(path: str | PathLike) -> list[str]:
    """Class names from classInd.txt, in id order; ids must be 1..N, each once."""
    path = Path(path)
    by_id = {}
    for n, fields in _lines(path):
        if len(fields) != 2 or not fields[0].isdigit():
            raise ValueError(
                f"{path}, line {n}: expected '<id> <ClassName>', got {' '.join(fields)!r}")
        class_id, name = int(fields[0]), fields[1]
        if class_id in by_id or name in by_id.values():
            raise ValueError(f"{path}, line {n}: class id {class_id} or name {name!r} repeated")
        by_id[class_id] = name
    if sorted(by_id) != list(range(1, len(by_id) + 1)):
        raise ValueError(f"{path}: class ids must run 1..{len(by_id)} without gaps")
    return [by_id[i] for i in range(1, len(by_id) + 1)]


def _parse_list(path: Path, class_ids: dict[str, int], labelled: bool) -> list[tuple[str, str]]:
    """(class name, relative video path) per line of a train or test list."""
    entries = []
    for n, fields in _lines(path):
        if len(fields) != (2 if labelled else 1) or "/" not in fields[0]:
            form = "'<Class>/<video>.avi <id>'" if labelled else "'<Class>/<video>.avi'"
            raise ValueError(f"{path}, line {n}: expected {form}, got {' '.join(fields)!r}")
        rel = fields[0]
        class_name = rel.split("/")[0]
        if class_name not in class_ids:
            raise ValueError(f"{path}, line {n}: class {class_name!r} is not in classInd.txt")
        if labelled and fields[1] != str(class_ids[class_name]):
            raise ValueError(
                f"{path}, line {n}: label {fields[1]} disagrees with classInd.txt, "
                f"where {class_name} is {class_ids[class_name]}"
            )
        entries.append((class_name, rel))
    return entries


def read_split(
    splits_dir: str | PathLike,
    videos_root: str | PathLike,
    split: int,
    classes: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Train and test videos of UCF101 split `split` (1, 2 or 3) as a reader's table.

    `classes` keeps only those classes and re-indexes them 0..K-1 in classInd order (the
    THUMOS13 24-class subset uses this). Every listed video must exist under `videos_root`.
    """
    splits_dir, videos_root = Path(splits_dir), Path(videos_root).resolve()
    class_ind = splits_dir / "classInd.txt"
    names = read_class_index(class_ind)
    class_ids = {name: i for i, name in enumerate(names, start=1)}
    if classes is not None:
        unknown = sorted(set(classes) - set(names))
        if unknown:
            raise ValueError(f"{class_ind}: requested classes {unknown} are not listed")
        names = [name for name in names if name in set(classes)]
    label_index = {name: i for i, name in enumerate(names)}

    lists = {"train": splits_dir / f"trainlist{split:02d}.txt",
             "test": splits_dir / f"testlist{split:02d}.txt"}
    missing = [str(p) for p in lists.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"split {split} has no split files: {', '.join(missing)} not found")

    rows, seen = [], {}
    for split_name, list_path in lists.items():
        for class_name, rel in _parse_list(list_path, class_ids, labelled=split_name == "train"):
            if class_name not in label_index:
                continue
            add_listed_video(rows, seen, list_path, rel, videos_root / rel, class_name,
                             label_index[class_name], split_name)
    return split_frame(rows, names, class_ind, {name: lists for name in names})
