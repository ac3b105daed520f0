"""ComputeFlow with the TensorFlow solver: frame pairs of many videos solved in batches.

Videos are decoded to gray frames in FlowPool's spawned workers while the main process solves
batches of pairs with pipeline.flow.tvl1_tensorflow (on the GPU when TensorFlow sees one), so that
decoding on the CPU overlaps the solver. `flow_runner` picks the runner of a backend.
"""

import concurrent.futures as cf
import dataclasses
import itertools
import time
from typing import Iterable, Iterator

import numpy as np

from pipeline.flow.tvl1 import FlowPool, TVL1Params, quantize
from pipeline.video import FrameSize


@dataclasses.dataclass
class _Video:
    """A decoded video whose pairs are being solved: the next pair to batch, the pairs done, and
    (with use_initial_flow) the float flow of its last solved pair."""

    path: str
    gray: np.ndarray
    out: np.ndarray
    next_pair: int = 0
    done: int = 0
    last_flow: np.ndarray | None = None

    @property
    def pairs_left(self) -> int:
        return self.out.shape[0] - self.next_pair


class BatchedFlow:
    """Quantized TV-L1 flow of many videos with the batched TensorFlow solver.

    `processes` workers decode videos (resized to `frame_size`, as FlowPool does); batches hold
    up to `batch_pairs` pairs of videos of one frame size. With params.use_initial_flow a video's
    pairs depend on each other, so a batch holds the next pair of up to `batch_pairs` videos.
    `solver_seconds` adds up the time spent in the solver, against which the busy fraction of
    the device is measured.
    """

    def __init__(self, processes: int, batch_pairs: int = 32,
                 frame_size: FrameSize | None = None):
        if not isinstance(batch_pairs, int) or batch_pairs < 1:
            raise ValueError(f"flow.batch_pairs must be an integer >= 1, got {batch_pairs!r}")
        self.batch_pairs = batch_pairs
        self.solver_seconds = 0.0
        self._decoders = FlowPool(processes, frame_size=frame_size)

    def __enter__(self) -> "BatchedFlow":
        return self

    def __exit__(self, exc_type, *exc_info) -> None:
        self._decoders.__exit__(exc_type, *exc_info)

    def close(self) -> None:
        self._decoders.close()

    def terminate(self) -> None:
        self._decoders.terminate()

    def map_videos(self, paths: Iterable[str], params: TVL1Params
                   ) -> Iterator[tuple[str, np.ndarray | BaseException]]:
        """Yield (path, flow) per video as its last pair is solved; flow is (T-1, H, W, 2) uint8.
        A video that cannot be decoded yields the decoder's error and the others go on; an error
        of the solver itself (e.g. out of device memory) stops the run."""
        _check_tensorflow(params)
        pending = iter(paths)
        slots = 2 * self._decoders.processes + (self.batch_pairs if params.use_initial_flow
                                                else 0)
        decoding: dict[cf.Future, str] = {}
        ready: list[_Video] = []
        try:
            while True:
                for path in itertools.islice(pending, max(0, slots - len(decoding) - len(ready))):
                    decoding[self._decoders.decode(path)] = str(path)
                if not decoding and not ready:
                    return
                if decoding and not self._batch_is_full(ready, params):
                    done, _ = cf.wait(decoding, return_when=cf.FIRST_COMPLETED)
                    for future in done:
                        path = decoding.pop(future)
                        try:
                            gray = future.result()
                        except Exception as exc:
                            yield path, exc
                            continue
                        n_pairs = gray.shape[0] - 1
                        ready.append(_Video(path, gray, np.empty((n_pairs, *gray.shape[1:], 2),
                                                                 np.uint8)))
                    continue
                for video in self._solve_batch(ready, params):
                    ready.remove(video)
                    yield video.path, video.out
        finally:
            for future in decoding:
                future.cancel()

    def _batch_is_full(self, ready: list[_Video], params: TVL1Params) -> bool:
        """Whether the videos of the first one's frame size fill a batch."""
        same = [v for v in ready if v.gray.shape[1:] == ready[0].gray.shape[1:]] if ready else []
        if params.use_initial_flow:
            return len(same) >= self.batch_pairs
        return sum(v.pairs_left for v in same) >= self.batch_pairs

    def _solve_batch(self, ready: list[_Video], params: TVL1Params) -> list[_Video]:
        """Solve one batch from the ready videos of the first one's frame size; return the videos
        it completed."""
        from pipeline.flow import tvl1_tensorflow
        pairs = []
        for video in ready:
            if video.gray.shape[1:] != ready[0].gray.shape[1:]:
                continue
            take = 1 if params.use_initial_flow else video.pairs_left
            take = min(take, video.pairs_left, self.batch_pairs - len(pairs))
            pairs += [(video, t) for t in range(video.next_pair, video.next_pair + take)]
            video.next_pair += take
            if len(pairs) == self.batch_pairs:
                break
        prev = np.stack([v.gray[t] for v, t in pairs])
        next_ = np.stack([v.gray[t + 1] for v, t in pairs])
        initial = None
        if params.use_initial_flow:
            zero = np.zeros((*prev.shape[1:], 2), np.float32)
            initial = np.stack([zero if v.last_flow is None else v.last_flow for v, _ in pairs])
        start = time.perf_counter()
        flows = tvl1_tensorflow.solve_pairs(prev, next_, params, initial, self.batch_pairs)
        self.solver_seconds += time.perf_counter() - start
        completed = []
        for (video, t), flow in zip(pairs, flows):
            video.out[t] = quantize(flow, params.bound)
            if params.use_initial_flow:
                video.last_flow = flow
            video.done += 1
            if video.done == video.out.shape[0]:
                completed.append(video)
        return completed


def _check_tensorflow(params: TVL1Params) -> None:
    if params.backend != "tensorflow":
        raise ValueError(f"BatchedFlow runs the TensorFlow solver, not backend {params.backend!r}")


def flow_runner(params: TVL1Params, processes: int, frame_size: FrameSize | None = None,
                batch_pairs: int = 32) -> FlowPool | BatchedFlow:
    """The runner of params.backend: FlowPool (OpenCV, one process per core) or BatchedFlow."""
    if params.backend == "tensorflow":
        return BatchedFlow(processes, batch_pairs, frame_size)
    return FlowPool(processes, frame_size=frame_size)
