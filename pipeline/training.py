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
import math
import multiprocessing
import os
import pickle
import queue
import shutil
import signal
import threading
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


@dataclass(frozen=True)
class PlannedBatch:
    """One training batch before it is read: its videos, their snippets' frame indices
    (n, length) and their labels."""

    videos: tuple[str, ...]
    indices: np.ndarray
    labels: np.ndarray

    def targets(self) -> dict[str, np.ndarray]:
        """Labels repeated per frame, for the cross-entropy at every frame."""
        length = self.indices.shape[1]
        return {"scores": np.repeat(self.labels[:, None], length, axis=1)}


def epoch_plan(source: FeatureSource, videos: list[str], labels: list[int], batch_size: int,
               length: int, rng: np.random.Generator) -> list[PlannedBatch]:
    """One epoch's batches, drawn before any is read: videos shuffled, each contributes one
    random snippet. The draws depend on ``rng`` alone (in this order: the permutation, then
    each batch's snippets), so how the batches are read cannot change them."""
    order = rng.permutation(len(videos))
    plan = []
    for start in range(0, len(order), batch_size):
        chosen = order[start:start + batch_size]
        indices = [sampling.random_snippet(source.length(videos[i]), length, rng)
                   for i in chosen]
        plan.append(PlannedBatch(tuple(videos[i] for i in chosen), np.stack(indices),
                                 np.asarray([labels[i] for i in chosen])))
    return plan


def training_batches(source: FeatureSource, videos: list[str], labels: list[int],
                     batch_size: int, length: int, rng: np.random.Generator
                     ) -> Iterator[tuple[dict, np.ndarray]]:
    """One epoch: videos shuffled, each contributes one random snippet; labels repeated per
    frame for the cross-entropy at every frame. Read here, one snippet after the other (the
    single-reader path; SnippetLoader reads the same batches with several processes)."""
    for batch in epoch_plan(source, videos, labels, batch_size, length, rng):
        snippets = [source.frames(video, indices)
                    for video, indices in zip(batch.videos, batch.indices)]
        inputs = {name: np.stack([s[name] for s in snippets]) for name in snippets[0]}
        yield inputs, batch.targets()


def as_dataset(batches: Callable[[], Iterator], shapes: dict[str, tuple], length: int,
               steps: int, dtypes: Mapping[str, np.dtype] | None = None) -> tf.data.Dataset:
    """A tf.data pipeline over a batch generator of ``steps`` batches, prefetching so HDF5
    reads overlap training. Inputs the generator yields in another dtype (``dtypes``, e.g. the
    stored float16) are cast to float32 in the pipeline: exact, and half the bytes through
    Python. The length is stated because Keras cannot know a generator's: it would warn "Your
    input ran out of data" at the end of every epoch."""
    dtypes = {name: tf.as_dtype(np.dtype((dtypes or {}).get(name, np.float32)))
              for name in shapes}
    signature = ({name: tf.TensorSpec((None, length, *shape), dtypes[name])
                  for name, shape in shapes.items()},
                 {"scores": tf.TensorSpec((None, length), tf.int64)})
    dataset = tf.data.Dataset.from_generator(batches, output_signature=signature).apply(
        tf.data.experimental.assert_cardinality(steps))
    if any(dtype != tf.float32 for dtype in dtypes.values()):
        dataset = dataset.map(lambda inputs, targets: (
            {name: tf.cast(value, tf.float32) for name, value in inputs.items()}, targets))
    return dataset.prefetch(2)


def reader_count(readers: int) -> int:
    """[train] readers: 0 = one per core available to this process."""
    if isinstance(readers, bool) or not isinstance(readers, (int, np.integer)) or readers < 0:
        raise ValueError(f"train.readers must be an integer >= 0 (0: one per core), got "
                         f"{readers!r}")
    return int(readers) or len(os.sched_getaffinity(0))


