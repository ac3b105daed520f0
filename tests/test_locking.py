"""One writer per output: a second writer waits for the first, then finds the output complete."""

import fcntl
import logging
import os
import threading
import time
from pathlib import Path

import luigi
import pytest

from pipeline.locking import lock_path, output_lock, single_writer

RUNS: list[str] = []


class WritesSlowly(luigi.Task):
    """Writes its output half a second after it starts; `started` is set once it runs."""

    path = luigi.Parameter()
    started = threading.Event()

    def output(self):
        return luigi.LocalTarget(self.path)

    @single_writer
    def run(self):
        RUNS.append(self.path)
        self.started.set()
        time.sleep(0.5)
        Path(self.path).write_text("done")


def test_a_second_writer_waits_then_finds_the_output_complete(tmp_path, caplog):
    RUNS.clear()
    task = WritesSlowly(path=str(tmp_path / "shard.h5"))
    first = threading.Thread(target=task.run)
    first.start()
    assert task.started.wait(10)
    with caplog.at_level(logging.WARNING, logger="luigi-interface"):
        task.run()  # a second command's worker, while the first still writes
    first.join()
    assert RUNS == [task.path] and Path(task.path).read_text() == "done"
    assert [r.getMessage() for r in caplog.records] == [
        f"{task.path}: another command is writing it; waiting for it",
        f"{task.path}: completed by another command meanwhile; nothing to do"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard.h5"]  # no lock file, no copy


def test_a_writer_that_never_waited_still_finds_the_output_another_command_completed(
        tmp_path, caplog):
    # The race CI hit on the manifest: a second command's scheduler found the output missing,
    # the first command wrote it and released the lock, then the second took the lock without
    # waiting. It must not write again (its rename would fail: the destination exists).
    RUNS.clear()
    task = WritesSlowly(path=str(tmp_path / "manifest.parquet"))
    assert not task.complete()  # what the second command's scheduler saw
    task.run()  # the first command, start to finish
    with caplog.at_level(logging.WARNING, logger="luigi-interface"):
        task.run()  # the second command's worker, after the first released the lock
    assert RUNS == [task.path]
    assert [r.getMessage() for r in caplog.records] == [
        f"{task.path}: completed by another command meanwhile; nothing to do"]


def test_an_uncontended_writer_runs_and_leaves_no_lock_file(tmp_path):
    RUNS.clear()
    task = WritesSlowly(path=str(tmp_path / "a" / "model"))
    task.run()
    assert RUNS == [task.path] and not lock_path(task.path).exists()


def _holds(path: Path) -> bool:
    """Whether some writer holds the lock on the file now at ``path``."""
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_a_waiter_locks_the_file_in_place_after_the_holder_removed_its_own(tmp_path):
    # The holder removes the lock file on release; a writer that was waiting on that file must
    # lock the file now at the path, or two writers could hold "the" lock at once.
    output = tmp_path / "shard.h5"
    release, second_holds = threading.Event(), threading.Event()

    def second():
        with output_lock(output):
            second_holds.set()
            release.wait(10)

    with output_lock(output) as waited:
        assert not waited
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.2)
        assert not second_holds.is_set()
    assert second_holds.wait(10) and _holds(lock_path(output))
    release.set()
    thread.join()
    assert not lock_path(output).exists()


def test_the_lock_is_released_when_the_writer_fails(tmp_path):
    with pytest.raises(OSError):
        with output_lock(tmp_path / "shard.h5"):
            raise OSError("disk full")
    with output_lock(tmp_path / "shard.h5") as waited:
        assert not waited
