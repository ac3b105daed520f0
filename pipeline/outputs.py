"""How a task's output comes into place: written under a temporary name and renamed when
complete, so a killed or failed task leaves nothing that looks finished."""

from __future__ import annotations

import glob
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import luigi


@contextmanager
def written(target: luigi.LocalTarget) -> Iterator[str]:
    """A temporary name beside the target, renamed into place when the body completes and
    removed when it fails, e.g. on a full disk. Unlike Luigi's temporary_path, whose name comes
    from Python's `random` (which tasks seed), it differs between runs, so a rerun of a killed
    task does not collide with the temporary output the kill left behind.

    Temporary outputs of the same target that a SIGKILLed run left behind are removed first:
    every caller holds the target's lock (pipeline.locking.single_writer), so no live writer
    owns them."""
    tmp = f"{target.path}-luigi-tmp-{secrets.token_hex(5)}"
    Path(tmp).parent.mkdir(parents=True, exist_ok=True)
    for stale in Path(tmp).parent.glob(f"{glob.escape(Path(target.path).name)}-luigi-tmp-*"):
        _remove(stale)
    try:
        yield tmp
        target.fs.rename_dont_move(tmp, target.path)
    except BaseException:
        _remove(Path(tmp))
        raise


def _remove(path: Path) -> None:
    """A temporary output, file or folder, if it is there."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