class SnippetLoader:
    """Training batches read by ``readers`` processes (0: one per core), each with its own
    handles on the shards: HDF5 decompression runs under h5py's global lock, so threads of one
    process would take turns. Equal to ``training_batches`` for the same ``rng``, whatever the
    number of readers: the epoch is planned (``epoch_plan``) before any read, each snippet has
    its fixed row in its batch, and batches are handed on in order.

    Batches are assembled in shared memory (``slots`` batches at a time) in the stored dtype,
    and cast to float32 by tf.data; the readers come from a fork server that has imported this
    module once, so starting them costs no TensorFlow import each. Use as a context manager: a
    normal exit stops the readers, an error kills them. ``threads``: reader threads of this
    process instead (bench/bench_loader.py measures them: they take turns on h5py's lock).
    """

    def __init__(self, source: FeatureSource, batch_size: int, length: int, readers: int = 0,
                 slots: int = 3, threads: bool = False):
        self.source, self.batch_size, self.length = source, batch_size, length
        self.readers = reader_count(readers)
        self.shapes, self.dtypes = source.shapes(), source.dtypes()
        self.slots = slots
        self.part = max(1, math.ceil(batch_size / self.readers))
        self.threads = threads
        self._lock = threading.Lock()
        self._generation = 0
        self._in_flight = 0
        self._done: dict[tuple[int, int], int] = {}
        self._closed = False
        if threads:
            self._tasks, self._results = queue.Queue(), queue.Queue()
            self._buffers = {name: bytearray(self._slot_bytes(name)) for name in self.shapes}
            start = threading.Thread
        else:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([__name__])  # used when the server first starts
            self._tasks, self._results = context.Queue(), context.Queue()
            self._buffers = {name: context.RawArray("b", self._slot_bytes(name))
                             for name in self.shapes}
            start = context.Process
        self._views = {name: np.frombuffer(buffer, self.dtypes[name]).reshape(
            slots, batch_size, length, *self.shapes[name])
            for name, buffer in self._buffers.items()}
        args = (source.shards, source.inputs, self._buffers,
                {name: (str(self.dtypes[name]), self._views[name].shape) for name in self.shapes},
                self._tasks, self._results)
        self._workers = [start(target=_reader_main, args=args, daemon=True,
                               name=f"snippet-reader-{i}") for i in range(self.readers)]
        try:
            for worker in self._workers:
                worker.start()
        except BaseException:
            self._workers = [w for w in self._workers if w.ident is not None]
            self.close(kill=True)
            raise

    def _slot_bytes(self, name: str) -> int:
        frame = int(np.prod(self.shapes[name], dtype=np.int64)) * self.dtypes[name].itemsize
        return self.slots * self.batch_size * self.length * frame

    def __enter__(self) -> "SnippetLoader":
        return self

    def __exit__(self, exc_type, *exc_info) -> None:
        self.close(kill=exc_type is not None)

    def close(self, kill: bool = False) -> None:
        """Stop the readers: ask them to finish (``kill``: end the processes now)."""
        if self._closed:
            return
        self._closed = True
        if kill and not self.threads:
            for worker in self._workers:
                worker.kill()
        else:
            for _ in self._workers:
                self._tasks.put(None)
        for worker in self._workers:
            worker.join(timeout=10)
            if not self.threads and worker.is_alive():
                worker.kill()
                worker.join()
        if not self.threads:
            for pipe in (self._tasks, self._results):
                pipe.cancel_join_thread()
                pipe.close()

    def dataset(self, videos: list[str], labels: list[int], seed) -> tf.data.Dataset:
        """One epoch as a tf.data pipeline: the batches ``training_batches`` yields with
        ``np.random.default_rng(seed)``, the plan drawn anew each time it is iterated."""
        def batches():
            rng = np.random.default_rng(seed)
            return self.batches(epoch_plan(self.source, videos, labels, self.batch_size,
                                           self.length, rng))
        return as_dataset(batches, self.shapes, self.length,
                          math.ceil(len(videos) / self.batch_size), self.dtypes)

    def epoch(self, videos: list[str], labels: list[int], rng: np.random.Generator
              ) -> Iterator[tuple[dict, dict]]:
        """``training_batches`` read by the readers, inputs in the stored dtype."""
        return self.batches(epoch_plan(self.source, videos, labels, self.batch_size,
                                       self.length, rng))

    def batches(self, plan: list[PlannedBatch]) -> Iterator[tuple[dict, dict]]:
        """The planned batches, in order. A new call takes over from an unfinished one (the
        old one stops); reading never runs ahead by more than ``slots`` batches."""
        if any(len(b.videos) > self.batch_size or b.indices.shape[1] != self.length
               for b in plan):
            raise ValueError(f"a planned batch exceeds the loader's {self.batch_size} "
                             f"snippets of {self.length} frames")
        with self._lock:
            self._check_open()
            self._generation += 1
            generation = self._generation
            self._drain()
        issued = 0
        try:
            for number, batch in enumerate(plan):
                with self._lock:
                    if generation != self._generation:
                        raise RuntimeError("SnippetLoader: a newer epoch took over the readers")
                    while issued < min(len(plan), number + self.slots):
                        self._issue(generation, issued, plan[issued])
                        issued += 1
                    self._wait(generation, number, plan[number])
                    slot, n = number % self.slots, len(batch.videos)
                    inputs = {name: _aligned_copy(view[slot, :n])
                              for name, view in self._views.items()}
                yield inputs, batch.targets()
        finally:
            with self._lock:
                if generation == self._generation and not self._closed:
                    self._drain()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("SnippetLoader is closed")

    def _parts(self, batch: PlannedBatch) -> list[tuple[int, int]]:
        return [(first, min(first + self.part, len(batch.videos)))
                for first in range(0, len(batch.videos), self.part)]

    def _issue(self, generation: int, number: int, batch: PlannedBatch) -> None:
        for first, last in self._parts(batch):
            self._tasks.put((generation, number, number % self.slots, first,
                             list(zip(batch.videos[first:last], batch.indices[first:last]))))
            self._in_flight += 1

    def _wait(self, generation: int, number: int, batch: PlannedBatch) -> None:
        """Until every part of batch ``number`` is read; a reader's error is raised here."""
        needed = len(self._parts(batch))
        while self._done.get((generation, number), 0) < needed:
            self._receive(generation)
        del self._done[(generation, number)]

    def _drain(self) -> None:
        """Wait for every issued part (of any epoch), so that no reader still writes a slot."""
        while self._in_flight:
            self._receive(None)
        self._done.clear()

    def _receive(self, generation: int | None) -> None:
        while True:
            try:
                result = self._results.get(timeout=1.0)
                break
            except queue.Empty:
                dead = [w for w in self._workers if not w.is_alive()]
                if dead:
                    self._closed = True
                    codes = ", ".join(f"{w.name}: exit code {getattr(w, 'exitcode', None)}"
                                      for w in dead)
                    raise RuntimeError(f"SnippetLoader: reader ended unexpectedly ({codes})")
        self._in_flight -= 1
        done_generation, number, error = result
        if error is not None and generation is not None and done_generation == generation:
            raise error
        if done_generation == generation:
            self._done[(generation, number)] = self._done.get((generation, number), 0) + 1


