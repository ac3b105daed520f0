"""Injected faults: SIGKILLed workers, SIGTERM and Ctrl-C, two commands writing one output,
damaged videos (a damaged frame, a same-size edit), split files and cache shards, splits no
model can be trained or tested on, bad and memory-exhausting settings, edited or damaged model
folders and a full disk (injected, and a real tmpfs). Each run either survives or stops with a
clear message naming the file or setting; nothing computed before the fault is lost; nothing
half-written is read as complete; the rerun equals an uninterrupted run.

Each scenario is a function returning an Outcome; the tests assert on it and bench/faults.py
prints the table of all of them. The scenarios after a finished run share one uninterrupted
run of the whole first stage and one model (the reference), copied per scenario.
"""

from __future__ import annotations

import configparser
import contextlib
import errno
import io
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from unittest import mock

import h5py
import numpy as np
import pandas as pd
import pytest

from pipeline import cache, sharding
from pipeline.manifest import read_manifest
from pipeline.video import read_frames, write_video
from test_tasks import TINY, luigi

EPOCHS = 4
"""Training epochs: enough left after the first checkpoint to kill the run in the middle."""
TRAIN = ("TrainModel", "--arch", "videolstm", "--stream", "rgb")
"""The reference model: VideoLSTM reads both streams' features, so its run makes all of stage 1."""
FLOW_SHARD = "cache/synthetic/flow-*/shard-000-of-002-*.h5"
RGB_SHARD = "cache/synthetic/features-rgb-*/shard-000-of-002-*.h5"
FLOW_FEATURES_SHARD = "cache/synthetic/features-flow-*/shard-000-of-002-*.h5"
MODEL = "work/synthetic/models/videolstm-motion-rgb-split1-" + "?" * 10
"""The reference model's folder (its name ends with a 10-character hash)."""


@dataclass
class Outcome:
    """What a fault did: whether the run survived it (or stopped with a clear message), the
    outputs made before it that were lost or changed, the outputs that are wrong (differ from
    an uninterrupted run, or half-written and taken as complete), and what the user was told."""

    fault: str
    survived: bool
    lost: list[str]
    wrong: list[str]
    message: str

    @property
    def ok(self) -> bool:
        return self.survived and not self.lost and not self.wrong


# ---------------------------------------------------------------- running and inspecting runs

def write_config(folder: Path, overrides: dict | None = None) -> None:
    """folder/tiny.cfg: TINY with EPOCHS training epochs and the given {section: {key: value}}."""
    parser = configparser.ConfigParser()
    parser.read_string(TINY)
    parser.read_dict({"train": {"epochs": EPOCHS}})
    parser.read_dict(overrides or {})
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "tiny.cfg", "w") as handle:
        parser.write(handle)


def run(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """A luigi command in folder (no pid lock: other runs of the same command may be going)."""
    with mock.patch.dict(os.environ, env):
        return luigi(folder, *args, "--no-lock")


def error_line(stderr: str) -> str:
    """The line that tells the user what went wrong: a one-line error, or the exception line
    that ends Luigi's report of a failed task (without the exception's module)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines
              if re.match(r"^(error: |[\w.]*(Error|Exception|Exit)\b: )", line)]
    return re.sub(r"^[\w.]*\.(?=\w+: )", "", (errors or lines or [""])[-1])


def one(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    assert len(found) == 1, f"{pattern}: {found}"
    return found[0]


def temporary_outputs(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*-luigi-tmp-*"))


def digests(folder: Path) -> dict[str, str]:
    """sha256 of every file under folder but the timings log (appended by every task)."""
    return {str(path.relative_to(folder)): cache.file_checksum(path)
            for path in sorted(folder.rglob("*"))
            if path.is_file() and path.name != "timings.jsonl"}


def lost_files(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return [f"{name} {'changed' if name in after else 'gone'}"
            for name, digest in before.items() if after.get(name) != digest]


def shard_content(path: Path) -> dict:
    """Every attribute and array of a shard but its run facts (timings); videos as a set (flow
    shards list them in the order their flow was done)."""
    content = {}
    with h5py.File(path, "r") as handle:
        content.update({f"@{key}": value for key, value in handle.attrs.items()
                        if key not in ("info", "videos")})
        content["@videos"] = sorted(json.loads(handle.attrs["videos"]))
        for video, group in handle.items():
            content.update({f"{video}@{key}": value for key, value in group.attrs.items()})
            content.update({f"{video}/{name}": data[()] for name, data in group.items()})
    return content


def model_weights(model_folder: Path) -> dict:
    """The weights saved in model.keras, by variable path, without loading the model."""
    with zipfile.ZipFile(model_folder / "model.keras") as archive:
        stored = io.BytesIO(archive.read("model.weights.h5"))
    weights = {}
    with h5py.File(stored, "r") as handle:
        handle.visititems(lambda name, item: weights.update({name: item[()]})
                          if isinstance(item, h5py.Dataset) else None)
    return weights


def differences(have: dict, want: dict, what: str) -> list[str]:
    """Keys whose values differ between two contents (arrays compared exactly)."""
    keys = sorted(set(have) | set(want))
    return [f"{what}: {key} differs" for key in keys
            if key not in have or key not in want or not np.array_equal(have[key], want[key])]


def copy_finished(reference: Path, folder: Path) -> None:
    """The reference's config, dataset and caches (not its work folder: manifests hold absolute
    paths and are remade in the copy). The large network files are hard links: no run writes
    into an existing file."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(reference / "tiny.cfg", folder / "tiny.cfg")
    shutil.copytree(reference / "data", folder / "data")
    shutil.copytree(reference / "cache", folder / "cache",
                    copy_function=lambda src, dst: (os.link if "/convnet-" in src
                                                    else shutil.copy2)(src, dst))


def group_processes(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(stat.parent.name))
    return alive


def kill_when(folder: Path, args: tuple[str, ...], ready: Callable[[int], bool],
              timeout: float = 600) -> tuple[bool, list[int]]:
    """Start a luigi command in its own process group and SIGKILL the whole group (spawned
    flow workers included) as soon as ready(pgid) holds. Returns whether it was killed before
    it ended, and the processes of the group still alive a few seconds after the kill."""
    killed, _, alive = signal_when(folder, args, ready, signal.SIGKILL, True, timeout)
    return killed, alive


