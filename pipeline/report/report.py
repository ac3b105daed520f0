"""The run's report: what each stage produced, its size and time, and every skipped video."""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from pipeline import cache
from pipeline.report import paper_results
from pipeline.video import HEADER_DISAGREES, shortfall


def write_json(path: str | Path, record: dict) -> None:
    """Write a small JSON record (indented, keys sorted)."""
    Path(path).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


def read_json(path: str | Path) -> dict:
    """Read a JSON record; a missing or damaged file names itself."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise cache.CacheCorruptError(f"{path}: cannot read record ({error})") from error


def append_timing(path: str | Path, stage: str, task_id: str, seconds: float, start: float,
                  end: float, host: str, device: str) -> None:
    """Append one finished task's wall time, start and end (Unix seconds), host and device to a
    JSON-lines log (one short line per write, so concurrent workers do not interleave)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"stage": stage, "task": task_id, "seconds": round(seconds, 2),
                       "start": round(start, 3), "end": round(end, 3), "host": host,
                       "device": device}) + "\n"
    with open(path, "a") as handle:
        handle.write(line)


def last_timings(path: str | Path) -> list[dict]:
    """The timing log's record of the last run of each task (none when there is no log)."""
    if not Path(path).exists():
        return []
    last = {}
    for line in Path(path).read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            last[record["task"]] = record
    return list(last.values())


def stage_times(path: str | Path) -> dict[str, float]:
    """Wall seconds per stage (task family) from the timing log, the last run of each task."""
    totals: dict[str, float] = {}
    for record in last_timings(path):
        totals[record["stage"]] = totals.get(record["stage"], 0.0) + record["seconds"]
    return totals


def device_times(path: str | Path) -> dict[tuple[str, str], tuple[int, float]]:
    """Tasks and busy seconds per (host, device) from the timing log, the last run of each
    task (records written before tasks named their device are left out)."""
    busy: dict[tuple[str, str], tuple[int, float]] = {}
    for record in last_timings(path):
        if "device" in record:
            key = (record["host"], record["device"])
            tasks, seconds = busy.get(key, (0, 0.0))
            busy[key] = (tasks + 1, seconds + record["seconds"])
    return busy


def shard_summary(paths: list[str]) -> dict:
    """Videos, skipped videos, videos decoded short of their header (kept), frames, seconds and
    bytes over a stage's shard files."""
    summary = {"shards": len(paths), "videos": 0, "frames": 0, "seconds": 0.0, "bytes": 0,
               "skipped": {}, "short": {}}
    for path in paths:
        with cache.Shard(path) as shard:
            summary["videos"] += len(shard.videos)
            summary["frames"] += shard.info.get("frames", 0)
            summary["seconds"] += shard.info.get("seconds", 0.0)
            summary["skipped"].update(shard.skipped)
            summary["short"].update({
                video: f"kept short: {shortfall(counts['header'], counts['decoded'])}"
                for video, counts in shard.info.get(HEADER_DISAGREES, {}).items()
                if shortfall(counts["header"], counts["decoded"])})
        summary["bytes"] += Path(path).stat().st_size
    return summary


class Accuracy(NamedTuple):
    """A table cell: accuracy (the mean over splits and replicates), its 95% Wilson interval
    over the pooled test videos, how many test videos it was measured on, and each training
    replicate's accuracy."""

    value: float
    low: float
    high: float
    videos: int
    replicates: tuple[float, ...] = ()


def replicate_mean(tables: list[pd.DataFrame], names: list[str]) -> pd.DataFrame:
    """The mean over replicates of Fig. 4 tables (column iou, then value columns), value by
    value; the iou column stays the thresholds themselves (averaged, 0.2 became
    0.20000000000000004). ValueError names the replicate whose thresholds differ."""
    thresholds = tables[0]["iou"]
    for table, name in zip(tables[1:], names[1:]):
        if not table["iou"].equals(thresholds):
            raise ValueError(f"{name}: IoU thresholds {list(table['iou'])} differ from "
                             f"{names[0]}'s {list(thresholds)}")
    values = sum(table.drop(columns="iou") for table in tables) / len(tables)
    return pd.concat([thresholds, values], axis=1)