def _aligned_copy(array: np.ndarray, alignment: int = 64) -> np.ndarray:
    """A copy of ``array`` on a ``alignment``-byte boundary, where TensorFlow takes the buffer
    without copying it again."""
    raw = np.empty(array.nbytes + alignment, np.uint8)
    offset = -raw.ctypes.data % alignment
    out = raw[offset:offset + array.nbytes].view(array.dtype).reshape(array.shape)
    np.copyto(out, array)
    return out


def _reader_main(shards, inputs, buffers, layout, tasks, results) -> None:
    """A reader: its own handles on the shards; each task is a run of snippets to write into
    rows of a batch slot. Errors go back with the task; a reader whose parent is gone stops."""
    parent = multiprocessing.parent_process()
    if parent is not None:  # a process: Ctrl-C is the training process's to handle
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    views = {name: np.frombuffer(buffers[name], np.dtype(dtype)).reshape(shape)
             for name, (dtype, shape) in layout.items()}
    try:
        source = FeatureSource(shards, inputs)
    except BaseException as error:  # every task reports the error (a shard refused, ...)
        source, opening_error = None, error
    try:
        while True:
            try:
                task = tasks.get(timeout=1.0)
            except queue.Empty:
                if parent is not None and not parent.is_alive():
                    break
                continue
            if task is None:
                break
            generation, number, slot, first, snippets = task
            error = opening_error if source is None else None
            if error is None:
                try:
                    for row, (video, indices) in enumerate(snippets, first):
                        source.read_into(video, indices,
                                         {name: view[slot, row] for name, view in views.items()})
                except Exception as failure:
                    error = failure
            results.put((generation, number, None if error is None else _portable(error)))
    finally:
        if source is not None:
            source.close()
        if parent is not None and hasattr(results, "cancel_join_thread") \
                and not parent.is_alive():
            results.cancel_join_thread()


def _portable(error: BaseException) -> BaseException:
    """The error itself when it survives pickling (a CacheError names the file), else a
    RuntimeError with its text."""
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")


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
