"""What whole-file video fingerprints cost: MB/s of the first pass over a dataset (every file
hashed, read from disk, not the page cache), the same pass with the files in the page cache,
and the pass of a later run (the store's size and time match: nothing is hashed).

Files of random bytes (UCF101's mean video is 0.49 MB: 6.5 GB over 13,320 files) are generated
in a temporary folder under --folder and deleted after.

    .venv/bin/python bench/bench_fingerprint.py [--total-mb 256] [--file-mb 0.49] [--folder /tmp]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.identity.fingerprint import FingerprintCache  # noqa: E402


def generate(folder: Path, total: int, size: int) -> list[Path]:
    """Files of ``size`` random bytes totalling ``total`` bytes, written to disk and dropped
    from the page cache."""
    rng = np.random.default_rng(0)
    block = rng.integers(0, 256, size + 4096, np.uint8).tobytes()
    paths = []
    for index in range(max(1, total // size)):
        path = folder / f"v_{index:06d}.avi"
        offset = index % 4096
        with open(path, "wb") as handle:
            handle.write(index.to_bytes(8, "little") + block[offset:offset + size - 8])
            handle.flush()
            os.fsync(handle.fileno())
            os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        paths.append(path)
    return paths


def timed_pass(paths: list[Path], store: Path) -> float:
    """Seconds to fingerprint every file through a FingerprintCache kept in ``store``."""
    start = time.perf_counter()
    fingerprints = FingerprintCache(store)
    for path in paths:
        fingerprints.get(path)
    fingerprints.save()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total-mb", type=float, default=256.0)
    parser.add_argument("--file-mb", type=float, default=0.49)
    parser.add_argument("--folder", default=tempfile.gettempdir())
    args = parser.parse_args()
    total, size = int(args.total_mb * 1e6), max(4096, int(args.file_mb * 1e6))
    needed = total + (64 << 20)
    if shutil.disk_usage(args.folder).free < needed:
        raise SystemExit(f"{args.folder}: needs {needed / 1e9:.1f} GB free for the files")
    with tempfile.TemporaryDirectory(prefix="bench-fingerprint-", dir=args.folder) as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        paths = generate(folder, total, size)
        written = sum(p.stat().st_size for p in paths) / 1e6
        print(f"{len(paths)} files, {written:.0f} MB, generated in "
              f"{time.perf_counter() - start:.0f} s")
        cold = timed_pass(paths, folder / "cold.json")
        print(f"first run, from disk:         {written / cold:8.0f} MB/s ({cold:.1f} s)")
        if written < 0.5 * os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 1e6:
            warm = timed_pass(paths, folder / "warm.json")
            print(f"first run, from page cache:   {written / warm:8.0f} MB/s ({warm:.1f} s)")
        later = timed_pass(paths, folder / "cold.json")
        print(f"later run, nothing changed:   {len(paths) / later:8.0f} files/s ({later:.2f} s)")


if __name__ == "__main__":
    main()
