"""Training batches from cached features (paper 5.2): one random snippet per video per epoch,
planned before any read (epoch_plan) so that the batches depend on the seed alone, and read by
one generator (training_batches), from features held in memory (MemoryLoader) or by several
processes (SnippetLoader) into a tf.data pipeline."""

from __future__ import annotations

import math
import multiprocessing
import os
import pickle
import queue
import signal
import threading
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping

import numpy as np
import tensorflow as tf

from pipeline import sampling
from pipeline.training.source import FeatureSource, PreloadedSource


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


class MemoryLoader:
    """Training batches sliced from a PreloadedSource, in the stored dtype (cast to float32 by
    tf.data): the batches ``training_batches`` yields for the same ``rng``, with no reading.
    Has SnippetLoader's ``dataset`` and ``epoch``, so training takes either."""

    def __init__(self, source: PreloadedSource, batch_size: int, length: int):
        self.source, self.batch_size, self.length = source, batch_size, length

    def __enter__(self) -> "MemoryLoader":
        return self

    def __exit__(self, *exc) -> None:
        pass

    def dataset(self, videos: list[str], labels: list[int], seed) -> tf.data.Dataset:
        """One epoch as a tf.data pipeline, the plan drawn with ``np.random.default_rng(seed)``
        anew each time it is iterated."""
        return as_dataset(lambda: self.epoch(videos, labels, np.random.default_rng(seed)),
                          self.source.shapes(), self.length,
                          math.ceil(len(videos) / self.batch_size), self.source.dtypes())

    def epoch(self, videos: list[str], labels: list[int], rng: np.random.Generator
              ) -> Iterator[tuple[dict, dict]]:
        """``training_batches``, inputs in the stored dtype."""
        for batch in epoch_plan(self.source, videos, labels, self.batch_size, self.length, rng):
            yield self.source.snippets(batch.videos, batch.indices), batch.targets()


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
