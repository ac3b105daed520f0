"""How a task's output comes into place: written under a temporary name and renamed when
complete, so a killed or failed task leaves nothing that looks finished."""

from __future__ import annotations

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
    task does not collide with the temporary output the kill left behind."""
    tmp = f"{target.path}-luigi-tmp-{secrets.token_hex(5)}"
    Path(tmp).parent.mkdir(parents=True, exist_ok=True)
    try:
        yield tmp
        target.fs.rename_dont_move(tmp, target.path)
    except BaseException:
        if Path(tmp).is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            Path(tmp).unlink(missing_ok=True)
        raise
