"""Per-frame ConvNet features (paper 5.2): preprocessing of RGB frames and quantized flow images,
pool5 and fc7 in one pass, and fine-tuning of a stream's frame classifier (the "ConvNet"
baseline of Table 1)."""

from __future__ import annotations

import time
from typing import Callable, Iterable, Iterator, Mapping

import cv2
import keras
import numpy as np
import pandas as pd

from pipeline import cache
from pipeline.progress import Progress
from pipeline.video import (HEADER_DISAGREES, VideoError, header_disagreement, header_frames,
                            shortfall)

FramesOf = Callable[[tuple], Iterable[np.ndarray]]
"""A video's frames (RGB uint8 or quantized flow) given its manifest row, one at a time."""
FramesAt = Callable[[tuple, int], np.ndarray]
"""``count`` equally spaced frames of a video given its manifest row."""
SKIPPABLE = (VideoError, cache.CacheError, ValueError)
"""Errors that concern one video: recorded as a skip unless the run is strict."""
BROKEN_CACHE = (cache.CacheCorruptError, cache.CacheMismatchError)
"""Errors of an upstream cache file, never a skip: a skip would be cached for good, while the
file only needs deleting so that its stage runs again."""

IMAGENET_MEAN_BGR = np.array([103.939, 116.779, 123.68], np.float32)
FLOW_CENTRE = 128.0


def preprocess(frames: np.ndarray, stream: str, image_size: int) -> np.ndarray:
    """(T, H, W, C) uint8 -> (T, S, S, C) float32 network input.

    The whole frame is resized (not cropped) so pool5 cells map back onto the full frame, which
    localization needs. RGB is converted to BGR minus the ImageNet mean (VGG's caffe weights);
    quantized flow is centred on 128, its zero-motion value.
    """
    resized = np.stack([cv2.resize(frame, (image_size, image_size),
                                   interpolation=cv2.INTER_AREA) for frame in frames])
    resized = resized.reshape(len(frames), image_size, image_size, -1).astype(np.float32)
    if stream == "rgb":
        return resized[..., ::-1] - IMAGENET_MEAN_BGR
    if stream == "flow":
        return resized - FLOW_CENTRE
    raise ValueError(f"stream must be 'rgb' or 'flow', got {stream!r}")


