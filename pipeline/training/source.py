"""Cached features as a model's inputs: which arrays feed a model (ModelInputs), snippets of
them read from open feature shards (FeatureSource), and their per-channel statistics for the
model's normalisation layer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from pipeline import cache

MAP_LAYER, VECTOR_LAYER = "pool5", "fc7"


@dataclass(frozen=True)
class ModelInputs:
    """Which cached arrays feed a model: the appearance/stream input and the motion input."""

    stream: str
    layer: str
    motion: bool
    motion_layer: str = MAP_LAYER

    @staticmethod
    def of(arch: str, stream: str, attention: str, alstm_motion_input: str = MAP_LAYER
           ) -> "ModelInputs":
        """convnet and lstm read fc7; the others pool5; motion attention adds the flow stream's
        pool5, or its fc7 for alstm with [model] alstm_motion_input = fc7."""
        layer = VECTOR_LAYER if arch in ("convnet", "lstm") else MAP_LAYER
        motion = arch == "videolstm" or attention == "motion"
        motion_layer = (VECTOR_LAYER if motion and arch == "alstm"
                        and alstm_motion_input == VECTOR_LAYER else MAP_LAYER)
        return ModelInputs(stream, layer, motion, motion_layer)


class FeatureSource:
    """Snippets of cached features of many videos, read from open shards on demand (the
    dataset is never loaded whole). Motion input is the flow stream's pool5 (its fc7 for the
    ALSTM with [model] alstm_motion_input = fc7).

    shards: {stream: {shard path: the description a reader expects of it}}.
    """

    def __init__(self, shards: Mapping[str, Mapping[str, dict]], inputs: ModelInputs):
        self.inputs = inputs
        self.shards = {stream: dict(paths) for stream, paths in shards.items()}
        self._open = {stream: [cache.Shard(path, expected) for path, expected in paths.items()]
                      for stream, paths in shards.items()}
        self._where = {stream: {video: shard for shard in opened for video in shard.videos}
                       for stream, opened in self._open.items()}
        self._lengths: dict[str, int] = {}

    def close(self) -> None:
        for opened in self._open.values():
            for shard in opened:
                shard.close()

    def __enter__(self) -> "FeatureSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _streams(self) -> list[tuple[str, str, str]]:
        needed = [("features", self.inputs.stream, self.inputs.layer)]
        if self.inputs.motion:
            needed.append(("motion", "flow", self.inputs.motion_layer))
        return needed

    def videos_cached(self) -> set[str]:
        """Videos whose every input was cached (not skipped upstream)."""
        streams = [set(self._where[stream]) for _, stream, _ in self._streams()]
        return set.intersection(*streams)

    def length(self, video_id: str) -> int:
        """Frames usable by the model: flow has one frame fewer than RGB, use the common part."""
        if video_id not in self._lengths:
            self._lengths[video_id] = min(self._where[stream][video_id].length(video_id, layer)
                                          for _, stream, layer in self._streams())
        return self._lengths[video_id]

    def frames(self, video_id: str, indices: np.ndarray) -> dict[str, np.ndarray]:
        """The model's inputs at the given frame indices, float32 (len(indices), ...)."""
        return {name: self._read(stream, video_id, layer, indices).astype(np.float32)
                for name, stream, layer in self._streams()}

    def read_into(self, video_id: str, indices: np.ndarray, out: Mapping[str, np.ndarray]
                  ) -> None:
        """The model's inputs at the given frame indices, written into ``out[name]`` (an array
        of shape (len(indices), ...) of the stored dtype or a wider one)."""
        for name, stream, layer in self._streams():
            values = self._read(stream, video_id, layer, indices)
            if not np.can_cast(values.dtype, out[name].dtype, "safe"):
                raise cache.CacheError(
                    f"{self._where[stream][video_id].path}: {video_id}/{layer} is stored as "
                    f"{values.dtype}, other shards of stream {stream} as {out[name].dtype}; "
                    "recompute the features so that every shard has one dtype")
            out[name][...] = values

    def whole(self, video_id: str) -> dict[str, np.ndarray]:
        """Every usable frame (``length``) of each input, in the stored dtype."""
        frames = np.arange(self.length(video_id))
        return {name: self._read(stream, video_id, layer, frames)
                for name, stream, layer in self._streams()}

    def nbytes(self, videos: list[str]) -> int:
        """Bytes the stored inputs of ``videos`` take, every usable frame (without reading)."""
        shapes, dtypes = self.shapes(), self.dtypes()
        frame = sum(int(np.prod(shapes[name], dtype=np.int64)) * dtypes[name].itemsize
                    for name in shapes)
        return frame * sum(self.length(video) for video in videos)

    def _read(self, stream: str, video_id: str, layer: str, indices: np.ndarray) -> np.ndarray:
        """Frames at ``indices`` in the stored dtype; a snippet (consecutive frames, the last
        one possibly repeated) is read as one slice of the shard."""
        shard = self._where[stream][video_id]
        indices = np.asarray(indices)
        if indices.size and np.all(np.diff(indices) >= 0):
            first, last = int(indices[0]), int(indices[-1])
            if np.all(np.diff(indices) <= 1) and first >= 0:
                values = shard.read(video_id, layer, slice(first, last + 1))
                if len(values) == last - first + 1:
                    return values if values.shape[0] == len(indices) else values[indices - first]
        return shard.read(video_id, layer, indices)

    def _first_dataset(self, stream: str) -> tuple[cache.Shard, str]:
        return next((s, s.videos[0]) for s in self._open[stream] if s.videos)

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Per-frame shape of each input."""
        shapes = {}
        for name, stream, layer in self._streams():
            shard, video = self._first_dataset(stream)
            shapes[name] = tuple(shard.read(video, layer, slice(0, 1)).shape[1:])
        return shapes

    def dtypes(self) -> dict[str, np.dtype]:
        """The stored dtype of each input (float16 by default, [convnet] dtype)."""
        dtypes = {}
        for name, stream, layer in self._streams():
            shard, video = self._first_dataset(stream)
            dtypes[name] = shard.read(video, layer, slice(0, 1)).dtype
        return dtypes


class PreloadedSource:
    """A FeatureSource's inputs of chosen videos, read whole into memory once in the stored
    dtype, with the same reading methods: a training run then decompresses each frame once
    instead of again in every epoch's snippets. Shards are not held open."""

    def __init__(self, source: FeatureSource, videos: list[str]):
        self.inputs = source.inputs
        self._shapes, self._dtypes = source.shapes(), source.dtypes()
        self._arrays = {video: source.whole(video) for video in videos}

    def close(self) -> None:
        self._arrays = {}

    def __enter__(self) -> "PreloadedSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def videos_cached(self) -> set[str]:
        return set(self._arrays)

    def length(self, video_id: str) -> int:
        return len(self._arrays[video_id]["features"])

    def frames(self, video_id: str, indices: np.ndarray) -> dict[str, np.ndarray]:
        """The model's inputs at the given frame indices, float32 (len(indices), ...)."""
        return {name: values[np.asarray(indices)].astype(np.float32)
                for name, values in self._arrays[video_id].items()}

    def snippets(self, videos: tuple[str, ...], indices: np.ndarray) -> dict[str, np.ndarray]:
        """A batch: each video's frames at its row of ``indices`` (n, length), stored dtype."""
        return {name: np.stack([self._arrays[video][name][rows]
                                for video, rows in zip(videos, indices)])
                for name in self._shapes}

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return dict(self._shapes)

    def dtypes(self) -> dict[str, np.dtype]:
        return dict(self._dtypes)


def feature_statistics(source: FeatureSource, videos: list[str], frames_per_video: int = 10
                       ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per-channel mean and variance of each input over equally spaced frames of the training
    videos, for the model's normalisation layer (variance floored so dead channels stay 0)."""
    sums: dict[str, list[np.ndarray]] = {}
    for video in videos:
        length = source.length(video)
        indices = np.unique(np.linspace(0, length - 1, frames_per_video).round().astype(int))
        for name, frames in source.frames(video, indices).items():
            sums.setdefault(name, []).append(frames.reshape(-1, frames.shape[-1]))
    statistics = {}
    for name, parts in sums.items():
        values = np.concatenate(parts).astype(np.float64)
        statistics[name] = (values.mean(axis=0), np.maximum(values.var(axis=0), 1e-6))
    return statistics
