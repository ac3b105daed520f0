"""Training and applying the recurrent models on cached features (paper 5.2).

Training draws one random 30-frame snippet per video per epoch, minimises the cross-entropy at
every frame with RMSprop (lr 0.001, rho 0.9), and saves a checkpoint after every epoch; a killed
run resumes from its last checkpoint and, because each epoch's sampling and dropout are seeded
from (seed, epoch), ends with the same weights as an uninterrupted one. Evaluation samples 25
equally spaced 30-frame segments per video, sums frame scores over time and averages over
segments.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Mapping

import keras
import numpy as np
import tensorflow as tf

from models import registry  # noqa: F401  (registers the custom layers load_model needs)
from pipeline import cache, sampling, scoring

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
        self._open = {stream: [cache.Shard(path, expected) for path, expected in paths.items()]
                      for stream, paths in shards.items()}
        self._where = {stream: {video: shard for shard in opened for video in shard.videos}
                       for stream, opened in self._open.items()}

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
        lengths = [self._where[stream][video_id].length(video_id, layer)
                   for _, stream, layer in self._streams()]
        return min(lengths)

    def frames(self, video_id: str, indices: np.ndarray) -> dict[str, np.ndarray]:
        """The model's inputs at the given frame indices, float32 (len(indices), ...)."""
        return {name: self._where[stream][video_id].read(video_id, layer, indices)
                .astype(np.float32) for name, stream, layer in self._streams()}

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Per-frame shape of each input."""
        shapes = {}
        for name, stream, layer in self._streams():
            shard = next(s for s in self._open[stream] if s.videos)
            shapes[name] = tuple(shard.read(shard.videos[0], layer, slice(0, 1)).shape[1:])
        return shapes


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


def training_batches(source: FeatureSource, videos: list[str], labels: list[int],
                     batch_size: int, length: int, rng: np.random.Generator
                     ) -> Iterator[tuple[dict, np.ndarray]]:
    """One epoch: videos shuffled, each contributes one random snippet; labels repeated per
    frame for the cross-entropy at every frame."""
    order = rng.permutation(len(videos))
    for start in range(0, len(order), batch_size):
        chosen = order[start:start + batch_size]
        snippets = [source.frames(videos[i], sampling.random_snippet(
            source.length(videos[i]), length, rng)) for i in chosen]
        inputs = {name: np.stack([s[name] for s in snippets]) for name in snippets[0]}
        targets = np.repeat(np.asarray([labels[i] for i in chosen])[:, None], length, axis=1)
        yield inputs, {"scores": targets}


def as_dataset(batches: Callable[[], Iterator], shapes: dict[str, tuple], length: int
               ) -> tf.data.Dataset:
    """A tf.data pipeline over a batch generator, prefetching so HDF5 reads overlap training."""
    signature = ({name: tf.TensorSpec((None, length, *shape), tf.float32)
                  for name, shape in shapes.items()},
                 {"scores": tf.TensorSpec((None, length), tf.int64)})
    return tf.data.Dataset.from_generator(batches, output_signature=signature).prefetch(2)


def compile_model(model: keras.Model, learning_rate: float, rho: float) -> None:
    """RMSprop on the per-frame cross-entropy (the attention output carries no loss; Keras'
    compiled metrics need a target for every output, so the history records the loss only)."""
    losses = {name: "sparse_categorical_crossentropy" if name == "scores" else None
              for name in model.output}
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=learning_rate, rho=rho),
                  loss=losses)


def transfer_except_classifier(source: keras.Model, target: keras.Model) -> None:
    """Initialise a model from another dataset's (HMDB51 from UCF101, paper 5.2): every weight
    but the final softmax layer, which has another number of classes."""
    for layer in target.layers:
        if not layer.weights:
            continue
        weights = source.get_layer(layer.name).get_weights()
        if layer.name == "head":
            mine = layer.get_weights()
            weights = weights[:-2] + mine[-2:]
        layer.set_weights(weights)


def checksum_except_classifier(model: keras.Model) -> str:
    """sha256 of every weight but the final softmax layer's: equal for a model and the one it
    was initialised from by ``transfer_except_classifier``."""
    weights = []
    for layer in model.layers:
        layer_weights = layer.get_weights()
        weights += layer_weights[:-2] if layer.name == "head" else layer_weights
    return cache.array_checksum(weights)


class Checkpoints:
    """The last finished epoch's model and the history so far, in a folder that outlives a
    killed run. Each checkpoint is written to a temporary name and renamed."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.model_path = self.folder / "last.keras"
        self.state_path = self.folder / "state.json"

    def load(self) -> tuple[keras.Model | None, int, list[dict]]:
        """(model, next epoch, history rows); (None, 0, []) when there is none."""
        if not self.state_path.exists():
            return None, 0, []
        state = json.loads(self.state_path.read_text())
        return keras.models.load_model(self.model_path), state["epoch"] + 1, state["history"]

    def save(self, model: keras.Model, epoch: int, history: list[dict]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = self.folder / f"last.partial-{os.getpid()}.keras"
        model.save(partial)
        os.replace(partial, self.model_path)
        partial_state = self.folder / f"state.partial-{os.getpid()}.json"
        partial_state.write_text(json.dumps({"epoch": epoch, "history": history}))
        os.replace(partial_state, self.state_path)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def held_out_accuracy(model: keras.Model, source: FeatureSource, videos: list[str],
                      labels: list[int], length: int, batch: int = 32) -> float:
    """Accuracy on held-out videos from one centred ``length``-frame window each (frame scores
    summed): a cheap per-epoch curve of how training transfers, not the paper's evaluation."""
    correct = 0
    for start in range(0, len(videos), batch):
        chosen = videos[start:start + batch]
        windows = [sampling.segment_indices(source.length(v), 1, length)[0] for v in chosen]
        snippets = [source.frames(v, w) for v, w in zip(chosen, windows)]
        inputs = {name: np.stack([s[name] for s in snippets]) for name in snippets[0]}
        scores = np.asarray(model.predict_on_batch(inputs)["scores"]).sum(axis=1)
        correct += int((scores.argmax(axis=1) == np.asarray(labels[start:start + batch])).sum())
    return correct / len(videos)


def train(model: keras.Model, epoch_data: Callable[[int], tf.data.Dataset], epochs: int,
          checkpoints: Checkpoints, seed: int, log_dir: str | Path | None = None,
          on_epoch: Callable[[int, dict], None] | None = None,
          held_out: Callable[[keras.Model], float] | None = None
          ) -> tuple[keras.Model, list[dict]]:
    """Train for ``epochs`` epochs, resuming after the last checkpointed one. Returns the
    trained model (the resumed one when resuming) and one history row per epoch; ``held_out``
    adds the epoch's held-out accuracy to its row (it never changes the training)."""
    resumed, first, history = checkpoints.load()
    model = resumed or model
    callbacks = [keras.callbacks.TensorBoard(str(log_dir))] if log_dir else []
    for epoch in range(first, epochs):
        reseed(model, seed * 100003 + epoch)
        start = time.perf_counter()
        fit = model.fit(epoch_data(epoch), initial_epoch=epoch, epochs=epoch + 1, verbose=0,
                        callbacks=callbacks)
        row = {"epoch": epoch, "seconds": round(time.perf_counter() - start, 3)}
        row.update({key: float(values[-1]) for key, values in fit.history.items()})
        if held_out:
            row[scoring.HELD_OUT] = round(held_out(model), 4)
        history.append(row)
        checkpoints.save(model, epoch, history)
        if on_epoch:
            on_epoch(epoch, row)
    return model, history


def reseed(model: keras.Model, seed: int) -> None:
    """Seed every random draw of an epoch (dropout masks) from ``seed`` alone. Keras does not
    save its seed generators' states with a model, so without this a resumed run would draw
    other masks than an uninterrupted one."""
    keras.utils.set_random_seed(seed)
    generators = [v for v in model.variables if v.path.endswith("seed_generator_state")]
    for index, variable in enumerate(generators):
        variable.assign(np.asarray([seed, index], dtype=variable.dtype))


def write_history(history: list[dict], path: str | Path) -> None:
    """The training history as CSV, one row per epoch."""
    columns = sorted({key for row in history for key in row}, key=lambda k: (k != "epoch", k))
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(history)


def segment_scores(model: keras.Model, source: FeatureSource, video_id: str, n_segments: int,
                   length: int) -> np.ndarray:
    """Video-level class scores (C,): 25 equally spaced 30-frame segments, frame scores summed
    over time, averaged over segments (paper 5.2)."""
    indices = sampling.segment_indices(source.length(video_id), n_segments, length)
    inputs = {name: array.reshape(*indices.shape, *array.shape[1:])
              for name, array in source.frames(video_id, indices.ravel()).items()}
    scores = np.asarray(model.predict_on_batch(inputs)["scores"])
    return scoring.video_scores(scores)


def whole_video(model: keras.Model, source: FeatureSource, video_id: str
                ) -> tuple[np.ndarray, np.ndarray | None]:
    """Frame scores (T, C) and attention maps (T, N, N) over a whole video in one sequence."""
    inputs = {name: array[None] for name, array in
              source.frames(video_id, np.arange(source.length(video_id))).items()}
    outputs = model.predict_on_batch(inputs)
    attention = outputs.get("attention")
    return (np.asarray(outputs["scores"])[0],
            None if attention is None else np.asarray(attention)[0])