def batches(frames: Iterable[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """Stack an iterator of frames into arrays of at most ``size`` frames."""
    batch = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield np.stack(batch)
            batch = []
    if batch:
        yield np.stack(batch)


def extract(extractor: keras.Model, frames: Iterable[np.ndarray], stream: str, image_size: int,
            batch_size: int, dtype: str = "float16") -> tuple[np.ndarray, np.ndarray]:
    """pool5 (T, N, N, 512) and fc7 (T, 4096) of a video given frame by frame (never whole)."""
    pool5, fc7 = [], []
    for batch in batches(frames, batch_size):
        maps, vectors = extractor.predict_on_batch(preprocess(batch, stream, image_size))
        pool5.append(np.asarray(maps, np.float32).astype(dtype))
        fc7.append(np.asarray(vectors, np.float32).astype(dtype))
    if not pool5:
        raise ValueError("no frames to extract features from")
    return np.concatenate(pool5), np.concatenate(fc7)


def sample_frame_indices(n_frames: int, count: int) -> np.ndarray:
    """``count`` equally spaced frame indices of a video (all of them when it is shorter)."""
    if n_frames <= count:
        return np.arange(n_frames)
    return np.linspace(0, n_frames - 1, count).round().astype(int)


def finetune(model: keras.Model, images: np.ndarray, labels: np.ndarray, stream: str,
             image_size: int, from_layer: str, epochs: int, learning_rate: float,
             batch_size: int, seed: int) -> list[float]:
    """Train the layers from ``from_layer`` on of a stream's frame classifier; earlier layers stay
    frozen, so their output is computed once and only the trainable top sees every epoch.

    Returns the training loss per epoch. ``images`` are uint8 frames, ``labels`` class indices.
    """
    names = [layer.name for layer in model.layers]
    if from_layer not in names:
        raise ValueError(f"convnet.finetune_from={from_layer!r} is not a VGG-16 layer; "
                         f"choose one of {names[1:]}")
    start = names.index(from_layer)
    frozen = keras.Model(model.inputs, model.layers[start - 1].output)
    inputs = np.concatenate([
        np.asarray(frozen.predict_on_batch(preprocess(chunk, stream, image_size)))
        for chunk in np.array_split(images, max(1, int(np.ceil(len(images) / batch_size))))])
    top_input = keras.Input(inputs.shape[1:])
    output = top_input
    for layer in model.layers[start:]:
        output = layer(output)
    top = keras.Model(top_input, output)
    top.compile(optimizer=keras.optimizers.RMSprop(learning_rate=learning_rate, rho=0.9),
                loss="sparse_categorical_crossentropy")
    keras.utils.set_random_seed(seed)
    history = top.fit(inputs, labels, epochs=epochs, batch_size=batch_size, shuffle=True,
                      verbose=0)
    return [float(loss) for loss in history.history.get("loss", [])]


def frames_at(stream: str, frame_size, flow_shards: Mapping[str, tuple] | None = None
              ) -> FramesAt:
    """How fine-tuning reads a video's frames: decoded RGB frames at ``frame_size``, or the
    flow stored in its shard (``flow_shards``: video id -> (shard path, description))."""
    from pipeline.video import read_frames
    if stream == "rgb":
        def rgb(row, count):
            frames = read_frames(row.path, frame_size)
            return frames[sample_frame_indices(len(frames), count)]
        return rgb

    def flow(row, count):
        with cache.Shard(*flow_shards[row.video_id]) as shard:
            n = shard.length(row.video_id, "flow")
            return shard.read(row.video_id, "flow", sample_frame_indices(n, count))
    return flow


def training_frames(rows: pd.DataFrame, frames_at: FramesAt, count: int, image_size: int,
                    strict: bool) -> tuple[np.ndarray, np.ndarray, dict[str, str]]:
    """``count`` equally spaced frames of each training video, resized for the network, with
    their labels; a video that cannot be read is skipped (and returned) unless strict."""
    images, labels, skipped = [], [], {}
    for row in rows.itertuples():
        try:
            frames = frames_at(row, count)
        except BROKEN_CACHE:
            raise
        except SKIPPABLE as error:
            if strict:
                raise
            skipped[row.video_id] = str(error)
            continue
        images.extend(cv2.resize(f, (image_size, image_size), interpolation=cv2.INTER_AREA)
                      .reshape(image_size, image_size, -1) for f in frames)
        labels.extend([row.label_index] * len(frames))
    if not images:
        raise ValueError("no training frames could be read: every training video was skipped")
    return np.stack(images), np.asarray(labels), skipped


def write_feature_shard(path, description: dict, videos: pd.DataFrame, frames_of: FramesOf,
                        extractor: keras.Model, stream: str, image_size: int, batch_size: int,
                        dtype: str, strict: bool, progress: Progress,
                        held: Mapping[str, str] | None = None) -> None:
    """ExtractFeatures for one shard: pool5 and fc7 of every video into one HDF5 shard, with
    the video's content fingerprint (``videos`` has a ``fingerprint`` column). Videos in
    ``held`` (id -> another complete shard of the same stage holding it) are copied.

    Every frame the video (or its flow) yields is used, and a disagreement with the video
    file's header count (flow: frames + 1) is recorded in the shard's info (HEADER_DISAGREES);
    a video decoded short of its header (`shortfall`) is an error when strict. A video that cannot be read is recorded as skipped with its reason
    (strict: the error stops the shard), so one broken file does not lose the shard's others.
    """
    start = time.perf_counter()
    frames = 0
    disagreements = {}
    held = held or {}
    with cache.ShardWriter(path, description) as writer:
        writer.copy_held(held)
        for video_id in held:
            progress.advance(video_id)
        for row in videos[~videos["video_id"].isin(held)].itertuples():
            try:
                pool5, fc7 = extract(extractor, frames_of(row), stream, image_size, batch_size,
                                     dtype)
            except BROKEN_CACHE:
                raise
            except SKIPPABLE as error:
                if strict:
                    raise
                writer.skip(row.video_id, str(error))
            else:
                header, decoded = header_frames(row.path), len(fc7) + (stream == "flow")
                if strict and shortfall(header, decoded):
                    raise VideoError(f"{row.path}: {shortfall(header, decoded)}")
                writer.add(row.video_id, {"pool5": pool5, "fc7": fc7},
                           {"label_index": row.label_index, "n_frames": len(fc7),
                            "fingerprint": row.fingerprint})
                disagreements.update(header_disagreement(row.video_id, header, decoded))
                frames += len(fc7)
            progress.advance(row.video_id)
        writer.info.update(seconds=round(time.perf_counter() - start, 2), frames=frames,
                           **{HEADER_DISAGREES: disagreements})
