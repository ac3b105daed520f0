"""TV-L1 optical flow between adjacent frames, quantized to uint8 (paper section 5.2).

The flow stream's input is the horizontal and vertical TV-L1 flow between every two adjacent
frames, clipped to +-bound pixels and linearly rescaled to [0, 255]. `FlowPool` spreads the work
over one single-threaded process per core, started with "spawn" so that nothing depends on
OpenCV state inherited through fork (Luigi's `--workers N` forks its workers); leaving its
`with` block on an exception kills them at once. TVL1Params.backend picks the solver: OpenCV's
(the default) or the batched TensorFlow one of pipeline.flow.tvl1_tensorflow, which
pipeline.flow.batches feeds.
"""

import concurrent.futures as cf
import dataclasses
import itertools
import math
import multiprocessing
import numbers
import os
import time
from typing import Iterable, Iterator, Mapping

import cv2
import numpy as np
import pandas as pd

from pipeline import cache
from pipeline.progress import Progress
from pipeline.video import (HEADER_DISAGREES, FrameSize, VideoError, header_disagreement,
                            header_frames, shortfall,
                            iter_frames, resize_frame)


BACKENDS = ("opencv", "tensorflow")


@dataclasses.dataclass(frozen=True)
class TVL1Params:
    """Settings of OpenCV's Dual TV-L1 (defaults are OpenCV's), the solver and the quantization
    bound.

    `bound` is the flow magnitude in pixels that maps to 0 and 255 per channel. With
    `use_initial_flow`, the flow of pair t starts from the (unclipped) flow of pair t-1.
    `backend` names the solver: "opencv" (cv2.optflow) or "tensorflow" (the same algorithm
    batched, pipeline.flow.tvl1_tensorflow); their flows differ by float rounding, so the backend is
    part of what a flow cache was made from.
    """

    tau: float = 0.25
    lambda_: float = 0.15
    theta: float = 0.3
    nscales: int = 5
    warps: int = 5
    epsilon: float = 0.01
    inner_iterations: int = 30
    outer_iterations: int = 10
    scale_step: float = 0.8
    gamma: float = 0.0
    median_filtering: int = 5
    use_initial_flow: bool = False
    bound: float = 20.0
    backend: str = "opencv"

    def __post_init__(self):
        for name in ("tau", "lambda_", "theta", "epsilon", "bound"):
            _check_real(name, getattr(self, name), strictly_positive=True)
        _check_real("gamma", self.gamma, strictly_positive=False)
        _check_real("scale_step", self.scale_step, strictly_positive=True)
        if self.scale_step >= 1.0:
            raise ValueError(f"flow.scale_step must be < 1, got {self.scale_step!r}")
        for name in ("nscales", "warps", "inner_iterations", "outer_iterations"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ValueError(f"flow.{name} must be an integer >= 1, got {value!r}")
        m = self.median_filtering
        if not _is_int(m) or m < 1 or (m > 1 and m % 2 == 0):
            raise ValueError(
                f"flow.median_filtering must be 1 (off) or an odd integer >= 3, got {m!r}")
        if not isinstance(self.use_initial_flow, (bool, np.bool_)):
            raise ValueError(
                f"flow.use_initial_flow must be a boolean, got {self.use_initial_flow!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"flow.backend must be one of {', '.join(BACKENDS)}, "
                             f"got {self.backend!r}")

    def as_dict(self) -> dict:
        """All settings by name, for recording as cache attributes."""
        return dataclasses.asdict(self)


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _check_real(name: str, value, strictly_positive: bool) -> None:
    if (not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_))
            or not math.isfinite(value)):
        raise ValueError(f"flow.{name} must be a finite number, got {value!r}")
    if strictly_positive and value <= 0:
        raise ValueError(f"flow.{name} must be > 0, got {value!r}")
    if not strictly_positive and value < 0:
        raise ValueError(f"flow.{name} must be >= 0, got {value!r}")


