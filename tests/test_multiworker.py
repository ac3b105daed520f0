"""Two worker processes under one central scheduler (luigid) share the tiny pipeline: every
task runs once, nothing temporary is left behind, and every output equals a one-process run."""

import collections
import configparser
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from test_tasks import TINY

TARGET = "ReproducePaper"
DATASET = "synthetic"
LUIGID = Path(sys.executable).with_name("luigid")
TIMEOUT = 420
TEMPORARY = ("luigi-tmp", ".partial", ".checkpoints", ".tmp-")
DONE = re.compile(r"\] Worker Worker\(.*\) done +(\S.*)$", re.MULTILINE)

COOPERATING = ("--worker-keep-alive",)
"""Keep-alive: a worker waits for the tasks another one runs instead of quitting as soon as it
has nothing runnable. Luigi counts a task that another worker ran as "already running" or
"not run" even once it is done, so cooperating workers exit 0 only with these two codes at 0;
failed tasks, missing data and scheduling errors keep their non-zero codes."""

SCHEDULER_CFG = """
[scheduler]
# A task that fails once is disabled, so a waiting worker stops instead of retrying forever.
retry_count = 1
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, server: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, f"luigid exited with {server.returncode}"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"luigid did not accept connections on 127.0.0.1:{port} in {timeout} s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def luigi_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "luigi", "--module", "tasks", TARGET, *args]


def luigi_env(folder: Path) -> dict:
    return dict(os.environ, LUIGI_CONFIG_PATH=str(folder / "tiny.cfg"))


def run_workers(folder: Path, logs: Path, port: int) -> list[tuple[int, str]]:
    """Two `luigi` processes on the scheduler at `port`, started together: one runs its tasks
    in-process, the other forks two task processes; each has its own pid-lock folder, as on
    separate machines. Their exit codes and logs."""
    workers, outputs = [], []
    try:
        for name, count in (("a", 1), ("b", 2)):
            outputs.append(open(logs / f"worker-{name}.log", "w"))
            workers.append(subprocess.Popen(
                luigi_command("--scheduler-host", "127.0.0.1", "--scheduler-port", str(port),
                              "--workers", str(count), *COOPERATING, "--log-level", "INFO",
                              "--lock-pid-dir", str(logs / f"lock-{name}")),
                cwd=folder, env=luigi_env(folder), stdout=outputs[-1],
                stderr=subprocess.STDOUT))
        deadline = time.monotonic() + TIMEOUT
        for worker in workers:
            worker.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for worker in workers:
            stop(worker)
        for output in outputs:
            output.close()
    return [(worker.returncode, Path(output.name).read_text())
            for worker, output in zip(workers, outputs)]


def run_under_luigid(folder: Path, logs: Path) -> list[tuple[int, str]]:
    """A central scheduler on a free loopback port for the duration of `run_workers`."""
    (logs / "scheduler.cfg").write_text(SCHEDULER_CFG)
    port = free_port()
    with open(logs / "luigid.out", "w") as output:
        server = subprocess.Popen(
            [str(LUIGID), "--port", str(port), "--address", "127.0.0.1",
             "--pidfile", str(logs / "luigid.pid"), "--logdir", str(logs),
             "--state-path", str(logs / "luigid-state.pickle")],
            cwd=logs, env=dict(os.environ, LUIGI_CONFIG_PATH=str(logs / "scheduler.cfg")),
            stdout=output, stderr=subprocess.STDOUT)
        try:
            wait_for_port(port, server)
            return run_workers(folder, logs, port)
        finally:
            stop(server)


def failure(log: str) -> str:
    """A worker log's first traceback and its last lines (Luigi's execution summary)."""
    start = log.find("Traceback")
    return (log[start:start + 2500] + "\n...\n" if start >= 0 else "") + log[-2000:]


def timed_tasks(folder: Path) -> collections.Counter:
    """How many times each task id finished, from the pipeline's timing log."""
    lines = (folder / "work" / "timings.jsonl").read_text().splitlines()
    return collections.Counter(json.loads(line)["task"] for line in lines if line.strip())


def leftovers(folder: Path) -> list[str]:
    return [str(p.relative_to(folder)) for p in folder.rglob("*")
            if any(mark in str(p.relative_to(folder)) for mark in TEMPORARY)]


