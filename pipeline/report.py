"""The run's report: what each stage produced, its size and time, and every skipped video."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from pipeline import cache


def write_json(path: str | Path, record: dict) -> None:
    """Write a small JSON record (indented, keys sorted)."""
    Path(path).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


def read_json(path: str | Path) -> dict:
    """Read a JSON record; a missing or damaged file names itself."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise cache.CacheCorruptError(f"{path}: cannot read record ({error})") from error


def shard_summary(paths: list[str]) -> dict:
    """Videos, skipped videos, frames, seconds and bytes over a stage's shard files."""
    summary = {"shards": len(paths), "videos": 0, "frames": 0, "seconds": 0.0, "bytes": 0,
               "skipped": {}}
    for path in paths:
        with cache.Shard(path) as shard:
            summary["videos"] += len(shard.videos)
            summary["frames"] += shard.info.get("frames", 0)
            summary["seconds"] += shard.info.get("seconds", 0.0)
            summary["skipped"].update(shard.skipped)
        summary["bytes"] += Path(path).stat().st_size
    return summary


def stage1_report(dataset: str, profile: str, manifest: pd.DataFrame, flow_paths: list[str],
                  feature_paths: dict[str, list[str]], generated: str) -> str:
    """Markdown summary of the dataset, flow and feature caches of one run."""
    counts = manifest.groupby("split")["video_id"].count().to_dict()
    lines = [f"# VideoLSTM pipeline report: {dataset}, profile {profile}", "",
             f"Generated {generated}.", "", "## Dataset", "",
             f"- {manifest['label'].nunique()} classes, {len(manifest)} videos "
             f"({', '.join(f'{n} {split}' for split, n in sorted(counts.items()))}), "
             f"{int(manifest['n_frames'].sum())} frames", "",
             "## Stages", "", "| stage | shards | videos | frames | seconds | MiB |",
             "|---|---:|---:|---:|---:|---:|"]
    stages = {"ComputeFlow": flow_paths}
    stages.update({f"ExtractFeatures ({stream})": paths
                   for stream, paths in feature_paths.items()})
    skipped = {}
    for name, paths in stages.items():
        summary = shard_summary(paths)
        lines.append(f"| {name} | {summary['shards']} | {summary['videos']} | "
                     f"{summary['frames']} | {summary['seconds']:.1f} | "
                     f"{summary['bytes'] / 2**20:.1f} |")
        skipped.update({f"{video} ({name})": reason
                        for video, reason in summary["skipped"].items()})
    lines += ["", "## Skipped videos", ""]
    lines += [f"- {video}: {reason}" for video, reason in sorted(skipped.items())] or ["None."]
    return "\n".join(lines) + "\n"
