"""What cached outputs are made from: each video's content fingerprint, and a hash of a set of
videos, independent of where the dataset is mounted and of the package version.

A fingerprint reads a few bytes of the file, so a whole dataset's are computed once and kept
in a small JSON file keyed by path, size and modification time; a changed, replaced or
re-encoded video gets a new fingerprint, a copy at another path keeps it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pandas as pd

EDGE_BYTES = 1 << 16
"""Bytes read from each end of a video for its fingerprint (container headers and indexes)."""


def fingerprint(path: str | os.PathLike) -> str:
    """A video file's content fingerprint: sha256 of its size and its first and last 64 KiB."""
    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as handle:
        digest.update(handle.read(EDGE_BYTES))
        handle.seek(max(size - EDGE_BYTES, 0))
        digest.update(handle.read(EDGE_BYTES))
    return digest.hexdigest()[:16]


class FingerprintCache:
    """Fingerprints of many files, recomputed only for files whose size or modification time
    changed since they were stored in ``store`` (a JSON file, rewritten atomically)."""

    def __init__(self, store: str | os.PathLike):
        self.store = Path(store)
        try:
            self._known = json.loads(self.store.read_text()) if self.store.is_file() else {}
        except ValueError:
            self._known = {}
        self._changed = False

    def get(self, path: str | os.PathLike) -> str:
        """The file's fingerprint; a missing file is an error naming it."""
        path = Path(path).resolve()
        try:
            stat = path.stat()
        except OSError as error:
            raise FileNotFoundError(f"{path}: cannot read the video ({error.strerror})") from None
        key, signature = str(path), [stat.st_size, stat.st_mtime_ns]
        known = self._known.get(key)
        if known is None or known[:2] != signature:
            self._known[key] = signature + [fingerprint(path)]
            self._changed = True
        return self._known[key][2]

    def save(self) -> None:
        if not self._changed:
            return
        self.store.parent.mkdir(parents=True, exist_ok=True)
        partial = self.store.with_name(f".{self.store.name}.{os.getpid()}")
        partial.write_text(json.dumps(self._known))
        os.replace(partial, self.store)
        self._changed = False


def content_hash(table: pd.DataFrame, columns: tuple[str, ...], length: int = 10) -> str:
    """A short hash of the given columns of a table's rows, whatever their order: what a set of
    videos is (ids, labels, splits, fingerprints), not where its files are."""
    rows = sorted(tuple(str(value) for value in row)
                  for row in table[list(columns)].itertuples(index=False))
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:length]
