"""Wall time of real VideoLSTM TrainModel tasks run by Luigi with --workers W, at each [run]
threads value: the pipeline's own tasks, where bench_threads.py times a bare training loop.

    .venv/bin/python bench/bench_trainings.py [--tasks 4] [--epochs 8] [--workers 2]
        [--threads 1 2]

Runs on the features the current config's cache holds (run the Quick start first, or set
LUIGI_CONFIG_PATH as for the pipeline); the models go to a scratch work folder, removed after.
Prints, per thread count, the span from the first training's start to the last one's end, the
tasks' summed seconds, the epochs' median and slowest seconds and how many took over 1.5x the
median (the first epoch, which traces the model, left out). Results depend on the thread count,
so each value trains its own models.
"""

from __future__ import annotations

import argparse
import configparser
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from pipeline.report import report  # noqa: E402


def scratch_config(folder: Path, threads: int, epochs: int) -> Path:
    """The current config (luigi.cfg, then LUIGI_CONFIG_PATH) with work in ``folder`` and the
    given threads and epochs, as one file read after luigi.cfg."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read([REPO / "luigi.cfg", *filter(None, [os.environ.get("LUIGI_CONFIG_PATH")])])
    for section, key, value in (("paths", "work", folder / "work"), ("run", "threads", threads),
                                ("train", "epochs", epochs)):
        if not parser.has_section(section):
            parser.add_section(section)
        parser.set(section, key, str(value))
    for section, key in (("paths", "data"), ("paths", "cache"), ("paths", "reports")):
        parser.set(section, key, str((REPO / parser.get(section, key)).resolve()))
    path = folder / "bench.cfg"
    with open(path, "w") as handle:
        parser.write(handle)
    return path


def train(tasks: int, workers: int) -> None:
    """In the scratch config's process: ``tasks`` VideoLSTM replicates through luigi.build."""
    import luigi
    import tasks as pipeline_tasks
    ok = luigi.build([pipeline_tasks.TrainModel(arch="videolstm", attention="motion",
                                                replicate=r) for r in range(tasks)],
                     workers=workers, local_scheduler=True)
    sys.exit(0 if ok else 1)


def measure(threads: int, args) -> dict:
    """One thread count's figures, from the scratch run's timings.jsonl and history.csv files."""
    with tempfile.TemporaryDirectory(prefix="bench-trainings-") as scratch:
        folder = Path(scratch)
        config = scratch_config(folder, threads, args.epochs)
        subprocess.run([sys.executable, __file__, "--run", str(args.tasks), "--workers",
                        str(args.workers)], cwd=REPO, check=True,
                       env=dict(os.environ, LUIGI_CONFIG_PATH=str(config),
                                TF_CPP_MIN_LOG_LEVEL="2"))
        trainings = [row for row in report.last_timings(folder / "work" / "timings.jsonl")
                     if row["stage"] == "TrainModel"]
        epochs = np.concatenate([pd.read_csv(path)["seconds"].to_numpy()[1:] for path in
                                 (folder / "work").glob("*/models/*/history.csv")])
    span = max(r["end"] for r in trainings) - min(r["start"] for r in trainings)
    return {"threads": threads or "default", "span s": round(span, 1),
            "task s": round(sum(r["seconds"] for r in trainings), 1),
            "epoch median s": round(float(np.median(epochs)), 1),
            "epoch max s": round(float(epochs.max()), 1),
            "slow epochs": f"{int((epochs > 1.5 * np.median(epochs)).sum())}/{len(epochs)}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--run", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run is not None:
        train(args.run, args.workers)
        return
    figures = pd.DataFrame([measure(threads, args) for threads in args.threads])
    print(f"{args.tasks} VideoLSTM trainings x {args.epochs} epochs, --workers {args.workers}, "
          f"{len(os.sched_getaffinity(0))} cores")
    print(figures.to_string(index=False))


if __name__ == "__main__":
    main()
