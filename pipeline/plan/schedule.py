"""Wall time of a task graph on M machines of N Luigi workers and G GPUs each: a list schedule
(longest remaining path first) of the tasks' estimated seconds.

What limits parallelism here is modelled as the pipeline runs: a device task runs on one GPU of
its own when the machine has GPUs; a task that computes on the CPU (OpenCV flow, or a device
task on a machine without GPUs) uses every core of its machine (TV-L1's process pool, TensorFlow's
threads), so one such task runs per machine at a time; light tasks run beside them."""

from __future__ import annotations

import heapq
from dataclasses import dataclass


@dataclass(frozen=True)
class Job:
    """A task to schedule: its id, the ids it waits on, its seconds, and what it holds:
    "gpu" (a device task on a GPU machine), "cpu" (all cores) or "light"."""

    id: str
    requires: tuple[str, ...]
    seconds: float
    holds: str


def holds(device: bool, heavy: bool, gpus: int) -> str:
    """What a task holds while it runs (see the module's docstring)."""
    if device and gpus:
        return "gpu"
    return "cpu" if device or heavy else "light"


def wall_seconds(jobs: list[Job], workers: int, machines: int, gpus: int) -> float:
    """Seconds from start to the last task's end."""
    if workers < 1 or machines < 1:
        raise ValueError(f"workers and machines must be >= 1, got {workers} and {machines}")
    by_id = {job.id: job for job in jobs}
    dependants: dict[str, list[str]] = {job.id: [] for job in jobs}
    for job in jobs:
        for need in job.requires:
            dependants[need].append(job.id)
    remaining = _longest_paths(jobs, by_id, dependants)
    waiting = {job.id: len(job.requires) for job in jobs}
    ready = [job.id for job in jobs if not job.requires]
    free = [{"workers": workers, "gpu": gpus, "cpu": 1} for _ in range(machines)]
    running: list[tuple[float, str, int]] = []
    now = 0.0
    while ready or running:
        ready.sort(key=lambda i: -remaining[i])
        started = True
        while started:
            started = False
            for i in list(ready):
                machine = _machine_for(by_id[i], free)
                if machine is None:
                    continue
                _take(free[machine], by_id[i], -1)
                heapq.heappush(running, (now + by_id[i].seconds, i, machine))
                ready.remove(i)
                started = True
        if not running:
            raise ValueError("a task can never start: it needs a GPU and no machine has one")
        now, done, machine = heapq.heappop(running)
        _take(free[machine], by_id[done], +1)
        for after in dependants[done]:
            waiting[after] -= 1
            if not waiting[after]:
                ready.append(after)
    return now


def _machine_for(job: Job, free: list[dict]) -> int | None:
    for machine, slots in enumerate(free):
        if slots["workers"] and (job.holds == "light" or slots[job.holds]):
            return machine
    return None


def _take(slots: dict, job: Job, change: int) -> None:
    slots["workers"] += change
    if job.holds != "light":
        slots[job.holds] += change


def _longest_paths(jobs, by_id, dependants) -> dict[str, float]:
    """Each task's seconds plus the longest chain of tasks that wait on it."""
    longest: dict[str, float] = {}
    for job in reversed(jobs):  # jobs come dependencies first
        longest[job.id] = job.seconds + max((longest[d] for d in dependants[job.id]),
                                            default=0.0)
    return longest
