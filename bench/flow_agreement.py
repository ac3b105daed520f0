"""How closely the TensorFlow TV-L1 solver follows OpenCV's, for bench/bench_flow.py.

Given the float flows of both solvers on the same pairs, `compare` measures their difference
(end-point error between the two flows: mean over all pixels, 99th percentile and maximum; the
fraction of quantized uint8 values more than one level apart) and, where the motion is known,
each solver's mean end-point error against it away from a 16-pixel border. Beside them, OpenCV's
own sensitivity: the end-point error between OpenCV's flow of a pair and of the same pair with
NOISE_SD gray levels of noise on its first frame, the scale on which float rounding alone moves
a TV-L1 solution (the problem is not convex once warped). The clips besides
the bench's own: `synthetic_videos` writes videos of the repo's synthetic dataset, and
`photo_clip` a "real-like" clip, a photograph under a known pan and zoom through a lossy codec.
"""

import dataclasses
from pathlib import Path

import cv2
import matplotlib.cbook
import numpy as np

from pipeline.datasets.synthetic import CLASS_NAMES, SyntheticSpec, render_video, video_stem
from pipeline.flow.tvl1 import TVL1Params, quantize, tvl1
from pipeline.video import read_frames, write_video

MEAN_EPE_TARGET = 0.05
"""Largest mean end-point error between the two solvers' flows the issue accepts, pixels."""
TRUTH_SLACK = 0.001
"""How much larger than OpenCV's the TensorFlow solver's mean error against the known motion may
be and still count as no worse, pixels: differences below it are float rounding."""
NOISE_SD = 0.001
"""Standard deviation, in gray levels, of the noise behind OpenCV's own sensitivity."""
BORDER = 16
"""Pixels left out on each side when comparing with the known motion."""
PHOTO = "grace_hopper.jpg"
"""matplotlib's sample photograph (512 x 600), the texture of the real-like clip."""
PHOTO_ZOOM = 0.99
"""The real-like clip's zoom per frame: each frame sees 0.99 times the previous one's extent."""
PHOTO_PAN = (1.2, -0.6)
"""The real-like clip's pan per frame, in photograph pixels (x, y)."""


@dataclasses.dataclass(frozen=True)
class Agreement:
    """One clip's figures; the errors against the known motion are None where it is unknown."""

    clip: str
    pairs: int
    size: str
    mean: float
    p99: float
    max: float
    quantized_apart: float
    noise_mean: float
    noise_max: float
    truth_opencv: float | None
    truth_tensorflow: float | None


def opencv_flows(prev: np.ndarray, next_: np.ndarray, params: TVL1Params) -> np.ndarray:
    """OpenCV's float flow of N pairs: (N, H, W) uint8 twice -> (N, H, W, 2) float32, whatever
    params.backend says."""
    params = dataclasses.replace(params, backend="opencv")
    return np.stack([tvl1(a, b, params) for a, b in zip(prev, next_)])


def opencv_perturbed(prev: np.ndarray, next_: np.ndarray, params: TVL1Params,
                     seed: int = 0) -> np.ndarray:
    """OpenCV's float flow of N pairs whose first frames carry Gaussian noise of NOISE_SD gray
    levels (fed as float images, which OpenCV scales by 255)."""
    rng = np.random.default_rng(seed)
    flows = []
    for a, b in zip(prev, next_):
        solver = cv2.optflow.DualTVL1OpticalFlow_create(
            params.tau, params.lambda_, params.theta, params.nscales, params.warps,
            params.epsilon, params.inner_iterations, params.outer_iterations,
            params.scale_step, params.gamma, params.median_filtering, False)
        noisy = ((a + rng.normal(0, NOISE_SD, a.shape)) / 255).astype(np.float32)
        flows.append(solver.calc(noisy, (b / 255).astype(np.float32),
                                 np.zeros((*a.shape, 2), np.float32)))
    return np.stack(flows)


def _end_point_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.hypot(a[..., 0] - b[..., 0], a[..., 1] - b[..., 1])


def _truth_error(flow: np.ndarray, truth: np.ndarray) -> float:
    inner = (slice(None), slice(BORDER, -BORDER), slice(BORDER, -BORDER))
    return float(_end_point_error(flow[inner], truth[inner]).mean())


def compare(clip: str, opencv: np.ndarray, tensorflow: np.ndarray, perturbed: np.ndarray,
            bound: float, truth: np.ndarray | None = None) -> Agreement:
    """The figures of one clip from both solvers' (N, H, W, 2) float flows, OpenCV's on the
    perturbed pairs (`opencv_perturbed`) and, when known, the true (N, H, W, 2) motion."""
    epe = _end_point_error(tensorflow, opencv)
    noise = _end_point_error(perturbed, opencv)
    levels = np.abs(quantize(tensorflow, bound).astype(np.int16) - quantize(opencv, bound))
    n, h, w = epe.shape
    return Agreement(
        clip, n, f"{w}x{h}", float(epe.mean()), float(np.percentile(epe, 99)), float(epe.max()),
        float((levels > 1).mean()), float(noise.mean()), float(noise.max()),
        None if truth is None else _truth_error(opencv, truth),
        None if truth is None else _truth_error(tensorflow, truth))


