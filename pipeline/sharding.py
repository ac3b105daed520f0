"""Shards: fixed subsets of a dataset's videos, so workers process them in parallel. A video's
shard follows from a stable hash of its id alone, the same on every machine and whatever other
videos are added or removed."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd


def shard_index(video_id: str, shards: int) -> int:
    """The shard (0-based, of ``shards``) a video belongs to, from a stable hash of its id
    alone: adding or removing other videos never moves it."""
    if shards < 1:
        raise ValueError(f"shards must be >= 1, got {shards}")
    return int(hashlib.sha256(video_id.encode()).hexdigest()[:8], 16) % shards


def partition(table: pd.DataFrame, shards: int) -> list[pd.DataFrame]:
    """The rows of ``table`` (with a ``video_id`` column) in each of ``shards`` shards, each
    sorted by id (every id hashed once)."""
    index = np.array([shard_index(video, shards) for video in table["video_id"]], dtype=int)
    return [table[index == shard].sort_values("video_id", kind="stable").reset_index(drop=True)
            for shard in range(shards)]


def members(table: pd.DataFrame, shard: int, shards: int) -> pd.DataFrame:
    """The rows of ``table`` (with a ``video_id`` column) in shard ``shard``, sorted by id."""
    if not 0 <= shard < shards:
        raise ValueError(f"shard must be in [0, {shards}), got {shard}")
    return partition(table, shards)[shard]


def union(manifests: list[pd.DataFrame]) -> pd.DataFrame:
    """All videos of several split manifests once each (flow and features do not depend on the
    split, so HMDB51's three splits share one cache)."""
    table = pd.concat(manifests, ignore_index=True).drop_duplicates("video_id", keep="first")
    return table.sort_values("video_id", kind="stable").reset_index(drop=True)