def tvl1(prev_gray: np.ndarray, next_gray: np.ndarray, params: TVL1Params,
         initial_flow: np.ndarray | None = None) -> np.ndarray:
    """Dual TV-L1 flow from `prev_gray` to `next_gray`, uint8 (H, W) -> float32 (H, W, 2) (x, y).

    `initial_flow` (float32 (H, W, 2)) is the starting point when params.use_initial_flow is set;
    zero flow when it is None. Solved by params.backend.
    """
    for name, image in (("prev_gray", prev_gray), ("next_gray", next_gray)):
        if image.dtype != np.uint8 or image.ndim != 2:
            raise ValueError(f"tvl1: {name} must be a uint8 (H, W) image, "
                             f"got {image.dtype} {image.shape}")
    if prev_gray.shape != next_gray.shape:
        raise ValueError(f"tvl1: frame shapes differ: {prev_gray.shape} vs {next_gray.shape}")
    if params.backend == "tensorflow":
        from pipeline.flow import tvl1_tensorflow
        initial = None if initial_flow is None else initial_flow[None]
        return tvl1_tensorflow.solve_pairs(prev_gray[None], next_gray[None], params, initial)[0]
    solver = cv2.optflow.DualTVL1OpticalFlow_create(
        params.tau, params.lambda_, params.theta, params.nscales, params.warps,
        params.epsilon, params.inner_iterations, params.outer_iterations,
        params.scale_step, params.gamma, params.median_filtering, params.use_initial_flow)
    h, w = prev_gray.shape
    if params.use_initial_flow and initial_flow is not None:
        flow = np.array(initial_flow, dtype=np.float32, order="C")
    else:
        flow = np.zeros((h, w, 2), np.float32)
    return solver.calc(prev_gray, next_gray, flow)


def quantize(flow: np.ndarray, bound: float) -> np.ndarray:
    """Clip flow to [-bound, bound] and rescale linearly to uint8 [0, 255], rounding half up."""
    _check_real("bound", bound, strictly_positive=True)
    scaled = (np.clip(flow.astype(np.float64), -bound, bound) + bound) * (255.0 / (2.0 * bound))
    return np.floor(scaled + 0.5).astype(np.uint8)


def dequantize(q: np.ndarray, bound: float) -> np.ndarray:
    """Inverse of `quantize`: uint8 [0, 255] -> float32 flow in [-bound, bound] pixels."""
    _check_real("bound", bound, strictly_positive=True)
    return (q.astype(np.float64) * (2.0 * bound / 255.0) - bound).astype(np.float32)


def video_flow(frames_rgb: np.ndarray, params: TVL1Params,
               frame_size: FrameSize | None = None) -> np.ndarray:
    """Quantized flow between adjacent frames: (T, H, W, 3) uint8 RGB -> (T-1, H, W, 2) uint8,
    or (T-1, height, width, 2) with frames first resized to ``frame_size`` = (width, height).

    Flow t goes from frame t to frame t+1.
    """
    _check_clip(frames_rgb, "video_flow")
    return _flow_chunk(_resized(frames_rgb, frame_size), params)


def flow_gray(frame_rgb: np.ndarray, frame_size: FrameSize | None = None) -> np.ndarray:
    """The image TV-L1 sees of one RGB frame: resized to ``frame_size`` (`resize_frame`), then
    gray. ComputeFlow and predict both make their flow from this."""
    return cv2.cvtColor(resize_frame(frame_rgb, frame_size), cv2.COLOR_RGB2GRAY)


def _resized(frames: np.ndarray, frame_size: FrameSize | None) -> np.ndarray:
    if frame_size is None:
        return frames
    return np.stack([resize_frame(frame, frame_size) for frame in frames])


def _check_clip(frames_rgb: np.ndarray, caller: str) -> None:
    if frames_rgb.dtype != np.uint8 or frames_rgb.ndim != 4 or frames_rgb.shape[-1] != 3:
        raise ValueError(f"{caller}: frames must be uint8 (T, H, W, 3) RGB, "
                         f"got {frames_rgb.dtype} {frames_rgb.shape}")
    if frames_rgb.shape[0] < 2:
        raise ValueError(f"{caller}: needs at least 2 frames, got {frames_rgb.shape[0]}")


