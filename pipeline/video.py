"""Video decoding and writing with OpenCV: RGB uint8 frames, streamed one at a time, and the
frame size at which flow and rgb features are computed ([video] frame_size)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from os import PathLike
from pathlib import Path

import cv2
import numpy as np

StrPath = str | PathLike


HEADER_DISAGREES = "header_disagrees"
"""The key, in a flow or feature shard's info, of the videos whose decoded frame count differs
from their header's: {video_id: {"header": n, "decoded": m}}; the report lists those decoded
short of their header (`shortfall`)."""


MIN_FRAME_SIDE = 16
"""The smallest width or height a frame size may have."""
MAX_FRAME_SIDE = 4096
"""The largest: 4K video, beyond every video of the datasets (UCF101 320x240, HMDB51 at most
640x480). Memory grows with the pixels: a 100000x100000 frame would be 30 GB of RGB."""

FrameSize = tuple[int, int]
"""(width, height) in pixels, as OpenCV and "340x256" name a size."""


class VideoError(ValueError):
    """A video that cannot be opened, decoded or written; the message names the file."""


def parse_frame_size(text: str) -> FrameSize:
    """"340x256" -> (340, 256): width x height in pixels, each in [MIN_FRAME_SIDE,
    MAX_FRAME_SIDE]."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(text))
    if not match:
        raise ValueError(f"must be WIDTHxHEIGHT in pixels, e.g. 340x256, got {text!r}")
    size = int(match[1]), int(match[2])
    if min(size) < MIN_FRAME_SIDE:
        raise ValueError(f"must be at least {MIN_FRAME_SIDE}x{MIN_FRAME_SIDE}, got {text!r}")
    if max(size) > MAX_FRAME_SIDE:
        raise ValueError(f"must be at most {MAX_FRAME_SIDE}x{MAX_FRAME_SIDE} (4K video), got "
                         f"{text!r}")
    return size


def format_frame_size(size: FrameSize) -> str:
    """(340, 256) -> "340x256", the form recorded in cache descriptions and model.json."""
    return f"{int(size[0])}x{int(size[1])}"


def resize_frame(frame: np.ndarray, size: FrameSize | None) -> np.ndarray:
    """A frame (H, W) or (H, W, C) stretched to ``size`` = (width, height), whatever its own
    aspect ratio (as the authors' 340x256 frames are), so that videos of mixed sizes give
    flow and features of one size. Pixel-area interpolation (OpenCV's INTER_AREA: averages
    when shrinking, so a 1280x720 frame does not alias; bilinear-like when enlarging). A frame
    that already has the size, or size None, is returned as it is."""
    if size is None or (frame.shape[1], frame.shape[0]) == tuple(size):
        return frame
    return cv2.resize(frame, (int(size[0]), int(size[1])), interpolation=cv2.INTER_AREA)


def resize_frames(frames: Iterable[np.ndarray], size: FrameSize | None) -> Iterator[np.ndarray]:
    """`resize_frame` over a stream of frames, one at a time."""
    for frame in frames:
        yield resize_frame(frame, size)


def shortfall(header: int, decoded: int) -> str:
    """Why a video that decoded fewer frames than its header counts is short ("" when it is
    not): decoding stops at the first frame that fails, so a damaged frame cuts the video
    there. A header without a count (0) or with fewer frames is an estimate, not a cut."""
    if 0 < decoded < header:
        return (f"decoded {decoded} of the {header} frames its header counts (decoding stops "
                "at a damaged frame)")
    return ""


def header_frames(path: StrPath) -> int:
    """The header's frame count (`probe_frame_count`), 0 when the file cannot be opened."""
    try:
        return probe_frame_count(path)
    except VideoError:
        return 0


def header_disagreement(video_id: str, header: int, decoded: int) -> dict:
    """{video_id: {"header": header, "decoded": decoded}} when the counts differ, else {}: the
    decoded count is the one used, the header's is often an estimate (0 when it has none)."""
    if header == decoded:
        return {}
    return {video_id: {"header": int(header), "decoded": int(decoded)}}


def _open(path: StrPath) -> cv2.VideoCapture:
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"{path}: video file does not exist")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise VideoError(f"{path}: cannot open video (unreadable or not a video container)")
    return capture


def _frames(capture: cv2.VideoCapture, path: StrPath) -> Iterator[np.ndarray]:
    try:
        ok, frame = capture.read()
        if not ok:
            raise VideoError(f"{path}: video decodes to no frames")
        while ok:
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            ok, frame = capture.read()
    finally:
        capture.release()


def iter_frames(path: StrPath, size: FrameSize | None = None) -> Iterator[np.ndarray]:
    """Yield the frames of `path` as RGB uint8 (H, W, 3) arrays, one at a time, each resized to
    ``size`` = (width, height) when given (`resize_frame`).

    The file is opened before this returns (so an unopenable file raises here); a video that
    opens but yields no frame raises VideoError on the first `next`.
    """
    frames = _frames(_open(path), path)
    return frames if size is None else resize_frames(frames, size)


def read_frames(path: StrPath, size: FrameSize | None = None) -> np.ndarray:
    """Decode the whole video at `path` into a (T, H, W, 3) uint8 RGB array (resized to
    ``size`` = (width, height) when given)."""
    return np.stack(list(iter_frames(path, size)))


def count_frames(path: StrPath) -> int:
    """The number of frames `read_frames` decodes from `path`: exact, unlike the header's
    count, at the cost of decoding the video (one frame in memory at a time)."""
    return sum(1 for _ in iter_frames(path))


def probe_frame_count(path: StrPath) -> int:
    """Frame count from the container header (CAP_PROP_FRAME_COUNT), without decoding.

    Cheap but only as exact as the header, which containers often fill with an estimate; a
    header without a count gives 0. `count_frames` decodes for the exact count.
    """
    capture = _open(path)
    try:
        return max(int(round(capture.get(cv2.CAP_PROP_FRAME_COUNT))), 0)
    finally:
        capture.release()


def write_video(path: StrPath, frames_rgb: np.ndarray, fps: float = 25, codec: str = "MJPG"):
    """Write RGB uint8 frames with a codec of the headless wheel: MJPG (AVI, the default) or
    mp4v (MPEG-4 part 2, a lossy inter-frame codec, as in bench/flow_agreement.py).

    Width and height must be even: the encoder would otherwise crop the frames silently.
    """
    frames = np.asarray(frames_rgb)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise VideoError(
            f"{path}: frames must be a (T, H, W, 3) uint8 array, got shape {frames.shape} "
            f"and dtype {frames.dtype}"
        )
    n, height, width = frames.shape[:3]
    if n == 0:
        raise VideoError(f"{path}: refusing to write a video with no frames")
    if height % 2 or width % 2:
        raise VideoError(f"{path}: {codec} needs even frame sizes, got {width}x{height}")
    fourcc = cv2.VideoWriter_fourcc(*codec)
    writer = cv2.VideoWriter(str(path), fourcc, float(fps), (width, height))
    if not writer.isOpened():
        raise VideoError(f"{path}: cannot open a video writer (missing folder or codec)")
    try:
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
