"""Self-describing HDF5 shards: the one place that writes and validates cached stage outputs.

Every shard carries its description (schema version, stage, the version of the stage's
algorithm, parameters, upstream identities) as root attributes. A reader states what it
expects and is refused, with the differing setting named, when the file was made otherwise.
Paths carry a short hash of the whole description, so two settings never share a file by
accident and a new version of a stage's algorithm computes beside the old output. The package
version is not part of it: a release that leaves a stage's algorithm alone reuses its cache.
"""

from __future__ import annotations

import errno
import hashlib
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Mapping

import h5py
import numpy as np

SCHEMA_VERSION = 2
ALGORITHM_VERSIONS = {"fingerprint": 2, "dataset": 1, "synthetic": 1, "manifest": 2, "flow": 2,
                      "convnet": 1, "features": 2, "model": 1, "evaluation": 1, "fusion": 1,
                      "tubes": 1, "localization-evaluation": 2}
"""The version of each stage's algorithm. Bump a stage's number in the change that makes the
same inputs and settings give other output: that stage and everything downstream is then
recomputed (beside the old files, which a reader of the new version refuses). "fingerprint"
is the videos' content fingerprint (pipeline.identity.fingerprint; 2 hashes whole files, 1
hashed their ends): its stored fingerprints of another version are computed anew, and since
every split's identity holds its videos' fingerprints, a new version recomputes everything."""
_DESCRIPTION_KEYS = ("schema_version", "stage", "algorithm_version", "params", "upstream")
_DAMAGE = (OSError, KeyError, RuntimeError, TypeError, AttributeError, ValueError)
"""What h5py and json raise on a damaged file: a flipped byte may hit any of its structures."""
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
"""A write that failed for want of space: never a damaged file."""


class CacheError(ValueError):
    """A cache file that cannot be used; the message names the file and the reason."""


class CacheMismatchError(CacheError):
    """A cache file made with other settings than the ones asked for."""


class CacheCorruptError(CacheError):
    """A cache file that cannot be read as a complete shard."""


class VideoNotCached(CacheError):
    """A video the shard does not hold (skipped when the shard was made, or not in it)."""


def describe(stage: str, params: Mapping, upstream: Mapping | None = None) -> dict:
    """The description of a stage output: what was computed, by which version of the stage's
    algorithm (ALGORITHM_VERSIONS), with which settings, from what."""
    if stage not in ALGORITHM_VERSIONS:
        raise KeyError(f"stage {stage!r} has no algorithm version in cache.ALGORITHM_VERSIONS")
    return {
        "schema_version": SCHEMA_VERSION,
        "stage": stage,
        "algorithm_version": ALGORITHM_VERSIONS[stage],
        "params": _jsonable(params),
        "upstream": _jsonable(upstream or {}),
    }


def short_hash(description: Mapping, length: int = 10) -> str:
    """Hash of everything that changes a cache's content (the whole description)."""
    return hashlib.sha256(_canonical(description).encode()).hexdigest()[:length]


def array_checksum(arrays: Iterable[np.ndarray]) -> str:
    """sha256 over the bytes of a sequence of arrays (e.g. a network's weights)."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(str((array.dtype.str, array.shape)).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def file_checksum(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


CODECS = ("none", "lzf", *(f"gzip-{level}" for level in range(1, 10)), "gzip")
"""How a shard's arrays may be compressed. Every codec stores the same values (reading does not
depend on it: HDF5 records each dataset's filters) and every chunk carries a fletcher32
checksum. "gzip" is gzip level 4, h5py's default, with which every shard was written before
codecs could be chosen."""
STAGE_CODECS = {"features": "lzf"}
"""The codec of a stage's shards where it is not gzip. Feature shards are read at random by
training, a 30-frame snippet of every video every epoch, and decompression is most of the
loader's work. Measured (bench/bench_loader.py, pool5 7x7x512 float16 with 70% zeros): CPU per
30-frame snippet and disk per 1,000 frames of pool5 / fc7 are gzip (any level: the level
changes the size, not the read cost) 7.5 ms, 20 / 2.5 MiB; lzf 5.2 ms, 28 / 3.6 MiB;
uncompressed 0.7 ms, 48 / 7.8 MiB. lzf is the smallest whose read cost extrapolates to the
700 two-stream snippets/s a GPU needs on 16 cores (gzip falls short unless reading scales
perfectly); uncompressed needs a seventh of lzf's reader cores for 1.7x its disk. Flow, read
once per video by ExtractFeatures, keeps gzip. Shards of any codec stay readable and valid."""


def stage_codec(stage: str | None) -> str:
    """The codec a stage's shards are written with by default."""
    return STAGE_CODECS.get(stage, "gzip")


