"""Throughput of TV-L1 flow (frame pairs per second) on a synthetic clip, and how closely the
batched TensorFlow solver follows OpenCV's.

Throughput, on a smooth random texture moving by a known SHIFT per frame plus Gaussian noise:
(a) naive baseline: one process, cv2.setNumThreads(1), pairs one after another;
(b) one process with OpenCV's own threading (its default thread count);
(c) FlowPool: one single-threaded spawned process per core, the clip's pairs split in chunks;
(d) pipeline.flow.tvl1_tensorflow.solve_pairs on the device TensorFlow sees (a GPU, or the CPU), in
    batches of at most --batch-pairs pairs and at most the clip's pairs (so none is padded);
    the first call of a batch shape
    compiles with XLA, so a warm-up call on blank frames of the same shape comes first and its
    seconds are printed apart from the timing.
The script checks that (b) and (c) equal (a) exactly and prints (a)'s mean end-point error
against SHIFT.

With both backends, agreement between the two solvers' float flows on --agreement-pairs pairs
of three clips (bench/flow_agreement.py): the bench clip's first pairs, whose TensorFlow flow is
(d)'s (truth: SHIFT); the first pairs of two videos of the repo's synthetic dataset
(pipeline.datasets.synthetic at its default 160x120, written as the dataset writes them, MJPG,
and decoded back; truth unknown: objects move over a panning background); and a real-like clip:
there is no real dataset here, the tests write only MJPG clips and this OpenCV build has no
H.264 encoder, so it is a photograph (matplotlib's sample grace_hopper.jpg) under a known pan
and zoom at the bench clip's size, encoded with mp4v (MPEG-4 part 2) and decoded back. Per
clip: mean, 99th percentile and maximum end-point error between the flows, the fraction of
quantized uint8 values more than one level apart, and each solver's mean end-point error
against the known motion (16-px border left out), OpenCV's own sensitivity (its flow with 0.001
gray levels of noise on the first frame against its flow without), with PASS/FAIL against the
issue's targets:
mean error between the solvers <= 0.05 px, and TensorFlow's error against the truth no larger
than OpenCV's plus 0.001 px (float rounding).

With the tensorflow backend, the busy fraction of the device in ComputeFlow's runner:
BatchedFlow.map_videos over --busy-videos synthetic dataset videos of --busy-frames frames
(decoded by --processes workers while the main process solves); wall seconds, seconds inside the
solver, their ratio, and pairs per second end to end (decoding and solving). The batch shapes it
uses are compiled first. The defaults (2 videos of 5 frames: one batch) keep a CPU run short;
on a GPU give it many batches, e.g. --busy-videos 32 --busy-frames 33.

Usage: .venv/bin/python bench/bench_flow.py [--pairs 24 --width 320 --height 240 --processes P
       --backends opencv,tensorflow --batch-pairs 32 --agreement-pairs 8 --busy-videos 2
       --busy-frames 5]
"""

import argparse
import dataclasses
import math
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from scipy.ndimage import gaussian_filter  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from flow_agreement import (Agreement, compare, opencv_flows, opencv_perturbed,  # noqa: E402
                            photo_clip, print_agreement, synthetic_videos)
from pipeline.datasets.synthetic import SyntheticSpec  # noqa: E402
from pipeline.flow.tvl1 import (BACKENDS, FlowPool, TVL1Params, dequantize,  # noqa: E402
                                flow_gray, video_flow)
from pipeline.video import read_frames  # noqa: E402

SHIFT = (1.5, -0.75)  # content motion per frame in pixels, (dx, dy)


