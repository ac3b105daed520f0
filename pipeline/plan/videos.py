"""The videos a run reads and their frame counts from the container headers
(CAP_PROP_FRAME_COUNT, no decode), one table per dataset: one row per (split, video)."""

from __future__ import annotations

import pandas as pd

COLUMNS = ("split_number", "video_id", "label_index", "role", "tubes", "n_frames")


def listing(dataset: str) -> pd.DataFrame:
    """Every split's videos of ``dataset`` with their header frame counts. The synthetic
    dataset is generated first when it is not there yet (GenerateSynthetic's own code): its
    videos are then read like a real dataset's. A video whose header cannot be read is an error
    naming the file."""
    from pipeline.datasets import SPLITS, read_split
    from pipeline.identity import descriptions
    from pipeline.video import VideoError, probe_frame_count
    locations = descriptions.dataset_locations(dataset)
    tables = []
    for split in SPLITS[dataset]:
        table = read_split(dataset, split, locations)
        tables.append(pd.DataFrame({"split_number": split, "video_id": table["video_id"],
                                    "label_index": table["label_index"],
                                    "role": table["split"], "tubes": table["tubes"] != "",
                                    "path": table["path"]}))
    table = pd.concat(tables, ignore_index=True)
    counts = {}
    for path in table["path"].unique():
        try:
            counts[path] = probe_frame_count(path)
        except VideoError as error:
            raise ValueError(f"{error} (listed in {dataset}'s split files)") from None
    return table.assign(n_frames=table["path"].map(counts))[list(COLUMNS)]


def all_videos(table: pd.DataFrame) -> pd.DataFrame:
    """Each video once, with the role of the first split that lists it (as the tasks' union of
    manifests keeps it)."""
    return (table.sort_values("split_number", kind="stable")
            .drop_duplicates("video_id", keep="first").reset_index(drop=True))
