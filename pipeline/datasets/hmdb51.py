"""HMDB51 split reader: the official `testTrainMulti_7030_splits` folder.

Supported format (as distributed with HMDB51): one file per class and split,
`<class>_test_split<N>.txt`, with lines "<video file name> <flag>" where 1 = train, 2 = test
and 0 = not used (dropped). Videos live at `<videos_root>/<class>/<video file name>`. Class
indices follow the sorted class names. Files are read as UTF-8, with or without a byte-order
mark.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import pandas as pd

from pipeline.manifest import add_listed_video, split_file_lines, split_frame

_FLAGS = {"0": None, "1": "train", "2": "test"}


def read_split(splits_dir: str | PathLike, videos_root: str | PathLike, split: int) -> pd.DataFrame:
    """Train and test videos of HMDB51 split `split` (1, 2 or 3) as a reader's table."""
    splits_dir, videos_root = Path(splits_dir), Path(videos_root).resolve()
    suffix = f"_test_split{split}.txt"
    files = sorted(p for p in splits_dir.glob(f"*{suffix}") if p.is_file())
    if not files:
        raise FileNotFoundError(f"{splits_dir}: no '<class>{suffix}' files for split {split}")
    class_files = {p.name[: -len(suffix)]: p for p in files}
    names = sorted(class_files)

    rows, seen = [], {}
    for label_index, class_name in enumerate(names):
        list_path = class_files[class_name]
        for n, line in split_file_lines(list_path):
            fields = line.rsplit(maxsplit=1)
            if len(fields) != 2 or fields[1] not in _FLAGS:
                raise ValueError(
                    f"{list_path}, line {n}: expected '<video file> <0|1|2>', got {line!r}")
            file_name, split_name = fields[0], _FLAGS[fields[1]]
            if split_name is None:
                continue
            add_listed_video(rows, seen, list_path, file_name, videos_root / class_name / file_name,
                             class_name, label_index, split_name)
    return split_frame(rows, names, splits_dir,
                       {name: {"train": path, "test": path} for name, path in class_files.items()})