def _gray(frames: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) RGB -> (T, H, W) gray; (T, H, W) passes through."""
    if frames.ndim == 3:
        return frames
    return np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])


def _flow_chunk(frames: np.ndarray, params: TVL1Params) -> np.ndarray:
    """Quantized flow of the T-1 adjacent pairs of T frames (RGB or already gray)."""
    gray = _gray(frames)
    if params.backend == "tensorflow":
        from pipeline.flow import tvl1_tensorflow
        return quantize(tvl1_tensorflow.video_pairs(gray, params), params.bound)
    out = np.empty((gray.shape[0] - 1, *gray.shape[1:], 2), np.uint8)
    flow = None
    for t in range(out.shape[0]):
        flow = tvl1(gray[t], gray[t + 1], params, initial_flow=flow)
        out[t] = quantize(flow, params.bound)
    return out


def _init_worker() -> None:
    cv2.setNumThreads(1)


def _decode_gray(path: str, frame_size: FrameSize | None = None) -> np.ndarray:
    """Worker task: decode a video to (T, H, W) gray frames (`flow_gray`: resized to
    ``frame_size`` first, one frame in memory at full size at a time); T >= 2 or a VideoError
    naming it."""
    gray = np.stack([flow_gray(frame, frame_size) for frame in iter_frames(path)])
    if gray.shape[0] < 2:
        raise VideoError(f"{path}: optical flow needs at least 2 frames, got {gray.shape[0]}")
    return gray


def _check_opencv(params: TVL1Params) -> None:
    if params.backend != "opencv":
        raise ValueError(f"FlowPool runs OpenCV's solver, not backend {params.backend!r}: "
                         "pipeline.flow.batches.flow_runner picks the runner of a backend")


class FlowError(RuntimeError):
    """Optical flow failed on part of one video; the message names the video and the pairs."""


@dataclasses.dataclass
class _Job:
    """A video in progress: its output, the chunk futures not yet done, and whether it failed."""

    path: str
    out: np.ndarray | None = None
    chunks: dict = dataclasses.field(default_factory=dict)
    failed: bool = False


class FlowPool:
    """Process pool computing quantized TV-L1 flow, one single-threaded worker per core.

    Workers come from the "spawn" start method and set cv2.setNumThreads(1), so the pool is safe
    to start from a forked process whose parent used OpenCV threads. Each video is decoded in a
    worker and its pairs are split into chunks of at most `chunk_pairs` (fewer when the clip is
    too short to give every process that many) that run on any worker, so one long video uses
    every core. Chunks are independent TV-L1 runs on the same frames, so the result equals
    `video_flow` exactly; with params.use_initial_flow a video's pairs depend on each other and
    the whole video is one chunk.

    `frame_size` = (width, height): every frame is resized to it before TV-L1 ([video]
    frame_size; `flow_gray`), so flow is (T-1, height, width, 2) whatever the video's size.
    None keeps each video's own size.
    """

    def __init__(self, processes: int | None = None, chunk_pairs: int = 16,
                 frame_size: FrameSize | None = None):
        processes = os.cpu_count() if processes is None else processes
        if not _is_int(processes) or processes < 1:
            raise ValueError(f"flow.processes must be an integer >= 1, got {processes!r}")
        if not _is_int(chunk_pairs) or chunk_pairs < 1:
            raise ValueError(f"flow.chunk_pairs must be an integer >= 1, got {chunk_pairs!r}")
        self.processes = processes
        self.chunk_pairs = chunk_pairs
        self.frame_size = None if frame_size is None else tuple(frame_size)
        self._executor = cf.ProcessPoolExecutor(
            max_workers=processes, mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker)

    def __enter__(self) -> "FlowPool":
        return self

    def __exit__(self, exc_type, *exc_info) -> None:
        if exc_type is None:
            self.close()
        else:
            self.terminate()

    def close(self) -> None:
        """Stop the workers, dropping work not yet started."""
        self._executor.shutdown(wait=True, cancel_futures=True)

    def terminate(self) -> None:
        """Stop the workers now, dropping all work: on an error or a stop (Ctrl-C, SIGTERM as
        pipeline.termination raises it), where waiting for the running chunks would take
        minutes. A chunk's TV-L1 cannot be interrupted, so the workers are killed. A worker
        killed while sending a result leaves it half-written in the result pipe, where the
        executor's thread waits for the rest, and shutdown for that thread, forever (CPython
        3.11); closing the pool's own write end of that pipe ends that read."""
        executor = self._executor
        for process in list(executor._processes.values()):  # public only in Python 3.14
            process.kill()
        if executor._result_queue is not None:
            executor._result_queue._writer.close()
        executor.shutdown(wait=True, cancel_futures=True)

    def _chunks(self, n_pairs: int, params: TVL1Params) -> list[tuple[int, int]]:
        """Pair ranges [s, e): at most chunk_pairs each, and short clips spread evenly."""
        if params.use_initial_flow:
            size = n_pairs
        else:
            size = min(self.chunk_pairs, math.ceil(n_pairs / self.processes))
        return [(s, min(s + size, n_pairs)) for s in range(0, n_pairs, size)]

    def decode(self, path: str) -> cf.Future:
        """Decode a video in a worker: a future of its (T, H, W) gray frames at the pool's frame
        size (T >= 2), or of the decoder's error."""
        return self._executor.submit(_decode_gray, str(path), self.frame_size)

    def flow_frames(self, frames_rgb: np.ndarray, params: TVL1Params) -> np.ndarray:
        """`video_flow` of one in-memory clip (at the pool's frame size), its pairs spread over
        the workers."""
        _check_opencv(params)
        _check_clip(frames_rgb, "flow_frames")
        frames_rgb = _resized(frames_rgb, self.frame_size)
        spans = self._chunks(frames_rgb.shape[0] - 1, params)
        futures = [self._executor.submit(_flow_chunk, frames_rgb[s:e + 1], params)
                   for s, e in spans]
        return np.concatenate([f.result() for f in futures])

    def map_videos(self, paths: Iterable[str], params: TVL1Params
                   ) -> Iterator[tuple[str, np.ndarray | BaseException]]:
        """Yield (path, flow) per video in completion order; flow is (T-1, H, W, 2) uint8.

        A video that cannot be decoded or whose flow fails yields its exception instead (the
        decoder's error as raised, or a FlowError naming the video) and the others go on. At most
        2 x processes videos are held in memory at a time.
        """
        _check_opencv(params)
        pending = iter(paths)
        open_jobs = 0
        running: dict[cf.Future, tuple[_Job, bool]] = {}
        try:
            while True:
                for path in itertools.islice(pending, 2 * self.processes - open_jobs):
                    job = _Job(str(path))
                    running[self.decode(job.path)] = (job, True)
                    open_jobs += 1
                if not running:
                    return
                done, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
                for future in done:
                    job, is_decode = running.pop(future)
                    if job.failed:
                        continue
                    if is_decode:
                        result = self._start_chunks(job, future, running, params)
                    else:
                        result = self._finish_chunk(job, future)
                    if result is not None:
                        open_jobs -= 1
                        yield job.path, result
        finally:
            for future in running:
                future.cancel()

    def _start_chunks(self, job: _Job, future: cf.Future, running: dict, params: TVL1Params):
        """Submit the chunks of a decoded video; return its error if decoding failed."""
        try:
            gray = future.result()
        except Exception as exc:
            job.failed = True
            return exc
        n_pairs = gray.shape[0] - 1
        job.out = np.empty((n_pairs, *gray.shape[1:], 2), np.uint8)
        for s, e in self._chunks(n_pairs, params):
            chunk = self._executor.submit(_flow_chunk, gray[s:e + 1], params)
            job.chunks[chunk] = (s, e)
            running[chunk] = (job, False)
        return None

    def _finish_chunk(self, job: _Job, future: cf.Future):
        """Store a finished chunk; return the flow when the video is complete, or its error."""
        s, e = job.chunks.pop(future)
        try:
            job.out[s:e] = future.result()
        except Exception as exc:
            job.failed = True
            for other in job.chunks:
                other.cancel()
            error = FlowError(f"{job.path}: optical flow failed on pairs {s}..{e - 1}: {exc}")
            error.__cause__ = exc
            return error
        return job.out if not job.chunks else None


