"""One device per TensorFlow task: a GPU leased for the task's whole run, so that a machine with
G GPUs runs G device tasks at once, each on its own GPU, beside any number of CPU tasks.

A lease is an fcntl lock on a per-device file in a per-machine folder (the temporary folder;
luigid may span machines, each leases its own GPUs). The kernel releases the lock when its
process ends, SIGKILL included, so no lease outlives its task. `TaskLease` takes it in the
task's own process ([worker] task_process_context and force_multiprocessing in luigi.cfg),
before TensorFlow starts there, and points CUDA_VISIBLE_DEVICES at the leased GPU: a process
whose TensorFlow has started keeps its devices.
"""

from __future__ import annotations

import fcntl
import functools
import logging
import os
import re
import subprocess
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Callable, Iterator

CPU = "cpu"
"""The device of a task that holds no GPU."""
POLL_SECONDS = 0.5
"""How often a task waiting for a device tries the leases again."""
TASK_PROCESS_CONTEXT = "pipeline.devices.TaskLease"
"""[worker] task_process_context: the lease around every task's run."""

logger = logging.getLogger("luigi-interface")


def parse_devices(text: str) -> list[str] | None:
    """[run] devices: "auto" -> None (every visible GPU), "none" -> [] (CPU only), "0,1,3" ->
    those GPUs, as nvidia-smi numbers them. ValueError names what is wrong."""
    value = text.strip()
    if value in ("auto", "none"):
        return None if value == "auto" else []
    gpus = [part.strip() for part in value.split(",")]
    bad = [gpu for gpu in gpus if not gpu.isdigit()]
    if bad or not gpus:
        raise ValueError(f"= {text} must be auto, none or a comma-separated list of GPU indices "
                         "such as 0,1,3")
    if len(set(gpus)) != len(gpus):
        raise ValueError(f"= {text} names a GPU twice")
    return gpus


def cuda_visible(value: str) -> list[str]:
    """The GPUs a CUDA_VISIBLE_DEVICES value shows: its entries up to the first invalid one
    (CUDA stops there; "" and "-1" show none)."""
    gpus = []
    for entry in (part.strip() for part in value.split(",")):
        if not entry or entry.startswith("-"):
            break
        gpus.append(entry)
    return gpus


def smi_gpus(listing: str) -> list[str]:
    """The GPU indices in `nvidia-smi -L` output ("GPU 0: NVIDIA H100 ... (UUID: GPU-...)")."""
    return re.findall(r"^GPU (\d+):", listing, re.MULTILINE)


@functools.cache
def visible_gpus() -> tuple[str, ...]:
    """Every GPU this machine shows, found without starting TensorFlow (which would keep them):
    CUDA_VISIBLE_DEVICES when set, else `nvidia-smi -L`, else /proc/driver/nvidia/gpus."""
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        return tuple(cuda_visible(os.environ["CUDA_VISIBLE_DEVICES"]))
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True,
                                 timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        listing = ""
    if smi_gpus(listing):
        return tuple(smi_gpus(listing))
    proc = Path("/proc/driver/nvidia/gpus")
    return tuple(str(i) for i in range(len(list(proc.iterdir())))) if proc.is_dir() else ()


def gpus(setting: str) -> tuple[str, ...]:
    """The GPUs that [run] devices = ``setting`` leases on this machine."""
    listed = parse_devices(setting)
    return visible_gpus() if listed is None else tuple(listed)


def import_tensorflow_before_tasks() -> None:
    """On a machine that shows no GPU, import TensorFlow in the scheduling process, so that
    each task process forked from it starts with it imported (4-5 s a device task here; the
    embedded default runs 99). Importing starts no device and none of TensorFlow's thread
    pools, so ``limit_threads`` still applies in each task. Where GPUs are, TensorFlow must
    first start in a task after its lease, so nothing is imported."""
    if not visible_gpus():
        import tensorflow  # noqa: F401


