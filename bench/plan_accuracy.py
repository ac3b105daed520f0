"""How right videolstm-plan is: runs the plan (with its calibration), then ReproducePaper under
the same config, and prints predicted against actual per stage: tasks, frames and pairs (must be
exact), bytes (within 25%) and time (within 2x, on the same machine).

Actual bytes are the sizes of each task's outputs (its Luigi targets, folders summed); actual
frames and pairs are what the flow and feature shards record; actual times are the task timing
records of work/timings.jsonl.

    .venv/bin/python bench/plan_accuracy.py [--config FILE] [--folder DIR] [--workers N]

Without --config it runs the embedded default (about an hour on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BYTES_WITHIN = 0.25
TIME_WITHIN = 2.0


def run(folder: Path, config: Path | None, *command: str) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO),
                                                       os.environ.get("PYTHONPATH", "")]))
    if config:
        env["LUIGI_CONFIG_PATH"] = str(config)
    subprocess.run([sys.executable, *command], cwd=folder, env=env, check=True)


def path_bytes(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size if path.exists() else 0


def actual(folder: Path) -> dict[str, dict]:
    """Per task family: tasks, bytes of outputs, frames and pairs the shards record, seconds
    from the timing log (run in ``folder`` with the config of the environment)."""
    import h5py
    import luigi.task
    os.chdir(folder)
    import tasks
    from pipeline.report import report
    found: dict[str, dict] = {}
    seen, todo = set(), [tasks.ReproducePaper()]
    while todo:
        task = todo.pop()
        if task.task_id in seen:
            continue
        seen.add(task.task_id)
        stage = found.setdefault(task.task_family, {"tasks": 0, "bytes": 0, "frames": 0,
                                                    "pairs": 0, "seconds": 0.0})
        stage["tasks"] += 1
        for target in luigi.task.flatten(task.output()):
            path = Path(target.path)
            # these two outputs are a marker file in the folder they fill
            whole = task.task_family in ("GenerateSynthetic", "ReproducePaper")
            stage["bytes"] += path_bytes(path.parent if whole else path)
            if task.task_family in ("ComputeFlow", "ExtractFeatures"):
                with h5py.File(path) as shard:
                    info = json.loads(shard.attrs["info"])
                    videos = len(json.loads(shard.attrs["videos"]))
                if task.task_family == "ComputeFlow":
                    stage["pairs"] += info["frames"]
                    stage["frames"] += info["frames"] + videos
                else:
                    stage["frames"] += info["frames"]
        todo.extend(luigi.task.flatten(task.requires()))
    for family, seconds in report.stage_times(tasks.timings_log()).items():
        found.setdefault(family, {"tasks": 0, "bytes": 0, "frames": 0, "pairs": 0})
        found[family]["seconds"] = seconds
    return found


def compare(planned: dict, measured: dict[str, dict]) -> list[str]:
    """The markdown table of predicted / actual per stage, with a verdict per figure."""
    lines = ["| stage | tasks | frames | pairs | bytes (predicted / actual) | time (predicted / "
             "actual) |", "|---|---|---|---|---|---|"]
    for stage in planned["stages"]:
        got = measured.get(stage["stage"], {})
        cells = []
        for key in ("tasks", "frames", "pairs"):
            want = stage["tasks"] if key == "tasks" else stage["items"].get(key)
            if want is None or (key != "tasks" and not got.get(key)):
                cells.append("")
                continue
            cells.append(f"{want} / {got.get(key, 0)} {'ok' if want == got.get(key) else 'WRONG'}")
        size = got.get("bytes", 0)
        close = size and abs(stage["bytes"] - size) <= BYTES_WITHIN * size
        cells.append(f"{stage['bytes']:,} / {size:,} {'ok' if close else 'off'}")
        seconds, took = stage["seconds"], got.get("seconds")
        within = (seconds is not None and took
                  and took / TIME_WITHIN <= seconds <= took * TIME_WITHIN)
        cells.append(f"{seconds} / {took if took is None else round(took, 1)} s "
                     f"{'ok' if within else 'off'}")
        lines.append(f"| {stage['stage']} | {' | '.join(cells)} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="a config file (default: luigi.cfg)")
    parser.add_argument("--folder", type=Path, help="where to run (default: a new temporary "
                        "folder, kept)")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    folder = (args.folder or Path(tempfile.mkdtemp(prefix="plan-accuracy-"))).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    config = args.config.resolve() if args.config else None
    run(folder, config, "-m", "pipeline.plan", "--workers", str(args.workers), "--json",
        "plan.json")
    run(folder, config, "-m", "luigi", "--module", "tasks", "ReproducePaper",
        "--local-scheduler", "--workers", str(args.workers))
    if config:
        os.environ["LUIGI_CONFIG_PATH"] = str(config)
    sys.path.insert(0, str(REPO))
    planned = json.loads((folder / "plan.json").read_text())
    measured = actual(folder)
    print("\n".join(compare(planned, measured)))
    print(f"wall time predicted for --workers {args.workers}: "
          f"{planned['total']['wall_seconds']} s; outputs in {folder}")


if __name__ == "__main__":
    main()