def write_flow_shard(path, description: dict, videos: pd.DataFrame, params: TVL1Params,
                     pool, strict: bool, progress: Progress,
                     held: Mapping[str, str] | None = None) -> None:
    """ComputeFlow for one shard: quantized flow of every video into one HDF5 shard, one
    dataset per video (T-1, H, W, 2) uint8, with the video's content fingerprint (``videos``
    has a ``fingerprint`` column), computed by ``pool`` (the runner of params.backend:
    FlowPool or pipeline.flow.batches.BatchedFlow). Videos in ``held`` (id -> another complete
    flow shard of the same settings holding it, e.g. of another sharding) are copied from
    there.

    The decoded frame count is used, and a disagreement with the file's header count is
    recorded in the shard's info (HEADER_DISAGREES); a video decoded short of its header (a
    damaged frame ends decoding: `shortfall`) is an error when strict. A video that cannot be
    decoded is recorded as skipped with its reason (strict: the error stops the shard).
    """
    start = time.perf_counter()
    pairs = 0
    video_ids = dict(zip(videos["path"], videos["video_id"]))
    disagreements = {}
    held = held or {}
    fingerprints = dict(zip(videos["path"], videos["fingerprint"]))
    with cache.ShardWriter(path, description) as writer:
        writer.copy_held(held)
        for video_id in held:
            progress.advance(video_id)
        todo = videos[~videos["video_id"].isin(held)]
        for video_path, result in pool.map_videos(list(todo["path"]), params):
            video_id = video_ids[video_path]
            if isinstance(result, BaseException):
                if strict:
                    raise result
                writer.skip(video_id, str(result))
            else:
                header = header_frames(video_path)
                if strict and shortfall(header, len(result) + 1):
                    raise VideoError(f"{video_path}: {shortfall(header, len(result) + 1)}")
                writer.add(video_id, {"flow": result}, {"n_frames": len(result) + 1,
                                                        "fingerprint": fingerprints[video_path]})
                disagreements.update(header_disagreement(video_id, header, len(result) + 1))
                pairs += len(result)
            progress.advance(video_id)
        writer.info.update(seconds=round(time.perf_counter() - start, 2), frames=pairs,
                           **{HEADER_DISAGREES: disagreements})