def lock_folder() -> Path:
    """The per-machine folder of the device lock files, shared by every user of the machine."""
    return Path(tempfile.gettempdir()) / "videolstm-devices"


def device_name(gpu: str) -> str:
    return f"gpu:{gpu}"


def _try_lock(path: Path) -> int | None:
    """An open descriptor holding the lock on ``path``, or None while another process holds it.
    Read-only, so that one user's lock file serves every user."""
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _make_folder(folder: Path) -> None:
    """The lock folder, writable by every user of the machine (sticky, as /tmp is)."""
    try:
        folder.mkdir(parents=True)
        os.chmod(folder, 0o1777)
    except FileExistsError:
        pass


def _acquire(gpu_ids: tuple[str, ...], folder: Path,
             waiting: Callable[[str], None] | None) -> tuple[str, int]:
    """The first of ``gpu_ids`` whose lock is free and the descriptor holding it; while every
    one is held, try again every POLL_SECONDS, calling ``waiting(message)`` once."""
    announced = False
    while True:
        for gpu in gpu_ids:
            fd = _try_lock(folder / f"gpu-{gpu}.lock")
            if fd is not None:
                return gpu, fd
        if not announced and waiting is not None:
            waiting(f"waiting for a device: {', '.join(map(device_name, gpu_ids))} all leased")
        announced = True
        time.sleep(POLL_SECONDS)


@contextmanager
def leased(gpu_ids: tuple[str, ...], folder: Path,
           waiting: Callable[[str], None] | None = None) -> Iterator[str]:
    """Hold one of ``gpu_ids`` for the body and yield its name ("cpu" when there are none);
    wait while every one is held, never fail for it."""
    if not gpu_ids:
        yield CPU
        return
    _make_folder(folder)
    gpu, fd = _acquire(gpu_ids, folder, waiting)
    try:
        yield device_name(gpu)
    finally:
        os.close(fd)


def environment(device: str) -> dict[str, str]:
    """What TensorFlow must find in a device task's environment before it starts: only the
    leased GPU (none for "cpu"), numbered as nvidia-smi numbers them, and memory allocated as
    needed rather than all of it at once."""
    gpu = device.removeprefix("gpu:") if device != CPU else ""
    return {"CUDA_VISIBLE_DEVICES": gpu, "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
            "TF_FORCE_GPU_ALLOW_GROWTH": "true"}


def limit_threads(threads: int) -> None:
    """TensorFlow's intra-op and inter-op threads in this process, set before it starts; 0
    leaves its default (one per core)."""
    if threads:
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


class TaskLease:
    """Luigi's [worker] task_process_context: around each task's run, in the task's process, a
    task whose ``uses_device()`` holds takes a lease (its ``device`` attribute names it) and
    sees only that GPU, or on the CPU runs [run] threads TensorFlow threads; other tasks run as
    they are. GPUs are leased only in a task process of its own: in the scheduling process
    TensorFlow would keep the first GPU it saw."""

    def __init__(self, process):
        self.process = process
        self.lease = ExitStack()

    def __enter__(self) -> "TaskLease":
        from pipeline import config
        task = self.process.task
        if not getattr(task, "uses_device", lambda: False)():
            return self
        gpu_ids = config.run().gpus()
        if gpu_ids and not self.process.use_multiprocessing:
            raise RuntimeError(f"{task}: a GPU is leased only in a task process of its own; "
                               "set [worker] force_multiprocessing = true")

        def waiting(message: str) -> None:
            logger.info("%s: %s", task, message)
            self.process.status_reporter.update_status_message(message)

        task.device = self.lease.enter_context(leased(gpu_ids, lock_folder(), waiting))
        if self.process.use_multiprocessing:  # in the scheduling process it would come too late
            os.environ.update(environment(task.device))
            if task.device == CPU:
                limit_threads(config.run().threads)
        return self

    def __exit__(self, *exc) -> bool:
        return self.lease.__exit__(*exc)