def synthetic_clip(n_frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """(n_frames, height, width, 3) uint8 RGB: a periodic texture shifted by SHIFT per frame."""
    rng = np.random.default_rng(seed)
    texture = gaussian_filter(rng.random((height, width, 3)), (3.0, 3.0, 0.0), mode="wrap")
    texture = (texture - texture.min()) / (texture.max() - texture.min()) * 230 + 12
    spectrum = np.fft.fft2(texture, axes=(0, 1))
    fy = np.fft.fftfreq(height)[:, None, None]
    fx = np.fft.fftfreq(width)[None, :, None]
    frames = []
    for t in range(n_frames):
        phase = np.exp(-2j * np.pi * (fx * SHIFT[0] * t + fy * SHIFT[1] * t))
        frame = np.fft.ifft2(spectrum * phase, axes=(0, 1)).real + rng.normal(0, 2, texture.shape)
        frames.append(np.clip(np.rint(frame), 0, 255).astype(np.uint8))
    return np.stack(frames)


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def gray(frames_rgb: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) RGB -> (T, H, W) uint8, the image each solver sees."""
    return np.stack([flow_gray(frame) for frame in frames_rgb])


def opencv_rows(frames: np.ndarray, params: TVL1Params, processes: int
                ) -> list[tuple[str, float]]:
    """Time (a), (b) and (c); print whether they agree and (a)'s error against SHIFT."""
    default_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    baseline, t_a = timed(lambda: video_flow(frames, params))
    cv2.setNumThreads(default_threads)
    threaded, t_b = timed(lambda: video_flow(frames, params))
    with FlowPool(processes) as pool:
        pool.flow_frames(frames[:2, :32, :32], params)  # start the workers before timing
        pooled, t_c = timed(lambda: pool.flow_frames(frames, params))
    flow = dequantize(baseline, params.bound)[:, 16:-16, 16:-16]
    epe = np.hypot(flow[..., 0] - SHIFT[0], flow[..., 1] - SHIFT[1]).mean()
    print(f"identical results: (b)=(a) {np.array_equal(threaded, baseline)}, "
          f"(c)=(a) {np.array_equal(pooled, baseline)}; (a) mean end-point error {epe:.3f} px")
    return [("(a) 1 process, 1 thread", t_a),
            (f"(b) 1 process, {default_threads} OpenCV threads", t_b),
            (f"(c) FlowPool, {processes} processes", t_c)]


def tensorflow_device() -> str:
    """The GPU TensorFlow runs on (its name), or "CPU" when it sees none."""
    import tensorflow as tf
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU"
    return tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name)


def compile_seconds(params: TVL1Params, n_pairs: int, height: int, width: int,
                    batch_pairs: int) -> float:
    """Seconds of a solve_pairs call on n_pairs blank pairs: XLA compiles the batch shape that
    n_pairs real pairs would use (blank pairs stop at once)."""
    from pipeline.flow import tvl1_tensorflow
    blank = np.zeros((n_pairs, height, width), np.uint8)
    return timed(lambda: tvl1_tensorflow.solve_pairs(blank, blank, params,
                                                     batch_pairs=batch_pairs))[1]


def tensorflow_row(frames_gray: np.ndarray, params: TVL1Params, batch_pairs: int
                   ) -> tuple[tuple[str, float], np.ndarray]:
    """Time (d) after its warm-up; return the row and the float flow of every pair. Batches
    are at most as large as the clip, so that no padded pair is solved but not counted."""
    from pipeline.flow import tvl1_tensorflow
    prev, next_ = frames_gray[:-1], frames_gray[1:]
    batch_pairs = min(batch_pairs, len(prev))
    warm_up = compile_seconds(params, len(prev), *prev.shape[1:], batch_pairs)
    print(f"(d) warm-up (XLA compile of the batch shape): {warm_up:.1f} s, not timed")
    flows, seconds = timed(lambda: tvl1_tensorflow.solve_pairs(prev, next_, params,
                                                               batch_pairs=batch_pairs))
    return (f"(d) TensorFlow, batches of {batch_pairs}", seconds), flows


def print_rows(rows: list[tuple[str, float]], pairs: int) -> None:
    """The throughput table, and each row's speed-up over (a) when (a) ran."""
    print(f"{'method':<36}{'seconds':>9}{'pairs/s':>9}")
    for name, seconds in rows:
        print(f"{name:<36}{seconds:>9.2f}{pairs / seconds:>9.2f}")
    if len(rows) > 1 and rows[0][0].startswith("(a)"):
        print("speed-up over (a): " + ", ".join(
            f"{name[:3]} {rows[0][1] / seconds:.2f}x" for name, seconds in rows[1:]))