def codec_filters(codec: str) -> dict:
    """h5py's create_dataset arguments of a codec (see CODECS)."""
    if codec == "none":
        return {}
    if codec == "lzf":
        return {"compression": "lzf"}
    if codec == "gzip":
        return {"compression": "gzip", "compression_opts": 4}
    if isinstance(codec, str) and codec in CODECS:
        return {"compression": "gzip", "compression_opts": int(codec.split("-")[1])}
    raise ValueError(f"unknown shard codec {codec!r}; choose one of {', '.join(CODECS)}")


class ShardWriter:
    """Writes one shard: per-video datasets or groups, the description and the skipped videos.

    ``info`` holds facts about the run (timings, sizes) that are not part of the description.
    Write to a temporary path (Luigi's ``temporary_path()``) and let the caller rename it:
    the description and the list of videos are written last, on close, so a file whose writer
    died is never complete-looking. The file uses HDF5's 1.10 format, whose metadata carries
    checksums, and its text attributes are fixed-length strings kept in the checksummed object
    header (variable-length ones live in an unchecked heap): a damaged byte is an error on
    read, not another list of videos or other values.

    A full disk is an OSError (ENOSPC) naming the file, raised where the write fails: the file
    has no chunk cache, so every chunk is written when its dataset is, not when HDF5 evicts it
    (a failed eviction is only printed, and closing the file after it crashes the process).
    """

    def __init__(self, path: str | Path, description: Mapping, codec: str | None = None):
        self.path = Path(path)
        self.description = dict(description)
        self.codec = stage_codec(self.description.get("stage")) if codec is None else codec
        self._filters = codec_filters(self.codec)
        self.videos: list[str] = []
        self.skipped: dict[str, str] = {}
        self.info: dict = {}
        with self._disk_full_named():
            self._file = h5py.File(self.path, "w", libver="v110", rdcc_nbytes=0)

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        with self._disk_full_named():
            try:
                if exc_type is None:
                    self._finish()
            finally:
                self._file.close()

    @contextmanager
    def _disk_full_named(self):
        """An OSError of a full disk (or quota) as one line naming the shard."""
        try:
            yield
        except OSError as error:
            if error.errno not in _DISK_FULL:
                raise
            raise OSError(error.errno, f"{self.path}: no space left on device (or quota "
                                       "exceeded) while writing the shard; free space and run "
                                       "the task again") from None

    def add(self, video_id: str, arrays: Mapping[str, np.ndarray], attrs: Mapping | None = None):
        """Store one video's arrays in group ``video_id`` (chunked per frame, compressed with
        the writer's codec, and checksummed: gzip and lzf are optional filters in HDF5, a chunk
        they cannot shrink is stored raw, so without the checksum a damaged chunk could be read
        back as other values; uncompressed chunks carry the same checksum)."""
        with self._disk_full_named():
            group = self._file.create_group(video_id)
            for name, array in arrays.items():
                group.create_dataset(name, data=array, chunks=_frame_chunks(array),
                                     fletcher32=True, **self._filters)
            for key, value in (attrs or {}).items():
                group.attrs[key] = value
        self.videos.append(video_id)

    def copy(self, source: "Shard", video_id: str) -> None:
        """Store a video another complete shard of the same stage already holds, as it is
        there (arrays, checksums and attributes), instead of computing it again."""
        source._check_cached(video_id, "group")
        with self._disk_full_named(), _damage_is_corrupt(source.path, video_id):
            source._file.copy(source._file[video_id], self._file, name=video_id)
        self.videos.append(video_id)

    def copy_held(self, held: Mapping[str, str | Path]) -> None:
        """Copy every video of ``held`` (video id -> the complete shard holding it, as
        ``held_videos`` finds them), opening each source shard once."""
        by_source: dict[Path, list[str]] = {}
        for video_id, source in held.items():
            by_source.setdefault(Path(source), []).append(video_id)
        for source, videos in sorted(by_source.items()):
            with Shard(source) as shard:
                for video_id in sorted(videos):
                    self.copy(shard, video_id)

    def skip(self, video_id: str, reason: str) -> None:
        """Record a video that could not be processed; the shard's other videos still complete."""
        self.skipped[video_id] = reason

    def _finish(self) -> None:
        attrs = self._file.attrs
        for key in _DESCRIPTION_KEYS:
            value = self.description[key]
            attrs[key] = value if isinstance(value, int) else _text(
                value if isinstance(value, str) else _canonical(value))
        attrs["videos"] = _text(json.dumps(sorted(self.videos)))
        attrs["skipped"] = _text(json.dumps(self.skipped))
        attrs["info"] = _text(_canonical(self.info))
        attrs["complete"] = True


