"""What cached outputs are made from: each video's content fingerprint, and a hash of a set of
videos, independent of where the dataset is mounted and of the package version.

A fingerprint hashes every byte of the file, so a re-encoded frame or a repaired download in
the middle of a same-size file gets a new one (hashing only the ends let such an edit keep its
stale flow, features and models). A whole dataset's are computed once and kept in a small JSON
file keyed by path, size and modification time; a copy at another path keeps its fingerprint.
bench/bench_fingerprint.py measures the cost (UCF101's 6.5 GB: see README.md).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pandas as pd

from pipeline.cache import ALGORITHM_VERSIONS

VERSION = ALGORITHM_VERSIONS["fingerprint"]
"""The fingerprint algorithm's version; a store of another version is computed anew."""


def fingerprint(path: str | os.PathLike) -> str:
    """A video file's content fingerprint: the first 16 hex digits of the sha256 of all its
    bytes (read a block at a time, so a SIGTERM is acted on between blocks)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()[:16]


class FingerprintCache:
    """Fingerprints of many files, recomputed only for files whose size or modification time
    changed since they were stored in ``store`` (a JSON file, rewritten atomically); a store
    written by another fingerprint VERSION (or not readable) is recomputed."""

    def __init__(self, store: str | os.PathLike):
        self.store = Path(store)
        try:
            stored = json.loads(self.store.read_text()) if self.store.is_file() else {}
        except ValueError:
            stored = {}
        self._known = (stored.get("files", {}) if isinstance(stored, dict)
                       and stored.get("algorithm_version") == VERSION else {})
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
        partial.write_text(json.dumps({"algorithm_version": VERSION, "files": self._known}))
        os.replace(partial, self.store)
        self._changed = False


def content_hash(table: pd.DataFrame, columns: tuple[str, ...], length: int = 10) -> str:
    """A short hash of the given columns of a table's rows, whatever their order: what a set of
    videos is (ids, labels, splits, fingerprints), not where its files are."""
    rows = sorted(tuple(str(value) for value in row)
                  for row in table[list(columns)].itertuples(index=False))
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:length]
