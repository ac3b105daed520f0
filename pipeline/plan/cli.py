"""videolstm-plan: prints, before anything runs, what ReproducePaper under the config in force
(luigi.cfg, then LUIGI_CONFIG_PATH) will cost: per task family its tasks, items, bytes and time,
then disk needed against free and wall time on --workers N x --machines M.

    videolstm-plan [--workers N] [--machines M] [--no-calibrate] [--device-figures FILE]
                   [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from pipeline.plan import calibration, device_figures, estimate, graph
from pipeline.plan.counts import model_kind
from pipeline.plan.settings import from_config


def free_space(folders: dict[str, Path]) -> dict[str, tuple[str, int]]:
    """[paths] folder -> (the device of its filesystem, free bytes): measured at the folder or
    its nearest existing parent."""
    found = {}
    for name, folder in folders.items():
        existing = folder.resolve()
        while not existing.exists():
            existing = existing.parent
        found[name] = (str(existing.stat().st_dev), shutil.disk_usage(existing).free)
    return found


def human_bytes(count: int) -> str:
    for unit, size in (("TiB", 2 ** 40), ("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} B"


def human_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.0f} s"


def table(result: dict) -> str:
    """The plan as a markdown table and its totals."""
    lines = ["| stage | tasks | videos | frames | pairs | steps | segments | bytes | time |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for stage in result["stages"]:
        items = [f"{stage['items'][k]:,}" if k in stage["items"] else ""
                 for k in estimate.ITEMS]
        mark = "~" if stage["bytes_estimate"] else ""
        size = "?" if stage["bytes_unknown"] else f"{mark}{human_bytes(stage['bytes'])}"
        lines.append(f"| {stage['stage']} | {stage['tasks']} | {' | '.join(items)} | {size} | "
                     f"{human_seconds(stage['seconds'])} |")
    total = result["total"]
    lines.append(f"| total | {total['tasks']} |  |  |  |  |  | ~{human_bytes(total['bytes'])} | "
                 f"{human_seconds(total['seconds'])} |")
    return "\n".join(lines)


def notes(result: dict, calibrated: bool, replaced: list[str], figures: str | None) -> list[str]:
    total = result["total"]
    lines = ["Frame counts are the video headers' (CAP_PROP_FRAME_COUNT, no decode); the tasks "
             "count the frames they decode, which can differ where a header estimates.",
             "~ marks estimated bytes: compressed sizes (the codec's ratio on synthetic frames, "
             "real frames compress by their own content) and small tables; uncompressed flow "
             "and features, VGG-16 and model weights are exact; ? is unknown (the models' "
             "size needs the calibration, which builds them)."]
    if calibrated:
        lines.append("Time: each stage's code timed on a few synthetic items at the configured "
                     "shapes on this machine, per unit of work (training steps on in-memory "
                     "batches; the snippet loader's start, each epoch's own cost and TensorFlow's "
                     "start in every device task's process apart); time is the sum over a "
                     "stage's tasks.")
    else:
        lines.append("Time: not estimated (--no-calibrate)" + (
            f"; the GPU stages' rates are from {figures}" if replaced else "") + ".")
    if replaced:
        lines.append(f"From {figures}: {', '.join(replaced)}.")
    for entry in total["disk"]:
        line = (f"Disk for {', '.join(entry['folders'])}: {human_bytes(entry['needed'])} needed, "
                f"{human_bytes(entry['free'])} free")
        lines.append(("WARNING: not enough disk. " if entry["short"] else "") + line + ".")
    lines.append(f"Wall time with --workers {total['workers']} on {total['machines']} machine(s) "
                 f"of {total['gpus_per_machine']} GPU(s) each: "
                 f"{human_seconds(total['wall_seconds'])} (a list schedule of the task graph; "
                 "one CPU-bound task per machine at a time, one device task per GPU).")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="videolstm-plan",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1, help="Luigi workers per machine")
    parser.add_argument("--machines", type=int, default=1, help="machines under one luigid")
    parser.add_argument("--no-calibrate", action="store_true",
                        help="skip the timing calibration (no time estimates)")
    parser.add_argument("--device-figures", type=Path,
                        help="bench/device_check.py's JSON: the GPU stages at that GPU's rates")
    parser.add_argument("--json", type=Path, help="write the plan as JSON to this file")
    args = parser.parse_args(argv)
    try:
        figures = device_figures.read(args.device_figures) if args.device_figures else None
        if args.workers < 1 or args.machines < 1:
            raise ValueError(f"--workers and --machines must be >= 1, got {args.workers} and "
                             f"{args.machines}")
        import tasks
        from pipeline import config
        from pipeline.plan import videos
        settings = from_config()
        nodes = graph.walk(tasks.ReproducePaper())
        datasets = sorted({n.params["dataset"] for n in nodes if "dataset" in n.params})
        listings = {dataset: videos.listing(dataset) for dataset in datasets}
        if "GenerateSynthetic" in {n.family for n in nodes}:
            listings.setdefault("synthetic", videos.listing("synthetic"))
        classes = max(int(t["label_index"].max()) + 1 for t in listings.values())
        kinds = sorted({model_kind(n.params["arch"], n.params["attention"])
                        for n in nodes if n.family == "TrainModel"})
        rates = (calibration.Rates() if args.no_calibrate else
                 calibration.calibrate(settings, kinds, classes,
                                       lambda line: print(line, file=sys.stderr)))
        replaced = (device_figures.apply(figures, rates, settings.flow_backend == "tensorflow",
                                         kinds) if figures else [])
        result = estimate.plan(nodes, listings, settings, rates, classes, args.workers,
                               args.machines, free_space({name: config.paths().folder(name)
                                                          for name in estimate.FOLDERS}))
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None
    result["notes"] = notes(result, not args.no_calibrate, replaced,
                            str(args.device_figures) if figures else None)
    result["config"] = config.config_files()
    print(table(result))
    print()
    print("\n".join(result["notes"]))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")