class Shard:
    """A complete, read-only shard, checked against the ``expected`` description (None: only
    completeness is checked, for summaries). Use as a context manager."""

    def __init__(self, path: str | Path, expected: Mapping | None = None):
        self.path = Path(path)
        try:
            self._file = h5py.File(self.path, "r")
        except _DAMAGE as error:
            raise CacheCorruptError(f"{self.path}: not a readable HDF5 shard ({error}); "
                                    "delete it so the stage runs again") from error
        try:
            with _damage_is_corrupt(self.path, "its description"):
                self.description = _read_description(self._file, self.path)
                if expected is not None:
                    check_description(self.description, expected, self.path)
                self.videos: list[str] = json.loads(self._file.attrs["videos"])
                self.skipped: dict[str, str] = json.loads(self._file.attrs["skipped"])
                self.info: dict = json.loads(self._file.attrs["info"])
        except BaseException:
            self._file.close()
            raise

    def __enter__(self) -> "Shard":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    def __contains__(self, video_id: str) -> bool:
        return video_id in self.videos

    def read(self, video_id: str, name: str,
             frames: slice | np.ndarray | None = None) -> np.ndarray:
        """One video's array (all frames, or the given frame indices or slice)."""
        self._check_cached(video_id, name)
        with _damage_is_corrupt(self.path, f"{video_id}/{name}"):
            dataset = self._file[video_id][name]
            if frames is None:
                return dataset[()]
            if isinstance(frames, slice):
                return dataset[frames]
            return _take_frames(dataset, np.asarray(frames))

    def iter_frames(self, video_id: str, name: str, chunk: int = 64):
        """A video's frames one at a time, read ``chunk`` frames at a time (never all at once)."""
        for start in range(0, self.length(video_id, name), chunk):
            yield from self.read(video_id, name, slice(start, start + chunk))

    def length(self, video_id: str, name: str) -> int:
        """Number of frames stored for a video, without reading them."""
        self._check_cached(video_id, name)
        with _damage_is_corrupt(self.path, f"{video_id}/{name}"):
            return int(self._file[video_id][name].shape[0])

    def _check_cached(self, video_id: str, name: str) -> None:
        if video_id not in self.videos:
            reason = self.skipped.get(video_id, "not in this shard")
            raise VideoNotCached(f"{self.path}: no {name!r} for video {video_id}: {reason}")

    def attrs(self, video_id: str) -> dict:
        """The per-video attributes (e.g. label index)."""
        return dict(self._file[video_id].attrs)