def pairs_of(clips_gray: list[np.ndarray], per_clip: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `per_clip` adjacent pairs of each (T, H, W) clip: (N, H, W) prev and next."""
    prev = np.concatenate([clip[:per_clip] for clip in clips_gray])
    next_ = np.concatenate([clip[1:per_clip + 1] for clip in clips_gray])
    return prev, next_


def agreement_rows(bench_gray: np.ndarray, bench_tf: np.ndarray, params: TVL1Params,
                   n_pairs: int, batch_pairs: int, folder: Path) -> list[Agreement]:
    """`compare` on the bench clip (reusing (d)'s flows), the synthetic dataset's videos and
    the real-like photo clip, about n_pairs pairs each."""
    from pipeline.flow import tvl1_tensorflow

    def both(prev, next_):
        return (opencv_flows(prev, next_, params),
                tvl1_tensorflow.solve_pairs(prev, next_, params, batch_pairs=batch_pairs),
                opencv_perturbed(prev, next_, params))

    n = min(n_pairs, len(bench_tf))
    prev, next_ = bench_gray[:n], bench_gray[1:n + 1]
    bench_cv = opencv_flows(prev, next_, params)
    shift = np.broadcast_to(np.float32(SHIFT), bench_cv.shape)
    rows = [compare("bench texture shift", bench_cv, bench_tf[:n],
                    opencv_perturbed(prev, next_, params), params.bound, shift)]
    videos = [gray(read_frames(path)) for path in synthetic_videos(folder, 2)]
    rows.append(compare("synthetic dataset x2", *both(*pairs_of(videos, math.ceil(n_pairs / 2))),
                        params.bound))
    height, width = bench_gray.shape[1:]
    photo, truth = photo_clip(folder, n_pairs + 1, width, height)
    rows.append(compare("photo pan+zoom, mp4v", *both(*pairs_of([gray(photo)], n_pairs)),
                        params.bound, truth))
    return rows


def busy_fraction(params: TVL1Params, videos: int, frames: int, processes: int,
                  batch_pairs: int, folder: Path) -> None:
    """Print BatchedFlow.map_videos' wall and solver seconds over synthetic dataset videos."""
    from pipeline.flow.batches import BatchedFlow
    spec = SyntheticSpec(frames=frames)
    paths = synthetic_videos(folder, videos, spec)
    total = videos * (frames - 1)
    # full batches, then the remainder: the batches map_videos makes of equal-size videos that
    # are not so short that 2 x processes of them fill no batch
    warm_up = sum(compile_seconds(params, n, spec.height, spec.width, batch_pairs)
                  for n in {min(total, batch_pairs), total % batch_pairs} - {0})
    with BatchedFlow(processes, batch_pairs) as runner:
        start = time.perf_counter()
        pairs = 0
        for path, flow in runner.map_videos(paths, params):
            if isinstance(flow, BaseException):
                raise flow
            pairs += len(flow)
        wall = time.perf_counter() - start
    print(f"BatchedFlow.map_videos: {videos} synthetic videos of {frames} frames "
          f"({spec.width}x{spec.height}), {processes} decoding processes, "
          f"batches of {batch_pairs}\n(warm-up, XLA compile: {warm_up:.1f} s, not timed)")
    print(f"{'pairs':>6}{'wall s':>9}{'solver s':>10}{'busy':>7}{'pairs/s':>9}")
    print(f"{pairs:>6}{wall:>9.2f}{runner.solver_seconds:>10.2f}"
          f"{runner.solver_seconds / wall:>7.1%}{pairs / wall:>9.2f}")


def parse_backends(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = set(names) - set(BACKENDS)
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"backends must be a comma-separated list of {', '.join(BACKENDS)}, got {text!r}")
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=24)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--processes", type=int, default=os.cpu_count())
    parser.add_argument("--backends", type=parse_backends, default=list(BACKENDS),
                        help="rows to run: opencv (a-c), tensorflow (d and the busy fraction); "
                             "the agreement needs both")
    parser.add_argument("--batch-pairs", type=int, default=32)
    parser.add_argument("--agreement-pairs", type=int, default=8, help="pairs per clip")
    parser.add_argument("--busy-videos", type=int, default=2)
    parser.add_argument("--busy-frames", type=int, default=5)
    args = parser.parse_args()

    frames = synthetic_clip(args.pairs + 1, args.height, args.width)
    params = TVL1Params()
    print(f"{args.pairs} pairs of {args.width}x{args.height}, {os.cpu_count()} cores, "
          f"OpenCV {cv2.__version__} (default threads {cv2.getNumThreads()})")
    rows = []
    if "opencv" in args.backends:
        rows += opencv_rows(frames, params, args.processes)
    if "tensorflow" in args.backends:
        import tensorflow as tf
        print(f"TensorFlow {tf.__version__} on {tensorflow_device()}")
        tf_params = dataclasses.replace(params, backend="tensorflow")
        frames_gray = gray(frames)
        row, tf_flows = tensorflow_row(frames_gray, tf_params, args.batch_pairs)
        rows.append(row)
    print_rows(rows, args.pairs)
    if "tensorflow" not in args.backends:
        return
    with tempfile.TemporaryDirectory() as folder:
        if "opencv" in args.backends:
            print(f"\nagreement, TensorFlow vs OpenCV (float flows; quantized at bound "
                  f"{params.bound:g})")
            print_agreement(agreement_rows(frames_gray, tf_flows, tf_params,
                                           args.agreement_pairs, args.batch_pairs,
                                           Path(folder) / "agreement"))
        print()
        busy_fraction(tf_params, args.busy_videos, args.busy_frames, args.processes,
                      args.batch_pairs, Path(folder) / "busy")


if __name__ == "__main__":
    main()
