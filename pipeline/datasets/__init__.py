"""Dataset readers for the real on-disk formats and the synthetic dataset generator.

`read_split` is the one entry point the pipeline uses: it dispatches on the dataset name to the
reader of that dataset's real format. The synthetic dataset is written in UCF101's layout with
THUMOS13-format boxes, so it is read by those same readers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import pandas as pd

from pipeline.datasets import hmdb51, thumos13, ucf101

SPLITS = {"synthetic": (1,), "ucf101": (1,), "thumos13": (1,), "hmdb51": (1, 2, 3)}
"""The splits the paper reports on: UCF101's and THUMOS13's first, HMDB51's three averaged."""


def synthetic_locations(root: str | Path) -> dict[str, str]:
    """Where the synthetic generator puts videos, split files and box annotations under root."""
    root = Path(root)
    return {"videos": str(root / "UCF-101"), "splits": str(root / "ucfTrainTestlist"),
            "annotations": str(root / "annotations" / "pyannot.pkl")}


def read_split(dataset: str, split: int, locations: Mapping[str, str]) -> pd.DataFrame:
    """The manifest rows of one split (without frame counts), read from the real formats.

    ``locations`` holds ``videos`` and ``splits`` folders and, for boxes, ``annotations``;
    that they are set and exist is checked with the config (pipeline.config.dataset_folders).
    """
    if dataset == "hmdb51":
        return hmdb51.read_split(locations["splits"], locations["videos"], split)
    if dataset in ("synthetic", "thumos13"):
        return thumos13.read_split(locations["splits"], locations["videos"],
                                   locations["annotations"], split)
    if dataset == "ucf101":
        return ucf101.read_split(locations["splits"], locations["videos"], split)
    raise ValueError(f"unknown dataset {dataset!r}; choose one of {sorted(SPLITS)}")
