"""Device leasing: [run] devices, the GPUs a machine shows, and the per-machine lease that holds
one GPU per task, waits while all are held and dies with its process."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pipeline import devices
from pipeline.config_files import ConfigError

from test_config import use_config  # noqa: F401  (fixture)
from test_tasks import REPO

SMI = """GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-5d1c2e1a-0000-0000-0000-000000000000)
GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-6e2d3f2b-0000-0000-0000-000000000000)
  MIG 1g.10gb     Device  0: (UUID: MIG-0f2c0000-0000-0000-0000-000000000000)
GPU 3: NVIDIA H100 80GB HBM3 (UUID: GPU-7f3e403c-0000-0000-0000-000000000000)
"""


def test_the_setting_is_auto_none_or_a_list_of_gpu_indices():
    assert devices.parse_devices("auto") is None
    assert devices.parse_devices("none") == []
    assert devices.parse_devices(" 0, 1,3") == ["0", "1", "3"]
    for bad in ("gpu0", "", "0,,1", "0,1,0", "all"):
        with pytest.raises(ValueError):
            devices.parse_devices(bad)


def test_visible_gpus_from_cuda_visible_devices_and_nvidia_smi(monkeypatch):
    assert devices.cuda_visible("2,3") == ["2", "3"]
    assert devices.cuda_visible("GPU-5d1c,1") == ["GPU-5d1c", "1"]
    assert devices.cuda_visible("") == [] and devices.cuda_visible("-1") == []
    assert devices.cuda_visible("0,-1,2") == ["0"]  # CUDA stops at the first invalid entry
    assert devices.smi_gpus(SMI) == ["0", "1", "3"]
    assert devices.smi_gpus("NVIDIA-SMI has failed") == []
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")
    devices.visible_gpus.cache_clear()
    try:
        assert devices.gpus("auto") == ("4", "6")
        assert devices.gpus("none") == () and devices.gpus("1") == ("1",)
    finally:
        devices.visible_gpus.cache_clear()


def test_a_bad_setting_names_itself(use_config):  # noqa: F811
    from pipeline import config
    path = use_config("[run]\ndevices = gpu0\n")
    with pytest.raises(ConfigError, match=rf"^\[run\] devices = gpu0 must be auto, none or .* "
                                          rf"\(set in {path}\)$"):
        config.preflight()


def test_gpus_need_a_process_per_task_under_the_lease(use_config):  # noqa: F811
    from pipeline import config
    use_config("[run]\ndevices = 0,1\n[worker]\nforce_multiprocessing = false\n")
    with pytest.raises(ConfigError, match=r"^\[worker\] force_multiprocessing must be true"):
        config.preflight()
    use_config("[run]\ndevices = 0,1\n[worker]\nforce_multiprocessing = true\n"
               "task_process_context = pipeline.devices.TaskLease\n")
    config.preflight()
    import luigi.configuration
    assert luigi.configuration.get_config().getint("resources", "gpu") == 2
    use_config("[run]\ndevices = none\n")
    config.preflight()  # no GPU, nothing to lease: tasks may share a process


def test_leases_hand_out_each_gpu_once_and_wait_while_all_are_held(tmp_path):
    held, messages, third = [], [], []
    first = devices.leased(("0", "1"), tmp_path)
    second = devices.leased(("0", "1"), tmp_path)
    held += [first.__enter__(), second.__enter__()]
    assert held == ["gpu:0", "gpu:1"]

    def wait_for_one():
        with devices.leased(("0", "1"), tmp_path, messages.append) as device:
            third.append(device)

    waiter = threading.Thread(target=wait_for_one)
    waiter.start()
    time.sleep(3 * devices.POLL_SECONDS)
    assert third == [] and messages == ["waiting for a device: gpu:0, gpu:1 all leased"]
    second.__exit__(None, None, None)
    waiter.join(10)
    first.__exit__(None, None, None)
    assert third == ["gpu:1"] and len(messages) == 1
    with devices.leased((), tmp_path) as device:
        assert device == "cpu"


def test_a_device_task_sees_only_its_gpu_and_allocates_as_it_needs():
    assert devices.environment("gpu:3") == {"CUDA_VISIBLE_DEVICES": "3",
                                            "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
                                            "TF_FORCE_GPU_ALLOW_GROWTH": "true"}
    assert devices.environment("cpu")["CUDA_VISIBLE_DEVICES"] == ""


HOLD = '''
import os, time
from pathlib import Path
import luigi
import tasks

class Hold(tasks.DeviceTask):
    """Writes where it runs (pid, device, CUDA_VISIBLE_DEVICES), then holds it `seconds`."""
    name = luigi.Parameter()
    seconds = luigi.FloatParameter(default=0.0)

    def output(self):
        return luigi.LocalTarget(f"{self.name}.done")

    def run(self):
        Path(f"{self.name}.where").write_text(
            f"{os.getpid()} {self.device} {os.environ['CUDA_VISIBLE_DEVICES']}")
        time.sleep(self.seconds)
        Path(self.output().path).write_text(self.device)


class Threads(tasks.DeviceTask):
    """Writes the threads its TensorFlow was given."""

    def output(self):
        return luigi.LocalTarget("threads.txt")

    def run(self):
        import tensorflow as tf
        Path(self.output().path).write_text(
            f"{tf.config.threading.get_intra_op_parallelism_threads()} "
            f"{tf.config.threading.get_inter_op_parallelism_threads()}")


class Forked(Threads):
    """Threads, pending with a dependency: the scheduling process asks it for its dependencies
    before forking any task."""

    def requires(self):
        return Hold(name="first")
'''


def test_a_task_on_the_cpu_runs_the_configured_threads(tmp_path):
    (tmp_path / "hold.py").write_text(HOLD)
    (tmp_path / "cpu.cfg").write_text("[run]\ndevices = none\nthreads = 3\n")
    env = dict(os.environ, LUIGI_CONFIG_PATH=str(tmp_path / "cpu.cfg"),
               PYTHONPATH=os.pathsep.join([str(tmp_path), str(REPO)]))
    done = subprocess.run([sys.executable, "-m", "luigi", "--module", "hold", "Threads",
                           "--local-scheduler", "--workers", "2"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "threads.txt").read_text() == "3 3"


def test_threads_are_zero_or_more(use_config):  # noqa: F811
    from pipeline import config
    path = use_config("[run]\nthreads = -1\n")
    with pytest.raises(ConfigError, match=rf"^\[run\] threads must be >= 0, got -1 "
                                          rf"\(set in {path}\)$"):
        config.preflight()


def hold_command(folder: Path, name: str, seconds: float) -> subprocess.Popen:
    """`luigi Hold` in folder with one GPU to lease ([run] devices = 0); the lock folder is
    folder's own (TMPDIR), so other runs on this machine do not share the lease."""
    env = dict(os.environ, LUIGI_CONFIG_PATH=str(folder / "one-gpu.cfg"), TMPDIR=str(folder),
               PYTHONPATH=os.pathsep.join([str(folder), str(REPO)]))
    return subprocess.Popen(
        [sys.executable, "-m", "luigi", "--module", "hold", "Hold", "--name", name,
         "--seconds", str(seconds), "--local-scheduler", "--no-lock"],
        cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for(path: Path, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} did not appear in {timeout} s"
        time.sleep(0.05)
    time.sleep(0.1)
    return path.read_text()


def test_a_sigkilled_device_task_frees_its_gpu_for_a_waiting_task(tmp_path):
    (tmp_path / "hold.py").write_text(HOLD)
    (tmp_path / "one-gpu.cfg").write_text("[run]\ndevices = 0\n")
    commands = []
    try:
        commands.append(hold_command(tmp_path, "a", 600))
        pid, device, visible = wait_for(tmp_path / "a.where").split()
        assert (device, visible) == ("gpu:0", "0")
        assert int(pid) != commands[0].pid  # a process of its own, with --workers 1
        commands.append(hold_command(tmp_path, "b", 0))
        time.sleep(8)  # b's command starts, and waits for the GPU that a holds
        assert not (tmp_path / "b.where").exists() and commands[1].poll() is None
        os.kill(int(pid), signal.SIGKILL)
        assert wait_for(tmp_path / "b.done") == "gpu:0"
        out, _ = commands[1].communicate(timeout=60)
        assert commands[1].returncode == 0, out[-3000:]
        commands[0].communicate(timeout=60)
        assert commands[0].returncode != 0  # a's task died
    finally:
        for command in commands:
            if command.poll() is None:
                command.kill()
                command.wait()
    records = [json.loads(line) for line in
               (tmp_path / "work" / "timings.jsonl").read_text().splitlines()]
    assert [(r["stage"], r["device"], r["host"]) for r in records] == [
        ("Hold", "gpu:0", os.uname().nodename)]
    assert records[0]["end"] - records[0]["start"] == pytest.approx(records[0]["seconds"], abs=0.01)


def test_importing_the_tasks_does_not_import_tensorflow():
    """Every importer (the plan, benches, a command whose setting is wrong) is spared its
    start: on a machine without GPUs it prints lines that would bury a one-line error."""
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    done = subprocess.run([sys.executable, "-c",
                           "import sys, tasks; print('tensorflow' in sys.modules)"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-1] == "False"
    assert done.stderr == ""


def test_ctrl_c_while_tensorflow_is_imported_before_the_tasks_stops_the_command(tmp_path,
                                                                               monkeypatch):
    """The import runs where Luigi lets KeyboardInterrupt through (an event handler would
    swallow it, and the run would go on)."""
    import luigi.scheduler
    import luigi.worker

    import tasks

    class Pending(tasks.DeviceTask):
        def output(self):
            return luigi.LocalTarget(str(tmp_path / "never"))

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(devices, "import_tensorflow_before_tasks", interrupted)
    with luigi.worker.Worker(scheduler=luigi.scheduler.Scheduler()) as worker:
        with pytest.raises(KeyboardInterrupt):
            worker.add(Pending())


@pytest.mark.parametrize("shown, imported", [("", True), ("0", False)])
def test_task_processes_fork_with_tensorflow_imported_only_on_a_machine_without_gpus(
        tmp_path, shown, imported):
    """Without GPUs the scheduling process imports TensorFlow once a device task is pending, and
    `[run] threads` still applies in the task forked from it; with a GPU, TensorFlow must start
    in a task after its lease."""
    (tmp_path / "hold.py").write_text(HOLD)
    (tmp_path / "cpu.cfg").write_text("[run]\nthreads = 3\n")
    env = dict(os.environ, CUDA_VISIBLE_DEVICES=shown,
               LUIGI_CONFIG_PATH=str(tmp_path / "cpu.cfg"),
               PYTHONPATH=os.pathsep.join([str(tmp_path), str(REPO)]))
    done = subprocess.run([sys.executable, "-c",
                           "import sys, luigi, hold; "
                           "luigi.build([hold.Forked()], local_scheduler=True, workers=2); "
                           "print('tensorflow' in sys.modules)"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-1] == str(imported)
    if imported:
        assert (tmp_path / "threads.txt").read_text() == "3 3"
