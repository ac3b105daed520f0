"""One writer per output: a lock file beside it, held with fcntl.flock while a task makes it.

Two `--local-scheduler` commands on one cache would otherwise compute the same shard side by
side, and the second to finish would fail to rename its complete copy into place and leave it
behind. With the lock, the second writer waits for the first (or finds it gone), then finds
the output complete and does nothing. (Workers of one luigid never run the same task twice; the
lock is for the commands it does not see. flock is per host on some network filesystems: NFSv4
honours it.)
"""

from __future__ import annotations

import fcntl
import functools
import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import luigi

logger = logging.getLogger("luigi-interface")


def lock_path(output: str | os.PathLike) -> Path:
    """The lock file of an output: beside it, named after it."""
    return Path(f"{output}.lock")


@contextmanager
def output_lock(output: str | os.PathLike) -> Iterator[bool]:
    """Hold the output's lock for the body; yields whether another process held it first (then
    the output may be complete by now). Waits, saying so, while another process holds it. The
    lock file is removed on release, by its holder, so no lock file outlives the writers."""
    path = lock_path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    waited = False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not waited:
                logger.warning("%s: another command is writing it; waiting for it", output)
            waited = True
            fcntl.flock(fd, fcntl.LOCK_EX)
        if _still_names(path, fd):
            break
        os.close(fd)  # its holder removed the file: lock the one a newer writer made
    try:
        yield waited
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)


def _still_names(path: Path, fd: int) -> bool:
    """Whether ``path`` is still the file open as ``fd`` (not removed, nor made anew)."""
    try:
        found, held = path.stat(), os.fstat(fd)
    except FileNotFoundError:
        return False
    return (found.st_dev, found.st_ino) == (held.st_dev, held.st_ino)


def single_writer(run: Callable[[luigi.Task], None]) -> Callable[[luigi.Task], None]:
    """Decorate a task's ``run``: hold its (first) output's lock while it runs, and do nothing
    when another command completed the output since the scheduler found it incomplete: while
    this one waited for the lock, or before it took the lock at all (the other command held it
    and released it in between, so this one never waited)."""
    @functools.wraps(run)
    def locked(task: luigi.Task) -> None:
        output = luigi.task.flatten(task.output())[0].path
        with output_lock(output):
            if task.complete():
                logger.warning("%s: completed by another command meanwhile; nothing to do",
                               output)
                return
            run(task)
    return locked