def with_intervals(frame: pd.DataFrame, tubes: list[dict[str, pd.DataFrame]], name: str
                   ) -> pd.DataFrame:
    """A Fig. 4 table (column iou, then "<method>, <variant>" columns) with each value's 95%
    interval beside it, counted as the table counts: Wilson over ground-truth tubes for recall
    (``name`` "recall"), a bootstrap over videos, each with its tubes, for video mAP ("map").
    ``tubes`` holds each replicate's tube evidence per method; the table's values are the
    replicates' mean, and so are the intervals'."""
    from pipeline.report import evidence
    out = frame[["iou"]].copy()
    for column in frame.columns[1:]:
        method, variant = column.split(", ")
        tables = [methods[method] for methods in tubes]
        if name == "recall":
            overlaps = [evidence.overlap_matrix(table, variant) for table in tables]
            bounds = [evidence.recall_with_interval(overlaps, t)[1:] for t in frame["iou"]]
        else:
            bounds = [evidence.map_with_interval(tables, variant, t)[1:] for t in frame["iou"]]
        out[column] = frame[column]
        out[f"{column} low"] = [b[0] for b in bounds]
        out[f"{column} high"] = [b[1] for b in bounds]
    return out


def _cell(value: float | None) -> str:
    return "n/a" if value is None or (isinstance(value, float) and np.isnan(value)) \
        else f"{value:.1f}"