def h5_contents(path: Path) -> dict:
    """Attributes of every group and dataset, and every dataset's array, by name. Of the
    shard's root attributes, the run facts lose their wall time, and the video list is sorted:
    the flow pool lists videos in the order they finish."""
    contents = {}
    with h5py.File(path, "r") as handle:
        root = dict(handle.attrs)
        info = json.loads(root["info"])
        info.pop("seconds", None)
        root.update(info=info, videos=json.loads(root["videos"]),
                    skipped=json.loads(root["skipped"]))
        contents["/"] = (root, None)
        handle.visititems(lambda name, item: contents.__setitem__(
            name, (dict(item.attrs), item[()] if isinstance(item, h5py.Dataset) else None)))
    return contents


def assert_same_h5(found: Path, expected: Path) -> None:
    have, want = h5_contents(found), h5_contents(expected)
    assert sorted(have) == sorted(want), found
    for name, (attrs, array) in want.items():
        other_attrs, other_array = have[name]
        assert sorted(other_attrs) == sorted(attrs), (found, name)
        for key, value in attrs.items():
            assert np.array_equal(other_attrs[key], value), (found, name, key)
        if array is None:
            assert other_array is None, (found, name)
        else:
            assert other_array.dtype == array.dtype, (found, name)
            assert np.array_equal(other_array, array), (found, name)


def manifest(folder: Path, path: Path) -> pd.DataFrame:
    """A manifest with its video paths relative to the run folder they were generated in."""
    frame = pd.read_parquet(folder / path)
    return frame.assign(path=[str(Path(p).relative_to(folder)) for p in frame["path"]])


def same_files(shared: Path, single: Path, pattern: str) -> list[Path]:
    """The files matching `pattern` in the single-process run, checked present in the shared
    run too."""
    paths = sorted(p.relative_to(single) for p in single.glob(pattern))
    assert paths, pattern
    assert sorted(p.relative_to(shared) for p in shared.glob(pattern)) == paths
    return paths


@pytest.mark.slow
def test_two_workers_under_luigid_run_each_task_once_and_match_one_process(tmp_path):
    shared, single, logs = tmp_path / "shared", tmp_path / "single", tmp_path / "logs"
    for folder in (shared, single, logs):
        folder.mkdir()
    for folder in (shared, single):
        (folder / "tiny.cfg").write_text(TINY)

    started = time.monotonic()
    results = run_under_luigid(shared, logs)
    print(f"\ntwo workers under luigid: {time.monotonic() - started:.0f} s")
    for code, log in results:
        assert code == 0, failure(log)

    started = time.monotonic()
    alone = subprocess.run(luigi_command("--local-scheduler",
                                         "--lock-pid-dir", str(logs / "lock-single")),
                           cwd=single, env=luigi_env(single), capture_output=True, text=True,
                           timeout=TIMEOUT)
    print(f"one process, local scheduler: {time.monotonic() - started:.0f} s")
    assert alone.returncode == 0, alone.stderr[-3000:]

    # Every task finished exactly once, the same tasks as alone, and both workers ran some.
    counts = timed_tasks(shared)
    assert [task for task, n in counts.items() if n != 1] == []
    assert set(counts) == set(timed_tasks(single))
    ran = [DONE.findall(log) for _, log in results]
    assert all(ran), "a worker ran no task"
    assert len(ran[0]) + len(ran[1]) == len(set(ran[0]) | set(ran[1])) == len(counts)
    import tasks
    shards = configparser.ConfigParser()
    shards.read_string(TINY)
    shards = range(int(shards["run"]["shards"]))
    sharded = ([tasks.ComputeFlow(dataset=DATASET, shard=s).task_id for s in shards]
               + [tasks.ExtractFeatures(dataset=DATASET, stream=stream, shard=s).task_id
                  for stream in tasks.STREAMS for s in shards])
    assert set(sharded) <= set(counts)

    for folder in (shared, single):
        assert leftovers(folder) == []

    # Outputs equal the one-process run's: flow and feature shards, localization tubes,
    # manifests, scores and the report's tables.
    shard_files = same_files(shared, single, "cache/**/*.h5")
    assert len(shard_files) == 3 * len(shards)
    for path in shard_files + same_files(shared, single, "work/**/*.h5"):
        assert_same_h5(shared / path, single / path)
    for path in same_files(shared, single, "work/**/manifest-*.parquet"):
        pd.testing.assert_frame_equal(manifest(shared, path), manifest(single, path))
    for path in same_files(shared, single, "work/*/*/*/scores.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(shared / path), pd.read_csv(single / path),
                                      check_exact=True)
    for path in same_files(shared, single, "reports/*/*.csv"):
        assert (shared / path).read_bytes() == (single / path).read_bytes(), path