def held_videos(folder: str | Path, expected: Mapping, fingerprints: Mapping[str, str],
                exclude: str | Path | None = None) -> dict[str, Path]:
    """Which of the videos (id -> content fingerprint) complete shards in ``folder`` already
    hold with that fingerprint, made as ``expected`` describes (its "videos" entry aside): a
    new sharding of the same stage copies them instead of recomputing. Shards that cannot be
    read or were made otherwise are passed over."""
    expected = {**expected, "upstream": {k: v for k, v in expected["upstream"].items()
                                         if k != "videos"}}
    found: dict[str, Path] = {}
    for path in sorted(Path(folder).glob("shard-*.h5")):
        if exclude is not None and path == Path(exclude):
            continue
        try:
            with Shard(path) as shard:
                description = {**shard.description, "upstream": {
                    k: v for k, v in shard.description["upstream"].items() if k != "videos"}}
                check_description(description, expected, path)
                for video in shard.videos:
                    if (video not in found and video in fingerprints
                            and shard.attrs(video).get("fingerprint") == fingerprints[video]):
                        found[video] = path
        except CacheError:
            continue
    return found


@contextmanager
def _damage_is_corrupt(path: Path, what: str):
    """Turn what a damaged file raises while reading ``what`` into a CacheCorruptError naming
    the file (a cache error, or a full disk met while copying, passes unchanged)."""
    try:
        yield
    except CacheError:
        raise
    except _DAMAGE as error:
        if isinstance(error, OSError) and error.errno in _DISK_FULL:
            raise
        raise CacheCorruptError(f"{path}: cannot read {what} ({error}); delete the shard so "
                                "the stage runs again") from error


def check_description(found: Mapping, expected: Mapping, path: Path | str) -> None:
    """Refuse a cache whose description differs from the expected one, naming the setting."""
    for key in ("schema_version", "stage", "algorithm_version"):
        if found.get(key) != expected[key]:
            raise CacheMismatchError(
                f"{path}: written with {key}={found.get(key)!r}, this run expects "
                f"{expected[key]!r}; recompute it (delete the file) or use matching code")
    for section in ("params", "upstream"):
        difference = _first_difference(found.get(section, {}), _jsonable(expected[section]))
        if difference is not None:
            name, have, want = difference
            raise CacheMismatchError(
                f"{path}: made with {section} {name}={have!r}, this run asks for "
                f"{name}={want!r}; point the cache at another folder or delete this file")


def _read_description(handle: h5py.File, path: Path) -> dict:
    attrs = handle.attrs
    if not attrs.get("complete", False):
        raise CacheCorruptError(f"{path}: shard is incomplete (its writer did not finish); "
                                "delete it so the stage runs again")
    description = {}
    for key in _DESCRIPTION_KEYS:
        if key not in attrs:
            raise CacheCorruptError(f"{path}: missing attribute {key!r}; not a shard of this "
                                    "pipeline")
        value = attrs[key]
        description[key] = json.loads(value) if key in ("params", "upstream") else _plain(value)
    return description


def _first_difference(found, expected, prefix: str = ""):
    if isinstance(found, dict) and isinstance(expected, dict):
        for key in sorted(set(found) | set(expected)):
            name = f"{prefix}.{key}" if prefix else key
            if key not in found or key not in expected:
                return name, found.get(key, "<absent>"), expected.get(key, "<absent>")
            difference = _first_difference(found[key], expected[key], name)
            if difference is not None:
                return difference
        return None
    return None if found == expected else (prefix, found, expected)


def _take_frames(dataset: h5py.Dataset, indices: np.ndarray) -> np.ndarray:
    unique, inverse = np.unique(indices, return_inverse=True)
    return dataset[unique][inverse]


def _frame_chunks(array: np.ndarray) -> tuple | None:
    """One chunk per frame. Chunks of several frames do not read random 30-frame snippets
    faster (measured: the same CPU time uncompressed, up to 25% more with lzf or gzip, since a
    snippet decompresses the frames its end chunks hold beyond it)."""
    if array.ndim == 0 or array.shape[0] == 0:
        return None
    return (1,) + array.shape[1:]


def _text(value: str) -> np.bytes_:
    """A fixed-length UTF-8 string attribute (see ShardWriter)."""
    return np.bytes_(value.encode())


def _plain(value):
    value = value.item() if isinstance(value, np.generic) else value
    return value.decode() if isinstance(value, bytes) else value


def _jsonable(value):
    return json.loads(_canonical(value))


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_default)


def _default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (Path,)):
        return str(value)
    raise TypeError(f"cannot describe {type(value).__name__} in a cache description")