def as_in_a_terminal() -> None:
    """Ctrl-C's default action in the command, as a terminal's foreground command has it: a
    test run started in the background (`cmd &` in a script) inherits SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def signal_when(folder: Path, args: tuple[str, ...], ready: Callable[[int], bool],
                stop: signal.Signals, to_group: bool, timeout: float = 600
                ) -> tuple[bool, float, list[int]]:
    """Start a luigi command in its own process group and send ``stop`` to the group (as
    timeout, SLURM and Ctrl-C do) or to the command alone (as Kubernetes does) as soon as
    ready(pgid) holds. Returns whether it was signalled before it ended, the seconds it took to
    end after the signal (a minute at most, then the group is killed), and the processes of the
    group still alive a few seconds after it ended."""
    env = dict(os.environ, LUIGI_CONFIG_PATH=str(folder / "tiny.cfg"))
    with open(folder / "killed.log", "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "luigi", "--module", "tasks", *args, "--local-scheduler",
             "--no-lock"], cwd=folder, env=env, stdout=log, stderr=log, start_new_session=True,
            preexec_fn=as_in_a_terminal)
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline and not ready(process.pid):
        time.sleep(0.002)
    if process.poll() is not None:
        return False, 0.0, []
    (os.killpg if to_group else os.kill)(process.pid, stop)
    sent = time.monotonic()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    seconds = time.monotonic() - sent
    deadline = time.monotonic() + 10
    while group_processes(process.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = group_processes(process.pid)
    for pid in alive:
        os.kill(pid, signal.SIGKILL)
    return True, seconds, alive


def half_written_read_as_complete(paths: list[Path]) -> list[str]:
    """Temporary outputs that a reader would accept as complete shards."""
    accepted = []
    for path in paths:
        if path.is_file():
            try:
                cache.Shard(path).close()
            except cache.CacheCorruptError:
                continue
            accepted.append(f"{path.name} read as a complete shard")
    return accepted


@contextlib.contextmanager
def in_process(folder: Path):
    """Luigi in this process, reading folder/tiny.cfg and writing under folder; the settings
    and working folder in force before are restored after."""
    import tasks  # noqa: F401  (its import puts the embedded luigi.cfg first)
    from luigi.configuration import LuigiConfigParser
    saved = LuigiConfigParser._instance, LuigiConfigParser._config_paths
    cwd = os.getcwd()
    LuigiConfigParser._instance = None
    LuigiConfigParser._config_paths = [*saved[1], str(folder / "tiny.cfg")]
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(cwd)
        LuigiConfigParser._instance, LuigiConfigParser._config_paths = saved


class TaskErrors(logging.Handler):
    """The exceptions of the tasks Luigi reports as failed in this process."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.errors: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.errors.append(record.exc_info[1])


# ---------------------------------------------------------------- the reference run

def prepare_reference(folder: Path) -> Path:
    """An uninterrupted run of the whole first stage and the VideoLSTM rgb model."""
    write_config(folder)
    done = run(folder, *TRAIN)
    assert done.returncode == 0, done.stderr[-3000:]
    return folder


# ---------------------------------------------------------------- 1. SIGKILL mid-task

def kill_mid_shard(reference: Path, folder: Path, fault: str, pattern: str,
                   args: tuple[str, ...], children: int) -> Outcome:
    """Delete one shard of a finished run, rerun its task and SIGKILL it as soon as its
    temporary output exists (and `children` worker processes run), then rerun it."""
    copy_finished(reference, folder)
    shard = one(folder, pattern)
    shard.unlink()
    before = digests(folder / "cache")
    killed, alive = kill_when(folder, args, lambda pgid: bool(temporary_outputs(folder / "cache"))
                              and len(group_processes(pgid)) > children)
    leftovers = temporary_outputs(folder / "cache")
    wrong = [f"process {pid} survived the kill" for pid in alive]
    wrong += [f"{shard.name} exists after the kill"] if shard.exists() else []
    wrong += half_written_read_as_complete(leftovers)
    if not killed or not leftovers:
        return Outcome(fault, False, [], wrong, "the task ended before it could be killed")
    again = run(folder, *args)
    if again.returncode != 0:
        return Outcome(fault, False, [], wrong, error_line(again.stderr))
    wrong += differences(shard_content(shard), shard_content(one(reference, pattern)),
                         shard.name)
    return Outcome(fault, True, lost_files(before, digests(folder / "cache")), wrong,
                   f"killed while writing {leftovers[0].name}; the rerun made it anew")


def kill_in_flow(reference: Path, folder: Path) -> Outcome:
    return kill_mid_shard(reference, folder, "SIGKILL mid ComputeFlow shard", FLOW_SHARD,
                          ("ComputeFlow", "--shard", "0"), children=2)


def kill_in_features(reference: Path, folder: Path) -> Outcome:
    return kill_mid_shard(reference, folder, "SIGKILL mid ExtractFeatures shard", RGB_SHARD,
                          ("ExtractFeatures", "--stream", "rgb", "--shard", "0"), children=0)


def kill_in_training(reference: Path, folder: Path) -> Outcome:
    """SIGKILL TrainModel as soon as its first checkpoint exists, then rerun it: it resumes
    after the checkpointed epoch, removes the killed run's temporary model folder and ends with
    the uninterrupted run's weights."""
    fault = "SIGKILL mid TrainModel epoch"
    copy_finished(reference, folder)
    before = digests(folder / "cache")
    state = folder / "work" / "synthetic" / "models"
    killed, alive = kill_when(folder, TRAIN,
                              lambda _: any(state.glob("*.checkpoints/state.json")))
    wrong = [f"process {pid} survived the kill" for pid in alive]
    if not killed:
        return Outcome(fault, False, [], wrong, "training ended before it could be killed")
    wrong += [f"{p.name} exists after the kill" for p in folder.glob(MODEL)]
    checkpoint = json.loads(one(folder, f"{MODEL}.checkpoints/state.json").read_text())
    if checkpoint["epoch"] >= EPOCHS - 1:
        return Outcome(fault, False, [], wrong, "the kill came after the last epoch")
    again = run(folder, *TRAIN)
    if again.returncode != 0:
        return Outcome(fault, False, [], wrong, error_line(again.stderr))
    model = one(folder, MODEL)
    history = pd.read_csv(model / "history.csv")
    if list(history["epoch"]) != list(range(EPOCHS)):
        wrong.append(f"history.csv has epochs {list(history['epoch'])}")
    resumed = history.iloc[:checkpoint["epoch"] + 1].to_dict("records")
    if resumed != checkpoint["history"]:
        wrong.append("history.csv does not start with the checkpoint's epochs: training "
                     "started over")
    wrong += [f"{p.name} left after training" for p in folder.glob(f"{MODEL}.checkpoints")]
    wrong += [f"{p.name} left after the rerun" for p in temporary_outputs(folder / "work")]
    wrong += differences(model_weights(model), model_weights(one(reference, MODEL)),
                         "model weights")
    return Outcome(fault, True, lost_files(before, digests(folder / "cache")), wrong,
                   f"killed after epoch {checkpoint['epoch']}; the rerun resumed at epoch "
                   f"{checkpoint['epoch'] + 1}")


# ---------------------------------------------------------------- 2. damaged videos

def train_videos(folder: Path) -> list[Path]:
    """The first training video of each class of the generated dataset."""
    root = one(folder, "data/synthetic-*")
    listed = (root / "ucfTrainTestlist" / "trainlist01.txt").read_text().split("\n")
    firsts = {}
    for line in filter(None, listed):
        name = line.split()[0]
        firsts.setdefault(name.split("/")[0], root / "UCF-101" / name)
    return list(firsts.values())


