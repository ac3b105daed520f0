"""(slow) One GPU per task on a whole run: the tiny ReproducePaper with 3 workers and two GPUs
to lease ([run] devices = 0,1). TensorFlow-CPU ignores CUDA_VISIBLE_DEVICES, so what is tested
here is the lease, read back from the timing log: a device's tasks never overlap, at most two
device tasks run at once, both GPUs serve, and the tables equal a one-worker run's."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from test_tasks import TINY

DEVICE_STAGES = {"FinetuneConvNet", "ExtractFeatures", "TrainModel", "Evaluate", "Localize",
                 "ReproducePaper"}
"""The stages that run TensorFlow under TINY (its ComputeFlow is OpenCV's, a CPU task)."""
SLACK = 0.01
"""Seconds: the log rounds start and end to milliseconds."""


def run(folder: Path, workers: int) -> list[dict]:
    """The tiny ReproducePaper in folder with two GPUs to lease; its timing log's records. The
    lock folder is folder's own (TMPDIR), so other runs on this machine do not share it."""
    (folder / "tiny.cfg").write_text(TINY.replace("[run]\n", "[run]\ndevices = 0,1\n", 1))
    env = dict(os.environ, LUIGI_CONFIG_PATH=str(folder / "tiny.cfg"), TMPDIR=str(folder))
    result = subprocess.run(
        [sys.executable, "-m", "luigi", "--module", "tasks", "ReproducePaper", "--workers",
         str(workers), "--local-scheduler"], cwd=folder, env=env, capture_output=True,
        text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = (folder / "work" / "timings.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The largest number of (start, end) intervals that overlap at one moment."""
    events = sorted([(start + SLACK, 1) for start, _ in intervals]
                    + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def timeline(records: list[dict]) -> str:
    """Which task ran on which device when, in seconds from the run's first start."""
    zero = min(r["start"] for r in records)
    return "\n".join(f"{r['start'] - zero:7.1f} {r['end'] - zero:7.1f}  {r['device']:<6} "
                     f"{r['task']}" for r in sorted(records, key=lambda r: r["start"]))


@pytest.mark.slow
def test_three_workers_lease_two_gpus_one_task_each_and_match_one_worker(tmp_path):
    shared, single = tmp_path / "three", tmp_path / "one"
    for folder in (shared, single):
        folder.mkdir()
    records = run(shared, 3)
    print("\n" + timeline(records))

    on_gpu = [r for r in records if r["device"] != "cpu"]
    assert {r["stage"] for r in on_gpu} == DEVICE_STAGES
    assert all(r["device"] == "cpu" for r in records if r["stage"] not in DEVICE_STAGES)
    assert {r["device"] for r in on_gpu} == {"gpu:0", "gpu:1"}
    for device in ("gpu:0", "gpu:1"):
        held = sorted((r["start"], r["end"]) for r in on_gpu if r["device"] == device)
        assert most_at_once(held) == 1, device
    assert most_at_once([(r["start"], r["end"]) for r in on_gpu]) == 2
    assert most_at_once([(r["start"], r["end"]) for r in records]) <= 3
    report = (shared / "reports" / "tiny" / "report.md").read_text()
    assert "## Busy time per device" in report and "| gpu:1 |" in report

    run(single, 1)
    tables = sorted(p.relative_to(single) for p in single.glob("reports/*/*.csv"))
    assert tables and sorted(p.relative_to(shared) for p in shared.glob("reports/*/*.csv")) \
        == tables
    for path in tables:
        assert (shared / path).read_bytes() == (single / path).read_bytes(), path
