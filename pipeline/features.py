"""Per-frame ConvNet features (paper 5.2): preprocessing of RGB frames and quantized flow images,
pool5 and fc7 in one pass, and fine-tuning of a stream's frame classifier (the "ConvNet"
baseline of Table 1)."""

from __future__ import annotations

from typing import Iterable, Iterator

import cv2
import keras
import numpy as np

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
