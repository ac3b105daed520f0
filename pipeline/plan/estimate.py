"""The plan itself: per task family its tasks, items, bytes and seconds, and the totals (disk
needed against free, wall time on the given workers and machines), from plain values."""

from __future__ import annotations

from pipeline.plan import counts, schedule, sizes
from pipeline.plan.calibration import Rates
from pipeline.plan.graph import Node
from pipeline.plan.settings import Settings

FOLDER = {"GenerateSynthetic": "data", "ComputeFlow": "cache", "FinetuneConvNet": "cache",
          "ExtractFeatures": "cache", "ReproducePaper": "reports"}
"""The [paths] folder each family writes into (the others write into work)."""
FOLDERS = ("data", "cache", "work", "reports")
ITEMS = ("videos", "frames", "pairs", "steps", "segments")


def is_start(key: str) -> bool:
    """A work key of a task's fixed costs (TensorFlow's start, a first traced step, an
    epoch's own cost)."""
    return key == "tensorflow" or "_start" in key or key.startswith("epoch_")


def task_seconds(work: dict, rates: Rates) -> float | None:
    """Seconds of one task's work at ``rates``; None when a per-item unit has no rate (a start
    cost without one counts 0: device figures give per-item rates only)."""
    if not rates.seconds or any(key not in rates.seconds for key in work if not is_start(key)):
        return None
    return sum(units * rates.seconds.get(key, 0.0) for key, units in work.items())


def plan(nodes: list[Node], listings: dict, settings: Settings, rates: Rates, classes: int,
         workers: int, machines: int, free: dict[str, tuple[str, int]]) -> dict:
    """{"stages": [...], "total": {...}} (see the module docstring). ``free``: [paths] folder
    -> (its filesystem, free bytes there)."""
    stages: dict[str, dict] = {}
    jobs = []
    depth = family_depths(nodes)
    for node in nodes:
        counted = counts.count(node, listings, settings)
        size = sizes.size(node, counted.items, settings, rates.ratios, rates.parameters,
                          rates.log_bytes, classes)
        seconds = task_seconds(counted.work, rates)
        stage = stages.setdefault(node.family, {
            "stage": node.family, "tasks": 0, "items": {}, "bytes": 0, "seconds": 0.0,
            "bytes_estimate": False, "bytes_unknown": False, "bytes_basis": size.basis, "folder":
            FOLDER.get(node.family, "work"), "device": node.device,
            "seconds_from": sorted({rates.where.get(k, "this machine") for k in counted.work})})
        stage["tasks"] += 1
        for key, value in counted.items.items():
            stage["items"][key] = stage["items"].get(key, 0) + value
        stage["bytes"] += size.bytes or 0
        stage["bytes_estimate"] |= size.estimate
        stage["bytes_unknown"] |= size.bytes is None
        stage["seconds"] = None if seconds is None or stage["seconds"] is None else (
            stage["seconds"] + seconds)
        jobs.append(schedule.Job(node.id, node.requires, seconds or 0.0, schedule.holds(
            node.device, node.family == "ComputeFlow", settings.gpus)))
    stages = dict(sorted(stages.items(), key=lambda item: depth[item[0]]))
    for stage in stages.values():
        stage["items"] = {k: stage["items"][k] for k in ITEMS if k in stage["items"]}
        if stage["seconds"] is not None:
            stage["seconds"] = round(stage["seconds"], 1)
    known = all(stage["seconds"] is not None for stage in stages.values())
    return {"stages": list(stages.values()),
            "total": {"tasks": len(nodes),
                      "bytes": sum(stage["bytes"] for stage in stages.values()),
                      "seconds": round(sum(s["seconds"] for s in stages.values()), 1)
                      if known else None,
                      "wall_seconds": round(schedule.wall_seconds(
                          jobs, workers, machines, settings.gpus), 1) if known else None,
                      "workers": workers, "machines": machines, "gpus_per_machine":
                      settings.gpus, "disk": disk(stages.values(), free)}}


def family_depths(nodes: list[Node]) -> dict[str, int]:
    """Each family's shallowest place in the graph (its longest chain of dependencies), so
    stages print in the order data flows."""
    depth: dict[str, int] = {}
    family: dict[str, int] = {}
    for node in nodes:  # dependencies first
        depth[node.id] = 1 + max((depth[r] for r in node.requires), default=0)
        family[node.family] = min(family.get(node.family, depth[node.id]), depth[node.id])
    return family


def disk(stages, free: dict[str, tuple[str, int]]) -> list[dict]:
    """Bytes needed against free bytes per filesystem of the [paths] folders; ``short`` when
    the run needs more than is free."""
    filesystems: dict[str, dict] = {}
    for folder, (filesystem, available) in free.items():
        entry = filesystems.setdefault(filesystem, {"filesystem": filesystem, "folders": [],
                                                    "needed": 0, "free": available})
        entry["folders"].append(folder)
    for stage in stages:
        filesystems[free[stage["folder"]][0]]["needed"] += stage["bytes"]
    for entry in filesystems.values():
        entry["short"] = entry["needed"] > entry["free"]
    return list(filesystems.values())