def _verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def print_agreement(rows: list[Agreement]) -> None:
    """The table of `compare` figures with the issue's two verdicts: mean EPE between the solvers
    <= MEAN_EPE_TARGET, and the TensorFlow solver's error against the known motion no larger
    than OpenCV's (up to TRUTH_SLACK)."""
    print(f"{'clip':<22}{'pairs':>6}{'size':>9}{'EPE tf-cv':>10}{'':>5}{'p99':>7}{'max':>7}"
          f"{'q >1 lvl':>10}{'noise':>8}{'max':>7}{'truth cv':>10}{'truth tf':>10}"
          f"{'tf - cv':>10}")
    for r in rows:
        truth = f"{'-':>10}{'-':>10}{'-':>10}"
        if r.truth_opencv is not None:
            worse = r.truth_tensorflow - r.truth_opencv
            truth = (f"{r.truth_opencv:>10.4f}{r.truth_tensorflow:>10.4f}{worse:>+10.5f}"
                     f" {_verdict(worse <= TRUTH_SLACK)}")
        print(f"{r.clip:<22}{r.pairs:>6}{r.size:>9}{r.mean:>10.4f}"
              f"{_verdict(r.mean <= MEAN_EPE_TARGET):>5}{r.p99:>7.3f}{r.max:>7.2f}"
              f"{r.quantized_apart:>10.2%}{r.noise_mean:>8.4f}{r.noise_max:>7.2f}{truth}")
    print(f"targets: EPE tf-cv (mean over pixels) <= {MEAN_EPE_TARGET} px; truth (mean EPE "
          f"against the known motion,\n  {BORDER}-px border left out): tf - cv <= {TRUTH_SLACK} "
          "px. q >1 lvl: quantized uint8 values more than one level apart.\n  noise, max: "
          f"EPE of OpenCV against itself with {NOISE_SD} gray levels of noise on the first "
          "frame (mean, max)")


def synthetic_videos(folder: Path, count: int, spec: SyntheticSpec = SyntheticSpec()
                     ) -> list[Path]:
    """Write `count` videos of the synthetic dataset of `spec` into `folder`, as the dataset
    renders and names them (MJPG .avi); classes taken 5 apart in turn so that swings and
    bounces alternate."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        k, group = i * 5 % spec.classes, i // spec.classes
        frames, _ = render_video(spec, k, np.random.default_rng([spec.seed, k, group, 0]))
        path = folder / f"{video_stem(CLASS_NAMES[k], group, 0)}.avi"
        write_video(path, frames)
        paths.append(path)
    return paths


def _photo() -> np.ndarray:
    path = matplotlib.cbook.get_sample_data(PHOTO, asfileobj=False)
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def photo_clip(folder: Path, n_frames: int, width: int, height: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """The real-like clip: (n_frames, height, width, 3) uint8 RGB as decoded from an mp4v
    (MPEG-4 part 2) file, and its true flow (n_frames - 1, height, width, 2).

    Frame t shows the photograph at p -> C + z^t (p - c) + t * PHOTO_PAN (c, C: the frame's
    and the photograph's centres, z = PHOTO_ZOOM), sampled bicubically; a point at p in frame t
    is at c + (p - c) / z - PHOTO_PAN / z^(t+1) in frame t + 1.
    """
    photo = _photo()
    cover = max(1.1 * width / photo.shape[1], 1.1 * height / photo.shape[0])
    if cover > 1:  # frames larger than the photograph: enlarge it to cover them with a margin
        photo = cv2.resize(photo, None, fx=cover, fy=cover, interpolation=cv2.INTER_CUBIC)
    c = np.array([(width - 1) / 2, (height - 1) / 2])
    big_c = np.array([(photo.shape[1] - 1) / 2, (photo.shape[0] - 1) / 2])
    pan = np.array(PHOTO_PAN)
    frames = []
    for t in range(n_frames):
        z = PHOTO_ZOOM ** t
        offset = big_c - z * c + t * pan
        warp = np.array([[z, 0.0, offset[0]], [0.0, z, offset[1]]])
        frames.append(cv2.warpAffine(photo, warp, (width, height),
                                     flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                                     borderMode=cv2.BORDER_REFLECT))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "photo_pan_zoom.mp4"
    write_video(path, np.stack(frames), codec="mp4v")
    grid = np.stack(np.meshgrid(np.arange(width), np.arange(height)), axis=-1) - c
    truth = np.stack([(1 / PHOTO_ZOOM - 1) * grid - pan / PHOTO_ZOOM ** (t + 1)
                      for t in range(n_frames - 1)])
    return read_frames(path), truth.astype(np.float32)