def damage_videos(folder: Path) -> tuple[dict[str, str], dict[str, int]]:
    """Generate the dataset and its manifest, then damage one training video of each class:
    truncated and emptied before the manifest was made, shortened after. Returns the video
    that must be skipped with its reason, and the readable damaged ones with the frame count
    they decode to (the truncated one's header still counts 8: trusted is what decodes)."""
    assert run(folder, "GenerateSynthetic").returncode == 0
    truncated, empty, short = train_videos(folder)
    truncated.write_bytes(truncated.read_bytes()[:truncated.stat().st_size // 2])
    empty.write_bytes(b"")
    assert run(folder, "Manifest").returncode == 0
    frames = read_frames(short)
    short.unlink()
    write_video(short, frames[:len(frames) - 3])
    return ({empty.stem: "cannot open video"},
            {truncated.stem: len(read_frames(truncated)), short.stem: len(frames) - 3})


def skipped_in_report(report: str) -> dict[str, str]:
    """The report's "Skipped videos" lines, by "<video> (<stage>)"."""
    section = report.split("## Skipped videos", 1)[1]
    return dict(re.findall(r"^- synthetic/(\S+ \([^)]*\)): (.*)$", section, re.MULTILINE))


def damaged_videos(folder: Path) -> Outcome:
    """A truncated, an empty and a shortened video: the whole pipeline runs; the empty one is a
    recorded skip with its reason in every shard stage and in the report; the truncated one is
    kept with the frames it decodes (its header's count recorded as a disagreement); the one
    changed after the manifest gets a new manifest (its fingerprint changed) and is cached at
    its new length; every other video is cached."""
    fault = "truncated, empty and short videos"
    write_config(folder)
    skipped, readable = damage_videos(folder)
    done = run(folder, "ReproducePaper")
    if done.returncode != 0:
        return Outcome(fault, False, [], [], error_line(done.stderr))
    listed = skipped_in_report((folder / "reports" / "tiny" / "report.md").read_text())
    wrong = []
    for video, reason in skipped.items():
        for stage in ("ComputeFlow", "ExtractFeatures rgb", "ExtractFeatures flow"):
            if not re.search(reason, listed.get(f"{video} ({stage})", "")):
                wrong.append(f"{video} ({stage}) not skipped for /{reason}/ in the report")
    manifests = sorted(folder.glob("work/synthetic/manifest-*"), key=lambda p: p.stat().st_mtime)
    if len(manifests) != 2:
        wrong.append(f"{len(manifests)} manifests: the change after the first went unnoticed")
    videos = set(read_manifest(manifests[-1]).video_id)
    lost = []
    for stage in ("flow", "features-rgb", "features-flow"):
        cached, lengths = set(), {}
        for path in folder.glob(f"cache/synthetic/{stage}-*/shard-*.h5"):
            with cache.Shard(path) as shard:
                cached |= set(shard.videos)
                lengths.update({video: shard.attrs(video)["n_frames"]
                                for video in readable if video in shard.videos})
        wrong += [f"{video} cached in {stage}" for video in sorted(cached & set(skipped))]
        wrong += [f"{video} holds {lengths.get(video)} frames in {stage}, decodes {count}"
                  for video, count in readable.items()
                  if lengths.get(video) != count - (stage == "features-flow")]
        lost += [f"{video} missing from {stage}" for video in sorted(videos - set(skipped)
                                                                     - cached)]
    first = min(skipped)
    return Outcome(fault, True, lost, wrong, f"{len(skipped)} skipped, in the report; "
                   f"{first}: {listed.get(f'{first} (ComputeFlow)', '')[-60:]}; "
                   f"{len(readable)} kept at their decoded length")


def damaged_videos_strict(folder: Path) -> Outcome:
    """A truncated and an empty training video with [run] strict = true: the manifest stops with
    an error naming one of them (the truncated one decodes fewer frames than its annotation
    counts, so its boxes would not line up) and writes nothing."""
    fault = "damaged videos, [run] strict = true"
    write_config(folder, {"run": {"strict": "true"}})
    assert run(folder, "GenerateSynthetic").returncode == 0
    truncated, empty, _ = train_videos(folder)
    truncated.write_bytes(truncated.read_bytes()[:truncated.stat().st_size // 2])
    empty.write_bytes(b"")
    done = run(folder, "Manifest")
    message = error_line(done.stderr)
    wrong = [str(p.relative_to(folder)) + " written" for p in folder.glob("work/synthetic/man*")]
    wrong += [f"{path.name} left behind" for path in temporary_outputs(folder)]
    named = any(f"{video.name}" in message for video in (truncated, empty))
    return Outcome(fault, done.returncode != 0 and named, [], wrong, message)


def missing_listed_video(folder: Path) -> Outcome:
    """A training split file naming a video that is not there: Manifest stops with an error
    naming the split file and the video, and writes no manifest."""
    fault = "split file names a missing video"
    write_config(folder)
    assert run(folder, "GenerateSynthetic").returncode == 0
    split = one(folder, "data/synthetic-*/ucfTrainTestlist/trainlist01.txt")
    first = split.read_text().split("\n")[0].split()
    missing = f"{first[0].split('/')[0]}/v_Missing_g99_c01.avi"
    split.write_text(split.read_text().rstrip("\n") + f"\n{missing} {first[1]}\n")
    done = run(folder, "Manifest")
    message = error_line(done.stderr)
    clear = done.returncode != 0 and "trainlist01.txt" in message and missing in message
    wrong = [str(p.relative_to(folder)) + " written" for p in folder.glob("work/synthetic/*")]
    return Outcome(fault, clear, [], wrong, message)


# ---------------------------------------------------------------- 3. damaged cache shards

def flip_mid_chunk(path: Path) -> None:
    """Flip 8 bytes in the middle of the stored chunk nearest the middle of the file."""
    with h5py.File(path, "r") as handle:
        chunks = [data.id.get_chunk_info(i) for group in handle.values()
                  for data in group.values() for i in range(data.id.get_num_chunks())]
    chunk = min(chunks, key=lambda c: abs(c.byte_offset - path.stat().st_size // 2))
    data = bytearray(path.read_bytes())
    middle = chunk.byte_offset + chunk.size // 2
    data[middle:middle + 8] = bytes(b ^ 0xFF for b in data[middle:middle + 8])
    path.unlink()
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.unlink()
    path.write_bytes(data[:len(data) // 2])


def other_schema(path: Path) -> None:
    with h5py.File(path, "r+") as handle:
        handle.attrs["schema_version"] = cache.SCHEMA_VERSION + 1


def damaged_shard(reference: Path, folder: Path, fault: str, pattern: str, damage,
                  args: tuple[str, ...], expected: type[cache.CacheError],
                  remove: tuple[str, ...] = ()) -> Outcome:
    """Damage one shard of a finished run and run a task that reads it: the task stops with
    an error naming the file and advising to delete it. Deleting it as advised, the same
    command completes and equals the reference."""
    copy_finished(reference, folder)
    for name in remove:
        one(folder, name).unlink()
    shard = one(folder, pattern)
    damage(shard)
    before = {name: digest for name, digest in digests(folder / "cache").items()
              if name != str(shard.relative_to(folder / "cache"))}
    failed = run(folder, *args)
    message = error_line(failed.stderr)
    clear = (failed.returncode != 0 and expected.__name__ in message and "delete" in message
             and str(shard.relative_to(folder)) in message)
    if not clear:
        return Outcome(fault, False, [], [], message)
    shard.unlink()
    again = run(folder, *args)
    if again.returncode != 0:
        return Outcome(fault, False, [], [], error_line(again.stderr))
    wrong = differences(shard_content(shard), shard_content(one(reference, pattern)),
                        shard.name)
    for name in remove:
        wrong += differences(shard_content(one(folder, name)),
                             shard_content(one(reference, name)), name)
    if args == TRAIN:
        wrong += differences(model_weights(one(folder, MODEL)),
                             model_weights(one(reference, MODEL)), "model weights")
    return Outcome(fault, True, lost_files(before, digests(folder / "cache")), wrong, message)


def flipped_flow_shard(reference: Path, folder: Path) -> Outcome:
    return damaged_shard(reference, folder, "bytes flipped mid flow shard", FLOW_SHARD,
                         flip_mid_chunk, ("ExtractFeatures", "--stream", "flow", "--shard", "0"),
                         cache.CacheCorruptError, remove=(FLOW_FEATURES_SHARD,))


def truncated_feature_shard(reference: Path, folder: Path) -> Outcome:
    return damaged_shard(reference, folder, "truncated feature shard", RGB_SHARD, truncate,
                         TRAIN, cache.CacheCorruptError)


def other_schema_shard(reference: Path, folder: Path) -> Outcome:
    return damaged_shard(reference, folder, "feature shard of another schema_version",
                         RGB_SHARD, other_schema, TRAIN, cache.CacheMismatchError)


def write_small_shard(path: Path) -> dict:
    """A shard like ComputeFlow's and ExtractFeatures' (uint8 flow, float16 features, a skip);
    returns the arrays written."""
    rng = np.random.default_rng(0)
    arrays = {f"v_{i}": {"flow": (128 + rng.normal(0, 6, (5, 24, 32, 2))).astype(np.uint8),
                         "fc7": rng.normal(0, 1, (5, 64)).astype(np.float16)} for i in range(3)}
    with cache.ShardWriter(path, cache.describe("flow", {"bound": 20.0})) as writer:
        for video, named in arrays.items():
            writer.add(video, named, {"n_frames": 6})
        writer.skip("v_broken", "cannot open v_broken.avi")
    return arrays


def read_like_downstream(path: Path, expected: dict) -> dict:
    """What the pipeline's readers take from a shard: videos, skips, every frame."""
    with cache.Shard(path, expected) as shard:
        return {"videos": shard.videos, "skipped": shard.skipped,
                **{f"{video}/{name}": np.stack(list(shard.iter_frames(video, name, chunk=2)))
                   for video in shard.videos for name in ("flow", "fc7")}}


def flipped_anywhere(folder: Path, flips: int = 600) -> Outcome:
    """One byte flipped at each of `flips` offsets spread over a shard: every read either
    gives exactly what was written (unused bytes) or a cache error naming the file."""
    fault = f"1 byte flipped at {flips} offsets of a shard"
    folder.mkdir(parents=True, exist_ok=True)
    original = folder / "shard.h5"
    write_small_shard(original)
    expected = cache.describe("flow", {"bound": 20.0})
    want = read_like_downstream(original, expected)
    data = original.read_bytes()
    damaged, wrong, errors = folder / "damaged.h5", [], 0
    for offset in np.linspace(0, len(data) - 1, flips).astype(int):
        flipped = bytearray(data)
        flipped[offset] ^= 0xFF
        damaged.write_bytes(bytes(flipped))
        try:
            have = read_like_downstream(damaged, expected)
        except cache.CacheError as error:
            errors += 1
            if str(damaged) not in str(error):
                wrong.append(f"offset {offset}: error without the file name: {error}")
            continue
        except Exception as error:  # noqa: BLE001  (any other error is the finding)
            wrong.append(f"offset {offset}: {type(error).__name__}: {error}")
            continue
        if differences(have, want, ""):
            wrong.append(f"offset {offset}: read back other values, no error")
    return Outcome(fault, not wrong, [], wrong,
                   f"{errors} named cache errors, {flips - errors - len(wrong)} unused bytes")


# ---------------------------------------------------------------- 4. bad settings

BAD_SETTINGS = {
    "zero size: [run] shards = 0": ({"run": {"shards": "0"}}, ("ReproducePaper",), "[run] shards"),
    "negative size: [synthetic] width = -64": ({"synthetic": {"width": "-64"}},
                                               ("ReproducePaper",), "width"),
    "zero size: [model] hidden = 0": ({"model": {"hidden": "0"}}, ("ReproducePaper",),
                                      "hidden"),
    "unknown architecture: --arch foo": ({}, ("TrainModel", "--arch", "foo"), "--arch"),
    "no dataset folders: [run] dataset = ucf101": ({"run": {"dataset": "ucf101"}},
                                                   ("ReproducePaper",), "[ucf101] videos"),
    "no ImageNet weights in KERAS_HOME": ({"convnet": {"weights": "imagenet",
                                                       "image_size": "224"}},
                                          ("ReproducePaper",), "[convnet]"),
    "unknown section: [trian] epochs = 3": ({"trian": {"epochs": "3"}}, ("ReproducePaper",),
                                            "unknown section [trian]; did you mean [train]?"),
    "unknown key: [train] epoch = 3": ({"train": {"epoch": "3"}}, ("ReproducePaper",),
                                       "[train] epoch = 3: unknown key; did you mean epochs?"),
    'quoted value: [paths] cache = "/tmp/x"': ({"paths": {"cache": '"/tmp/x"'}},
                                               ("ReproducePaper",), "drop the quotes"),
    'quoted value: [convnet] weights = "none"': ({"convnet": {"weights": '"none"'}},
                                                 ("ReproducePaper",), "drop the quotes"),
    "not a number: [train] epochs = three": ({"train": {"epochs": "three"}},
                                             ("ReproducePaper",), "[train] epochs = three"),
    "not a dataset: [run] dataset = ucf102": ({"run": {"dataset": "ucf102"}},
                                              ("ReproducePaper",), "[run] dataset = ucf102"),
    "not a VGG-16 layer: [convnet] finetune_from = fc9": (
        {"convnet": {"finetune_from": "fc9"}}, ("ReproducePaper",), "[convnet] finetune_from"),
    "negative seed: [run] seed = -1": ({"run": {"seed": "-1"}}, ("ReproducePaper",),
                                       "[run] seed"),
    "not a device list: [run] devices = gpu0": ({"run": {"devices": "gpu0"}},
                                                ("ReproducePaper",), "[run] devices = gpu0"),
    "missing score file: [fusion] idt": ({"fusion": {"idt": "scores/idt_{dataset}.csv"}},
                                         ("ReproducePaper",), "[fusion] idt"),
}


def bad_setting(folder: Path, fault: str) -> Outcome:
    """The command exits non-zero with one line on stderr naming the setting, and makes
    nothing (no data, cache, work or reports folder)."""
    overrides, args, setting = BAD_SETTINGS[fault]
    write_config(folder, overrides)
    keras_home = folder / "keras-home"
    keras_home.mkdir()
    done = run(folder, *args, KERAS_HOME=str(keras_home))
    lines = done.stderr.strip().splitlines()
    clear = (done.returncode != 0 and len(lines) == 1 and lines[0].startswith("error: ")
             and setting in lines[0])
    made = sorted(str(p.relative_to(folder)) for p in folder.iterdir()
                  if p.name not in ("tiny.cfg", "keras-home"))
    return Outcome(fault, clear, [], [f"{name} made" for name in made],
                   lines[0] if len(lines) == 1 else f"{len(lines)} lines: {done.stderr[-200:]}")


# ---------------------------------------------------------------- 5. full disk

def fail_after_first_video(add):
    """ShardWriter.add that stores the first video and then finds the disk full."""
    def add_or_fail(writer, video_id, arrays, attrs=None):
        if writer.videos:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(writer.path))
        return add(writer, video_id, arrays, attrs)
    return add_or_fail


def full_disk(folder: Path) -> Outcome:
    """ENOSPC while writing the second video of flow shard 1 (shard 0 done): the task fails,
    its temporary file is removed, shard 0 is intact, the rerun equals an uninterrupted run."""
    import luigi
    import tasks
    fault = "disk full (ENOSPC) mid ComputeFlow shard"
    clean, faulty = folder / "uninterrupted", folder / "faulty"
    for place in (clean, faulty):
        # the task runs in this process, where the patched writer and the error handler are
        write_config(place, {"flow": {"processes": "1"}, "run": {"devices": "none"},
                             "worker": {"force_multiprocessing": "false"}})
    with in_process(clean):
        assert luigi.build([tasks.ComputeFlow(shard=1)], local_scheduler=True, no_lock=True)
    with in_process(faulty):
        assert luigi.build([tasks.ComputeFlow(shard=0)], local_scheduler=True, no_lock=True)
        before = digests(faulty)
        failures = TaskErrors()
        logging.getLogger("luigi-interface").addHandler(failures)
        try:
            with mock.patch.object(cache.ShardWriter, "add",
                                   fail_after_first_video(cache.ShardWriter.add)):
                failed = not luigi.build([tasks.ComputeFlow(shard=1)], local_scheduler=True,
                                         no_lock=True)
        finally:
            logging.getLogger("luigi-interface").removeHandler(failures)
        message = str(failures.errors[-1]) if failures.errors else "no error reported"
        wrong = [f"{path.name} left behind" for path in temporary_outputs(faulty)]
        wrong += [f"{p.name} exists after the failure" for p in faulty.glob(
            "cache/synthetic/flow-*/shard-001-of-002-*.h5")]
        lost = lost_files(before, digests(faulty))
        rerun = luigi.build([tasks.ComputeFlow(shard=1)], local_scheduler=True, no_lock=True)
    if not (failed and rerun):
        return Outcome(fault, False, lost, wrong, message)
    pattern = "cache/synthetic/flow-*/shard-001-of-002-*.h5"
    wrong += differences(shard_content(one(faulty, pattern)), shard_content(one(clean, pattern)),
                         "shard 1")
    return Outcome(fault, "No space left on device" in message, lost, wrong, message)


# ---------------------------------------------------------------- 6. stops and concurrent commands

def stop_mid_flow(reference: Path, folder: Path, fault: str, stop: signal.Signals,
                  to_group: bool) -> Outcome:
    """Delete one flow shard of a finished run, rerun its task and stop it with ``stop`` while
    its workers compute: it ends within seconds, leaving no process and no temporary output;
    the rerun equals the reference."""
    copy_finished(reference, folder)
    shard = one(folder, FLOW_SHARD)
    shard.unlink()
    before = digests(folder / "cache")
    args = ("ComputeFlow", "--shard", "0")
    stopped, seconds, alive = signal_when(
        folder, args, lambda pgid: bool(temporary_outputs(folder / "cache"))
        and len(group_processes(pgid)) > 2, stop, to_group)
    if not stopped:
        return Outcome(fault, False, [], [], "the task ended before it could be stopped")
    wrong = [f"process {pid} survived the stop" for pid in alive]
    wrong += [f"{path.name} left behind" for path in temporary_outputs(folder / "cache")]
    wrong += [f"{shard.name} exists after the stop"] if shard.exists() else []
    wrong += [f"took {seconds:.0f} s to stop"] if seconds > 15 else []
    again = run(folder, *args)
    if again.returncode != 0:
        return Outcome(fault, False, [], wrong, error_line(again.stderr))
    wrong += differences(shard_content(shard), shard_content(one(reference, FLOW_SHARD)),
                         shard.name)
    return Outcome(fault, True, lost_files(before, digests(folder / "cache")), wrong,
                   f"stopped in {seconds:.1f} s: {error_line((folder / 'killed.log').read_text())}")


def sigterm_to_command(reference: Path, folder: Path) -> Outcome:
    return stop_mid_flow(reference, folder, "SIGTERM to the command mid ComputeFlow "
                         "(Kubernetes)", signal.SIGTERM, to_group=False)


def sigterm_to_group(reference: Path, folder: Path) -> Outcome:
    return stop_mid_flow(reference, folder, "SIGTERM to the process group mid ComputeFlow "
                         "(timeout, SLURM)", signal.SIGTERM, to_group=True)


def sigint_to_group(reference: Path, folder: Path) -> Outcome:
    return stop_mid_flow(reference, folder, "SIGINT (Ctrl-C) mid ComputeFlow", signal.SIGINT,
                         to_group=True)


def two_commands_one_shard(reference: Path, folder: Path) -> Outcome:
    """Two identical --local-scheduler commands on one cache: the second writer of the shard
    waits for the first and then does nothing; both exit 0, no temporary copy or lock file is
    left, and the shard equals the reference."""
    fault = "two commands write one flow shard at once"
    copy_finished(reference, folder)
    shard = one(folder, FLOW_SHARD)
    shard.unlink()
    env = dict(os.environ, LUIGI_CONFIG_PATH=str(folder / "tiny.cfg"))
    logs = [folder / f"command{i}.log" for i in (1, 2)]
    commands = []
    for log in logs:
        with open(log, "w") as handle:
            commands.append(subprocess.Popen(
                [sys.executable, "-m", "luigi", "--module", "tasks", "ComputeFlow", "--shard",
                 "0", "--local-scheduler", "--no-lock"], cwd=folder, env=env, stdout=handle,
                stderr=handle))
    codes = [command.wait(timeout=900) for command in commands]
    texts = [log.read_text() for log in logs]
    wrong = [f"{path.name} left behind" for path in temporary_outputs(folder / "cache")]
    wrong += [f"{path.name} left behind" for path in (folder / "cache").rglob("*.lock")]
    if any(codes) or not shard.exists():
        failed = next((text for code, text in zip(codes, texts) if code), "")
        return Outcome(fault, False, [], wrong, error_line(failed) or "no shard made")
    wrong += differences(shard_content(shard), shard_content(one(reference, FLOW_SHARD)),
                         shard.name)
    waited = any("completed by another command meanwhile" in text for text in texts)
    return Outcome(fault, True, [], wrong, "the second writer waited, then did nothing"
                   if waited else "the commands did not overlap")


# ---------------------------------------------------------------- 7. splits a run must refuse

UCF_SPEC = dict(classes=3, train_per_class=2, test_per_class=1, frames=8, width=64, height=48)
"""TINY's synthetic dataset, written in UCF101's layout and read as UCF101 (no boxes)."""


def ucf101_copy(folder: Path) -> Path:
    """folder/tiny.cfg running UCF101 on a tiny UCF101-format dataset; returns its split folder."""
    from pipeline.datasets import synthetic
    root = synthetic.generate(folder / "ucf", synthetic.SyntheticSpec(**UCF_SPEC))
    write_config(folder, {"run": {"dataset": "ucf101"},
                          "ucf101": {"videos": str(root / synthetic.VIDEOS_DIR),
                                     "splits": str(root / synthetic.SPLITS_DIR)}})
    return root / synthetic.SPLITS_DIR


def refused_split(folder: Path, fault: str, edit: Callable[[Path], None],
                  expected: str) -> Outcome:
    """Edit the split files of a UCF101-format copy: Manifest stops with an error naming the
    split file and what is wrong (``expected``, a regex), and writes no manifest."""
    edit(ucf101_copy(folder))
    done = run(folder, "Manifest")
    message = error_line(done.stderr)
    clear = done.returncode != 0 and re.search(expected, message) is not None
    wrong = [str(p.relative_to(folder)) + " written" for p in folder.glob("work/*/manifest-*")]
    return Outcome(fault, clear, [], wrong, message)


def drop_class_lines(splits: Path, name: str, klass: str) -> None:
    lines = (splits / name).read_text().splitlines(keepends=True)
    (splits / name).write_text("".join(line for line in lines if not line.startswith(klass)))


def empty_testlist(folder: Path) -> Outcome:
    return refused_split(folder, "empty testlist", lambda splits: (
        splits / "testlist01.txt").write_text(""), r"testlist01.txt: no test videos")


def empty_trainlist(folder: Path) -> Outcome:
    return refused_split(folder, "empty trainlist", lambda splits: (
        splits / "trainlist01.txt").write_text(""), r"trainlist01.txt: no train videos")


def class_without_training_videos(folder: Path) -> Outcome:
    """A UCF101 subset keeping the middle class of classInd.txt without its training videos."""
    def edit(splits: Path) -> None:
        middle = (splits / "classInd.txt").read_text().split("\n")[1].split()[1]
        drop_class_lines(splits, "trainlist01.txt", f"{middle}/")
    return refused_split(folder, "a class of classInd.txt without training videos", edit,
                         r"trainlist01.txt: class \w+ has no training videos")


def path_leaving_class_folder(folder: Path) -> Outcome:
    """A split line Class/../Other/v.avi would label Other's video as Class."""
    def edit(splits: Path) -> None:
        classes = [line.split()[1] for line in (splits / "classInd.txt").read_text().split("\n")
                   if line]
        videos = splits.parent / "UCF-101"
        source = sorted((videos / classes[1]).glob("*.avi"))[0]
        shutil.copy(source, videos / classes[1] / "v_Extra_g99_c01.avi")
        with open(splits / "trainlist01.txt", "a") as handle:
            handle.write(f"{classes[0]}/../{classes[1]}/v_Extra_g99_c01.avi 1\n")
    return refused_split(folder, "split path Class/../Other/v.avi", edit,
                         r"trainlist01.txt: .* leaves its class folder")


def latin1_split_file(folder: Path) -> Outcome:
    def edit(splits: Path) -> None:
        with open(splits / "testlist01.txt", "ab") as handle:
            handle.write("RedSwing/v_RedSwing_caf\u00e9.avi\n".encode("latin-1"))
    return refused_split(folder, "Latin-1 split file", edit,
                         r"testlist01.txt, line \d+: not UTF-8 text")


def bom_split_files(folder: Path) -> Outcome:
    """Split files saved with a UTF-8 byte-order mark (as some editors do) are read as usual."""
    fault = "split files with a UTF-8 BOM"
    splits = ucf101_copy(folder)
    for name in ("classInd.txt", "trainlist01.txt", "testlist01.txt"):
        (splits / name).write_bytes(b"\xef\xbb\xbf" + (splits / name).read_bytes())
    done = run(folder, "Manifest")
    if done.returncode != 0:
        return Outcome(fault, False, [], [], error_line(done.stderr))
    manifest = read_manifest(one(folder, "work/ucf101/manifest-*"))
    wanted = UCF_SPEC["classes"] * (UCF_SPEC["train_per_class"] + UCF_SPEC["test_per_class"])
    wrong = [] if len(manifest) == wanted else [f"{len(manifest)} videos, {wanted} listed"]
    return Outcome(fault, True, [], wrong, f"{len(manifest)} videos read")


def header_estimate(folder: Path) -> Outcome:
    """A video whose header claims 12 frames but decodes to 8 (as a damaged ninth frame would
    leave it): flow keeps it, with the disagreement in the shard's info."""
    from test_video import claim_frames
    fault = "header frame count differs from the decoded one"
    splits = ucf101_copy(folder)
    first = (splits / "trainlist01.txt").read_text().split()[0]
    video = splits.parent / "UCF-101" / first
    claim_frames(video, 12)
    runs = [run(folder, "ComputeFlow", "--shard", str(shard)) for shard in (0, 1)]
    failed = [done for done in runs if done.returncode != 0]
    if failed:
        return Outcome(fault, False, [], [], error_line(failed[0].stderr))
    held, noted = set(), {}
    for path in folder.glob("cache/ucf101/flow-*/shard-*.h5"):
        with cache.Shard(path) as shard:
            held |= set(shard.videos)
            noted.update(shard.info.get("header_disagrees", {}))
    lost = [] if video.stem in held else [f"{video.stem} skipped"]
    wrong = [] if noted == {video.stem: {"header": 12, "decoded": 8}} else [
        f"shard info lists {noted}"]
    return Outcome(fault, True, lost, wrong, f"{video.stem} kept; shard info: {noted}")


def class_skipped_upstream(folder: Path) -> Outcome:
    """Every training video of one class unreadable: flow and features skip them, and training
    stops with an error naming the class rather than training a model that scores a class it
    never saw."""
    fault = "every training video of a class unreadable"
    write_config(folder)
    assert run(folder, "GenerateSynthetic").returncode == 0
    root = one(folder, "data/synthetic-*")
    lines = (root / "ucfTrainTestlist" / "trainlist01.txt").read_text().split("\n")
    klass = lines[0].split("/")[0]
    for line in lines:
        if line.startswith(f"{klass}/"):
            (root / "UCF-101" / line.split()[0]).write_bytes(b"")
    done = run(folder, *TRAIN)
    message = error_line(done.stderr)
    clear = done.returncode != 0 and f"class {klass}: all its" in message
    wrong = [f"{p.name} trained" for p in folder.glob(MODEL)]
    return Outcome(fault, clear, [], wrong, message)


def missing_config_file(folder: Path) -> Outcome:
    """LUIGI_CONFIG_PATH naming a missing file (folder/tiny.cfg, not written): the command
    stops with an error naming it and makes nothing (Luigi alone would only warn, then run the
    embedded profile in the current folder)."""
    fault = "LUIGI_CONFIG_PATH names a missing file"
    folder.mkdir(parents=True, exist_ok=True)
    done = run(folder, "ReproducePaper")
    message = error_line(done.stderr)
    clear = (done.returncode != 0
             and f"LUIGI_CONFIG_PATH={folder / 'tiny.cfg'}: no such config file" in message)
    return Outcome(fault, clear, [], [f"{p.name} made" for p in folder.iterdir()], message)


# ---------------------------------------------------------------- 8. issue 19: edits, damage, bounds

def edited_video_same_size(reference: Path, folder: Path) -> Outcome:
    """One byte of a video changed in the middle of the file, size kept (a re-encoded frame, a
    repaired download): its flow shard is computed anew under a new name from the new bytes;
    the other shard and the old file are kept."""
    from pipeline.identity.fingerprint import fingerprint
    fault = "video edited in the middle, same size"
    copy_finished(reference, folder)
    old = one(folder, FLOW_SHARD)
    with cache.Shard(old) as shard:
        video = next(one(folder, "data/synthetic-*").rglob(f"{shard.videos[0]}.avi"))
    data = bytearray(video.read_bytes())
    data[len(data) // 2] ^= 0x01
    video.write_bytes(bytes(data))
    before = digests(folder / "cache")
    done = run(folder, "ComputeFlow", "--shard", "0")
    if done.returncode != 0:
        return Outcome(fault, False, [], [], error_line(done.stderr))
    new = [p for p in folder.glob(FLOW_SHARD) if p != old]
    wrong = [] if len(new) == 1 else [f"{len(new)} new flow shards 0: the edit was not seen"]
    if new:
        with cache.Shard(new[0]) as shard:
            stored = shard.attrs(video.stem)["fingerprint"]
        if stored != fingerprint(video):
            wrong.append(f"{new[0].name} holds {video.stem} of fingerprint {stored}")
    return Outcome(fault, True, lost_files(before, digests(folder / "cache")), wrong,
                   f"{video.stem} edited: flow shard 0 recomputed as "
                   f"{new[0].name if new else '(none)'}")


def full_disk_in_features(reference: Path, folder: Path) -> Outcome:
    """A real full disk: a tmpfs with room for half a shard mounted over the rgb features
    folder while ExtractFeatures writes shard 0. The command fails (not a crash) with a line
    naming the file and "no space left", leaves no temporary file and keeps shard 1; with
    space freed, the rerun equals the reference."""
    fault = "disk full (a real tmpfs) mid ExtractFeatures shard"
    copy_finished(reference, folder)
    shard = one(folder, RGB_SHARD)
    features = shard.parent
    kept = {p.name: p.read_bytes() for p in features.iterdir() if p != shard}
    room = sum(-(-len(data) // 4096) * 4096 for data in kept.values()) + shard.stat().st_size // 2
    shutil.rmtree(features)
    features.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={room}", "tmpfs",
                              str(features)], capture_output=True, text=True)
    if mounted.returncode != 0:
        return Outcome(fault, False, [], [], f"cannot mount a tmpfs: {mounted.stderr.strip()}")
    try:
        for name, data in kept.items():
            (features / name).write_bytes(data)
        before = digests(folder / "cache")
        args = ("ExtractFeatures", "--stream", "rgb", "--shard", "0")
        failed = run(folder, *args)
        message = error_line(failed.stderr)
        wrong = [f"exit {failed.returncode}: a crash"] if failed.returncode < 0 or \
            failed.returncode > 128 else []
        wrong += [f"{p.name} left behind" for p in temporary_outputs(folder / "cache")]
        wrong += [f"{shard.name} exists after the failure"] if shard.exists() else []
        clear = (failed.returncode != 0 and "no space left" in message
                 and shard.name in message)
        lost = lost_files(before, digests(folder / "cache"))
        subprocess.run(["mount", "-o", f"remount,size={room * 4}", str(features)], check=True)
        again = run(folder, *args)
        if again.returncode != 0:
            return Outcome(fault, False, lost, wrong, error_line(again.stderr))
        wrong += differences(shard_content(shard), shard_content(one(reference, RGB_SHARD)),
                             shard.name)
    finally:
        subprocess.run(["umount", str(features)], check=True)
    return Outcome(fault, clear, lost, wrong, message)


def damaged_frame(folder: Path, strict: bool) -> tuple[Path, subprocess.CompletedProcess]:
    """A UCF101-format copy whose first training video has its fourth of 8 frames damaged;
    both flow shards run."""
    from test_video import damage_frame
    splits = ucf101_copy(folder)
    if strict:
        write_config(folder, {"run": {"dataset": "ucf101", "strict": "true"},
                              "ucf101": {"videos": str(splits.parent / "UCF-101"),
                                         "splits": str(splits)}})
    video = splits.parent / "UCF-101" / (splits / "trainlist01.txt").read_text().split()[0]
    damage_frame(video, 3)
    runs = [run(folder, "ComputeFlow", "--shard", str(shard)) for shard in (0, 1)]
    return video, next((done for done in runs if done.returncode != 0), runs[-1])


def damaged_frame_kept_short(folder: Path) -> Outcome:
    """A damaged fourth frame: flow keeps the 3 frames before it and the report lists the
    video as kept short ("decoded 3 of the 8 frames its header counts")."""
    from pipeline.report import report
    fault = "a damaged frame in the middle of a video"
    video, done = damaged_frame(folder, strict=False)
    if done.returncode != 0:
        return Outcome(fault, False, [], [], error_line(done.stderr))
    paths = [str(p) for p in folder.glob("cache/ucf101/flow-*/shard-*.h5")]
    listed = report.shard_summary(paths)["short"]
    lengths = {}
    for path in paths:
        with cache.Shard(path) as shard:
            lengths.update({v: shard.length(v, "flow") for v in shard.videos})
    wrong = [] if "decoded 3 of the 8 frames" in listed.get(video.stem, "") else [
        f"the report's list of short videos is {listed}"]
    lost = [] if lengths.get(video.stem) == 2 else [f"{video.stem}: {lengths.get(video.stem)} "
                                                    "flow frames, 2 expected"]
    return Outcome(fault, True, lost, wrong, f"{video.stem}: {listed.get(video.stem, '')}")


def damaged_frame_strict(folder: Path) -> Outcome:
    """The same damaged frame under [run] strict = true: ComputeFlow stops with an error naming
    the video and the frame counts, and writes no shard of it."""
    fault = "a damaged frame in the middle of a video, [run] strict = true"
    video, done = damaged_frame(folder, strict=True)
    message = error_line(done.stderr)
    clear = done.returncode != 0 and f"{video}: decoded 3 of the 8 frames" in message
    wrong = [f"{p.name} left behind" for p in temporary_outputs(folder / "cache")]
    for path in folder.glob("cache/ucf101/flow-*/shard-*.h5"):
        with cache.Shard(path) as shard:
            wrong += [f"{video.stem} cached in {path.name}"] if video.stem in shard else []
    return Outcome(fault, clear, [], wrong, message)


def refused_window(reference: Path, folder: Path, fault: str, section: str, key: str,
                   args: tuple[str, ...], output: str) -> Outcome:
    """[section] key = 1000 frames on 8-frame videos: the task stops, before any model call,
    with an error naming the setting and the longest video, and writes no ``output``."""
    copy_finished(reference, folder)
    write_config(folder, {section: {key: "1000"}})
    done = run(folder, *args)
    message = error_line(done.stderr)
    clear = done.returncode != 0 and f"[{section}] {key} = 1000: the longest" in message
    wrong = [str(p.relative_to(folder)) + " written" for p in folder.glob(output)]
    return Outcome(fault, clear, [], wrong, message)


def huge_evaluate_length(reference: Path, folder: Path) -> Outcome:
    return refused_window(reference, folder, "[evaluate] length = 1000 (8-frame videos)",
                          "evaluate", "length", ("Evaluate", "--arch", "videolstm", "--stream",
                                                 "rgb", "--attention", "motion"),
                          "work/synthetic/evaluation/*")


def huge_snippet(reference: Path, folder: Path) -> Outcome:
    return refused_window(reference, folder, "[train] snippet = 1000 (8-frame videos)", "train",
                          "snippet", TRAIN, MODEL)


def edited_model_folder(reference: Path, folder: Path, fault: str, edit: Callable[[Path], None],
                        file: str, expected: str) -> Outcome:
    """A copy of the reference model folder, edited, given to predict: exit 1 with an error
    line naming the edited file (``expected``, a regex), and no results written."""
    model = folder / "model"
    shutil.copytree(one(reference, MODEL), model)
    edit(model)
    video = next(one(reference, "data/synthetic-*").rglob("*.avi"))
    done = subprocess.run([sys.executable, "-m", "pipeline.predict", str(video), "--model",
                           str(model), "--out", str(folder / "out")], capture_output=True,
                          text=True, timeout=600)
    last = (done.stderr.strip().splitlines() or [""])[-1]
    clear = (done.returncode == 1 and last.startswith("python -m pipeline.predict: error: ")
             and f"model/{file}" in last and re.search(expected, last) is not None)
    wrong = ["results written"] if (folder / "out").exists() else []
    return Outcome(fault, clear, [], wrong, last)


def edit_record(model: Path, edit: Callable[[dict], None]) -> None:
    data = json.loads((model / "model.json").read_text())
    edit(data)
    (model / "model.json").write_text(json.dumps(data))


def reordered_classes(reference: Path, folder: Path) -> Outcome:
    return edited_model_folder(reference, folder, "model.json class names reordered",
                               lambda model: edit_record(model, lambda d: d["classes"].reverse()),
                               "model.json", r"classes = .* was edited")


def other_frame_size(reference: Path, folder: Path) -> Outcome:
    return edited_model_folder(reference, folder, "model.json frame size changed",
                               lambda model: edit_record(model, lambda d: d.update(
                                   frame_size="320x240")), "model.json", r"frame_size")


def lost_record_key(reference: Path, folder: Path) -> Outcome:
    return edited_model_folder(reference, folder, "model.json missing a key (damaged)",
                               lambda model: edit_record(model, lambda d: d.pop("stream")),
                               "model.json", r"edited or damaged")


def damaged_model_keras(reference: Path, folder: Path) -> Outcome:
    def damage(model: Path) -> None:
        data = bytearray((model / "model.keras").read_bytes())
        data[len(data) // 2] ^= 0xFF
        (model / "model.keras").write_bytes(bytes(data))
    return edited_model_folder(reference, folder, "model.keras: one byte changed", damage,
                               "model.keras", r"sha256 \w+ is not")


def truncated_model_keras(reference: Path, folder: Path) -> Outcome:
    def truncate_model(model: Path) -> None:
        truncate(model / "model.keras")
    return edited_model_folder(reference, folder, "model.keras truncated", truncate_model,
                               "model.keras", r"damaged, not a readable .keras archive")


# ---------------------------------------------------------------- all scenarios

AFTER_REFERENCE: dict[str, Callable[[Path, Path], Outcome]] = {
    "kill flow": kill_in_flow,
    "kill features": kill_in_features,
    "kill training": kill_in_training,
    "flipped shard": flipped_flow_shard,
    "truncated shard": truncated_feature_shard,
    "other schema": other_schema_shard,
    "SIGTERM to the command": sigterm_to_command,
    "SIGTERM to the group": sigterm_to_group,
    "SIGINT to the group": sigint_to_group,
    "two commands": two_commands_one_shard,
    "edited video": edited_video_same_size,
    "full disk in features": full_disk_in_features,
    "huge evaluate length": huge_evaluate_length,
    "huge snippet": huge_snippet,
    "reordered classes": reordered_classes,
    "other frame size": other_frame_size,
    "lost record key": lost_record_key,
    "damaged model.keras": damaged_model_keras,
    "truncated model.keras": truncated_model_keras,
}
"""Scenarios that start from the reference run's outputs."""

ON_THEIR_OWN: dict[str, Callable[[Path], Outcome]] = {
    "damaged videos": damaged_videos,
    "damaged videos strict": damaged_videos_strict,
    "missing listed video": missing_listed_video,
    "empty testlist": empty_testlist,
    "empty trainlist": empty_trainlist,
    "class without training videos": class_without_training_videos,
    "class skipped upstream": class_skipped_upstream,
    "path leaving its class folder": path_leaving_class_folder,
    "Latin-1 split file": latin1_split_file,
    "BOM split files": bom_split_files,
    "header frame count": header_estimate,
    "damaged frame": damaged_frame_kept_short,
    "damaged frame strict": damaged_frame_strict,
    "missing config file": missing_config_file,
    **{fault: (lambda folder, fault=fault: bad_setting(folder, fault)) for fault in BAD_SETTINGS},
}
"""Slow scenarios that start from nothing."""

IN_PROCESS: dict[str, Callable[[Path], Outcome]] = {
    "flipped anywhere": flipped_anywhere,
    "full disk": full_disk,
}
"""Fast scenarios run inside this process."""


def slug(name: str) -> str:
    return re.sub(r"\W+", "-", name).strip("-")


def all_outcomes(folder: Path) -> list[Outcome]:
    """Every scenario, in folder: the reference run first, then one subfolder each."""
    reference = prepare_reference(folder / "reference")
    outcomes = [scenario(reference, folder / slug(name))
                for name, scenario in AFTER_REFERENCE.items()]
    outcomes += [scenario(folder / slug(name))
                 for name, scenario in {**ON_THEIR_OWN, **IN_PROCESS}.items()]
    return outcomes


# ---------------------------------------------------------------- tests

def check(outcome: Outcome) -> None:
    assert outcome.survived, outcome
    assert not outcome.lost, outcome
    assert not outcome.wrong, outcome


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return prepare_reference(tmp_path_factory.mktemp("reference"))


NEEDS_ROOT = ("full disk in features",)
"""Scenarios that mount a filesystem."""


@pytest.mark.slow
@pytest.mark.parametrize("name", list(AFTER_REFERENCE))
def test_fault_after_a_finished_run(name, reference, tmp_path):
    if name in NEEDS_ROOT and os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    check(AFTER_REFERENCE[name](reference, tmp_path))


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ON_THEIR_OWN))
def test_fault_from_scratch(name, tmp_path):
    check(ON_THEIR_OWN[name](tmp_path))


@pytest.mark.parametrize("name", list(IN_PROCESS))
def test_fault_in_process(name, tmp_path):
    check(IN_PROCESS[name](tmp_path))


def test_error_line_picks_the_exception_of_a_failed_task():
    stderr = ("ERROR: [pid 1] Worker failed ComputeFlow(shard=0)\nTraceback (most recent call "
              "last):\n  File \"x.py\", line 1\npipeline.video.VideoError: /d/v.avi: cannot open"
              "\nThis progress looks :( because there were failed tasks\n")
    assert error_line(stderr) == "VideoError: /d/v.avi: cannot open"
    assert error_line("error: [run] shards must be > 0\n") == "error: [run] shards must be > 0"