def _markdown(table: pd.DataFrame) -> str:
    header = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "|" + "|".join("---" if i == 0 else "---:" for i in range(len(table.columns))) + "|"
    rows = ["| " + " | ".join(v if isinstance(v, str) else _cell(v) for v in row) + " |"
            for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def classification_tables(results: dict) -> dict[str, pd.DataFrame]:
    """Tables 1-4 as data frames: our accuracies (%) per dataset with their 95% intervals and
    test-set sizes, beside the paper's.

    ``results[dataset]`` holds "table1" {stream: {arch: Accuracy}}, "table2" {attention:
    {arch: Accuracy}}, "table3" {"rgb"|"flow"|"fused": Accuracy} and "table4" {row: accuracy
    in [0, 1]}.
    """
    def ours(estimate: Accuracy) -> dict:
        return {"ours": 100 * estimate.value,
                "95% CI": f"[{100 * estimate.low:.1f}, {100 * estimate.high:.1f}]",
                "replicates": ", ".join(f"{100 * value:.1f}" for value in estimate.replicates),
                "videos": str(estimate.videos)}

    rows1, rows2, rows3, rows4 = [], [], [], []
    for dataset, result in results.items():
        for stream, accs in result["table1"].items():
            for arch, acc in accs.items():
                rows1.append({"dataset": dataset, "input": stream, "architecture": arch,
                              **ours(acc),
                              "paper UCF101": paper_results.TABLE1["ucf101"][stream][arch],
                              "paper HMDB51": paper_results.TABLE1["hmdb51"][stream][arch]})
        for attention, accs in result["table2"].items():
            for arch, acc in accs.items():
                rows2.append({"dataset": dataset, "attention": attention, "architecture": arch,
                              **ours(acc),
                              "paper UCF101": paper_results.TABLE2["ucf101"][attention][arch],
                              "paper HMDB51": paper_results.TABLE2["hmdb51"][attention][arch]})
        this = paper_results.TABLE3["This paper"]
        for name, acc in result["table3"].items():
            rows3.append({"dataset": dataset, "VideoLSTM": name, **ours(acc),
                          "paper UCF101": this["ucf101"] if name == "fused" else None,
                          "paper HMDB51": this["hmdb51"] if name == "fused" else None})
        for name, acc in result["table4"].items():
            paper = paper_results.TABLE4.get(name, {})
            rows4.append({"dataset": dataset, "combination": name, "ours": 100 * acc,
                          "paper UCF101": paper.get("ucf101"), "paper HMDB51": paper.get("hmdb51")})
    columns4 = ["dataset", "combination", "ours", "paper UCF101", "paper HMDB51"]
    return {"table1": pd.DataFrame(rows1), "table2": pd.DataFrame(rows2),
            "table3": pd.DataFrame(rows3), "table4": pd.DataFrame(rows4, columns=columns4)}


def paper_report(profile: str, tables: dict[str, pd.DataFrame], chance: dict[str, float],
                 localization: dict[str, dict[str, pd.DataFrame]], figures: dict[str, str],
                 times: dict[str, float], skipped: dict[str, str], table4_missing: str | None,
                 generated: str, splits: dict[str, tuple[int, ...]] | None = None,
                 claims: dict[str, str] | None = None,
                 devices: dict[tuple[str, str], tuple[int, float]] | None = None) -> str:
    """report.md: the Claims (one section per dataset, ``claims``), then Tables 1-4 and Fig. 4
    with our figures and their 95% intervals beside the paper's, each labelled with the
    dataset it was measured on, the time per stage and the skipped videos. ``splits`` names
    the splits whose mean a dataset's accuracies are (HMDB51: 1, 2, 3); ``devices`` the tasks
    and busy seconds per (host, device)."""
    lines = [f"# VideoLSTM reproduction: profile {profile}", "", f"Generated {generated}.", ""]
    for dataset, section in (claims or {}).items():
        lines += [section.replace("## Claims", f"## Claims ({dataset})", 1), ""]
    lines += ["Accuracies in %. \"ours\" is measured on the dataset in the row: the mean over "
              "the training replicates (each listed under \"replicates\"), with the 95% Wilson "
              "interval over its test videos and their number; the paper's columns are its "
              "published UCF101 / HMDB51 numbers, for comparison only.", ""]
    if chance:
        lines += ["Chance level: " + ", ".join(f"{d} {100 * c:.1f}%"
                                               for d, c in chance.items()) + ".", ""]
    for dataset, numbers in (splits or {}).items():
        if len(numbers) > 1:
            lines += [f"{dataset}: every accuracy is the mean over its splits "
                      f"{', '.join(map(str, numbers))} (paper 5.1).", ""]
    titles = {"table1": "Table 1: architectures on appearance and flow (ConvALSTM)",
              "table2": "Table 2: appearance- vs motion-based attention (RGB input)",
              "table3": "Table 3: VideoLSTM, RGB, flow and their product fusion",
              "table4": "Table 4: combination with iDT and object scores"}
    for key, title in titles.items():
        lines += [f"## {title}", "", f"CSV: `{key}.csv`", ""]
        table = tables.get(key)
        lines += [_markdown(table) if table is not None and len(table) else "Not computed."]
        if key == "table4" and table4_missing:
            lines += ["", table4_missing]
        lines.append("")
    lines += ["## Fig. 4: localization", ""]
    if not localization:
        lines += ["No dataset with box annotations was configured.", ""]
    for dataset, frames in localization.items():
        for name, frame in frames.items():
            curves = [c for c in frame.columns if c != "iou" and not c.endswith((" low", " high"))]
            shown = pd.DataFrame({"iou": frame["iou"].map("{:.3g}".format)})
            for curve in curves:
                shown[curve] = [f"{100 * v:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]" for v, lo, hi
                                in zip(frame[curve], frame[f"{curve} low"],
                                       frame[f"{curve} high"])]
            lines += [f"### {dataset}: {name} in %, 95% interval (CSV: "
                      f"`fig4_{name}_{dataset}.csv`)", "", _markdown(shown), ""]
    lines += ["Each value is the mean over the training replicates. Recall intervals are Wilson "
              "over ground-truth tubes, mAP intervals a bootstrap over videos (each with its "
              "tubes). "
              "\"Motion saliency\" is a baseline that learns nothing: the flow stream's pool5 "
              "energy put through the same box procedure, with VideoLSTM's class scores. The "
              "paper gives Fig. 4 as a plot only (no values in its text), so there is no paper "
              "column to set beside these curves.", ""]
    if figures:
        lines += ["## Figures", ""] + [f"![{name}]({path})" for name, path in figures.items()]
        lines.append("")
    lines += ["## Wall time per stage", "", "| stage | seconds |", "|---|---:|"]
    lines += [f"| {stage} | {seconds:.1f} |" for stage, seconds in sorted(times.items())]
    lines += [f"| total | {sum(times.values()):.1f} |", ""]
    if devices:
        lines += ["## Busy time per device", "", "One GPU per task: a GPU's tasks never overlap; "
                  "\"cpu\" sums the tasks that held no GPU, side by side.", "",
                  "| host | device | tasks | busy seconds |", "|---|---|---:|---:|"]
        lines += [f"| {host} | {device} | {tasks} | {seconds:.1f} |"
                  for (host, device), (tasks, seconds) in sorted(devices.items())]
        lines.append("")
    lines += ["## Skipped videos", ""]
    lines += [f"- {video}: {reason}" for video, reason in sorted(skipped.items())] or ["None."]
    return "\n".join(lines) + "\n"
