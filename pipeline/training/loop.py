"""Training and applying the recurrent models on cached features (paper 5.2).

Training minimises the cross-entropy at every frame with RMSprop (paper: lr 0.001, rho 0.9), and
saves a checkpoint after every epoch; a killed run resumes from its last checkpoint and, because
each epoch's sampling and dropout are seeded from (seed, epoch), ends with the same weights as
an uninterrupted one. Evaluation samples 25 equally spaced 30-frame segments per video, sums
frame scores over time and averages over segments.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from pathlib import Path
from typing import Callable

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from models import registry  # also registers the custom layers load_model needs
from pipeline import bounds, cache, sampling, scoring
from pipeline.manifest import check_trainable
from pipeline.training.loader import MemoryLoader, SnippetLoader
from pipeline.training.source import FeatureSource, PreloadedSource, feature_statistics


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
                        callbacks=callbacks, shuffle=False)  # the batches come shuffled
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
                   length: int, per_call: int = 25) -> np.ndarray:
    """Video-level class scores (C,): 25 equally spaced 30-frame segments, frame scores summed
    over time, averaged over segments (paper 5.2); ``per_call`` segments go through the model
    at a time (`bounds.per_call`), so memory stays bounded and a SIGTERM is acted on between
    calls."""
    indices = sampling.segment_indices(source.length(video_id), n_segments, length)
    scores = []
    for start in range(0, len(indices), per_call):
        chosen = indices[start:start + per_call]
        inputs = {name: array.reshape(*chosen.shape, *array.shape[1:])
                  for name, array in source.frames(video_id, chosen.ravel()).items()}
        scores.append(np.asarray(model.predict_on_batch(inputs)["scores"]))
    return scoring.video_scores(np.concatenate(scores))


def whole_video(model: keras.Model, source: FeatureSource, video_id: str
                ) -> tuple[np.ndarray, np.ndarray | None]:
    """Frame scores (T, C) and attention maps (T, N, N) over a whole video in one sequence."""
    inputs = {name: array[None] for name, array in
              source.frames(video_id, np.arange(source.length(video_id))).items()}
    outputs = model.predict_on_batch(inputs)
    attention = outputs.get("attention")
    return (np.asarray(outputs["scores"])[0],
            None if attention is None else np.asarray(attention)[0])


def train_model(folder: Path, source: FeatureSource, manifest: pd.DataFrame, arch: str,
                attention: str, sizes, section, seed: int, checkpoints: Checkpoints,
                start: str | Path | None = None,
                on_epoch: Callable[[int, dict], None] | None = None, curves: bool = True) -> dict:
    """TrainModel: a model of ``arch`` trained on the manifest's training videos that ``source``
    holds, initialised from the model folder ``start`` but its classifier when given, with the
    [train] settings ``section``; model.keras, history.csv and TensorBoard logs are written into
    ``folder``. ``curves``: history.csv also has each epoch's held-out accuracy
    (``held_out_accuracy``, which never changes the training). Returns what model.json adds
    about the run."""
    cached = source.videos_cached()
    check_trainable(manifest, cached)
    (videos, labels), (test_videos, test_labels) = (
        (list(part["video_id"]), [int(x) for x in part["label_index"]])
        for part in (manifest[(manifest["split"] == split) & manifest["video_id"].isin(cached)]
                     for split in ("train", "test")))
    shapes = source.shapes()
    bounds.check_window("[train] snippet", section.snippet,
                        max(source.length(v) for v in videos), "training video")
    bounds.check_batch("[train] batch_size x snippet", section.batch_size * section.snippet,
                       bounds.frame_bytes(shapes))
    preloaded = bounds.fits_preload(source.nbytes(videos + test_videos))
    if preloaded:  # every epoch and held-out score then slices memory instead of shards
        source = PreloadedSource(source, videos + test_videos)
    keras.utils.set_random_seed(seed)
    model = registry.build_model(arch, int(manifest["label_index"].max()) + 1,
                                 shapes["features"], sizes, attention, shapes.get("motion"),
                                 feature_statistics(source, videos))
    initialised = {}
    if start is not None:
        start = Path(start)
        transfer_except_classifier(keras.models.load_model(start / "model.keras"), model)
        initialised = {"initialised_from": start.name,
                       "initial_weights_sha256": checksum_except_classifier(model)}
    compile_model(model, section.learning_rate, section.rho)

    def epoch_data(epoch):
        # the batches training_batches gives for this seed, from memory or [train] readers
        return loader.dataset(videos, labels, [seed, epoch])

    loader = (MemoryLoader(source, section.batch_size, section.snippet) if preloaded else
              SnippetLoader(source, section.batch_size, section.snippet, section.readers))
    with loader:
        model, history = train(
            model, epoch_data, section.epochs, checkpoints, seed, folder / "logs", on_epoch,
            (lambda trained: held_out_accuracy(trained, source, test_videos, test_labels,
                                               section.snippet)) if curves else None)
    model.save(folder / "model.keras")
    write_history(history, folder / "history.csv")
    return {"videos": len(videos), "seconds": round(sum(row["seconds"] for row in history), 2),
            **initialised}


def evaluate_model(folder: Path, source: FeatureSource, manifest: pd.DataFrame, segments: int,
                   length: int) -> tuple[pd.DataFrame, dict]:
    """Evaluate: the scores of the manifest's test videos that ``source`` holds by the model in
    ``folder`` (``segment_scores``), and their accuracy, the videos missing and chance."""
    test = manifest[manifest["split"] == "test"]
    model = keras.models.load_model(folder / "model.keras")
    cached = source.videos_cached()
    test = test[[v in cached for v in test["video_id"]]]
    longest = max((source.length(v) for v in test["video_id"]), default=length)
    bounds.check_window("[evaluate] length", length, longest, "test video")
    bounds.check_segments("[evaluate] segments", segments, longest, "test video")
    per_call = bounds.per_call(length * bounds.frame_bytes(source.shapes()))
    scores = np.stack([segment_scores(model, source, video, segments, length, per_call)
                       for video in test["video_id"]])
    labels = test["label_index"].to_numpy()
    classes = manifest.drop_duplicates("label_index").sort_values("label_index")["label"]
    return scoring.scores_frame(list(test["video_id"]), labels, scores, list(classes)), {
        "accuracy": scoring.accuracy(scores, labels), "videos": len(test),
        "missing": sorted(set(manifest[manifest["split"] == "test"]["video_id"])
                          - set(test["video_id"])),
        "chance": 1.0 / len(classes)}
