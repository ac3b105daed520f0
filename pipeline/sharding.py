"""Shards: fixed, balanced subsets of a dataset's videos, so workers process them in parallel."""

from __future__ import annotations

import numpy as np
import pandas as pd


def shard_of(manifest: pd.DataFrame, shard: int, shards: int) -> pd.DataFrame:
    """The rows of shard ``shard`` (0-based) of ``shards``: videos sorted by id, cut into
    contiguous chunks whose sizes differ by at most one. The same manifest always gives the
    same shards, on every machine."""
    if not 0 <= shard < shards:
        raise ValueError(f"shard must be in [0, {shards}), got {shard}")
    ordered = manifest.sort_values("video_id", kind="stable").reset_index(drop=True)
    bounds = np.linspace(0, len(ordered), shards + 1).round().astype(int)
    return ordered.iloc[bounds[shard]:bounds[shard + 1]].reset_index(drop=True)


def union(manifests: list[pd.DataFrame]) -> pd.DataFrame:
    """All videos of several split manifests once each (flow and features do not depend on the
    split, so HMDB51's three splits share one cache)."""
    table = pd.concat(manifests, ignore_index=True).drop_duplicates("video_id", keep="first")
    return table.sort_values("video_id", kind="stable").reset_index(drop=True)
