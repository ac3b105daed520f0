"""Bounds on the settings whose size multiplies memory, taken from the data or the machine.

A snippet or segment is padded with copies of a video's last frame where the video is shorter:
one longer than every video is said once, one more than twice the longest video (mostly
copies, e.g. `[evaluate] length = 100000`) is refused, and so are more segments than twice the
longest video's frames. A batch of inputs must fit in a share of
the machine's memory, and a model call over many segments is split into calls of bounded input
size, so that memory stays bounded and a SIGTERM is acted on between calls.
"""

from __future__ import annotations

import logging
import os

import numpy as np

PADDING_LIMIT = 2
"""A window may be at most this many times the longest video's frames."""
MEMORY_SHARE = 0.25
"""The share of the machine's memory one batch of a model's inputs may take."""
PRELOAD_SHARE = 1 / 32
"""The share of the machine's memory a training task may fill with its videos' features read
whole (several tasks train at once: one per core or GPU)."""
CALL_BYTES = 256 << 20
"""The inputs of one model call over a video's segments stay within this many bytes."""

logger = logging.getLogger("luigi-interface")


def check_window(setting: str, length: int, longest: int, videos: str) -> None:
    """Refuse a window of ``length`` frames (a snippet or segment) longer than PADDING_LIMIT
    times the longest of ``videos``; say once when it is longer than every one of them."""
    if length > PADDING_LIMIT * longest:
        raise ValueError(f"{setting} = {length}: the longest {videos} has {longest} frames, so "
                         "more than half of every window would be copies of a video's last "
                         f"frame; set at most {PADDING_LIMIT * longest}")
    if length > longest:
        logger.warning("%s = %d is longer than every %s (the longest has %d frames): each "
                       "window is padded with copies of its video's last frame", setting,
                       length, videos, longest)


def check_segments(setting: str, segments: int, longest: int, videos: str) -> None:
    """Refuse more segments than PADDING_LIMIT times the longest video's frames: a video has
    at most one distinct segment start per frame, so the others only repeat them."""
    if segments > PADDING_LIMIT * longest:
        raise ValueError(f"{setting} = {segments}: the longest {videos} has {longest} frames, "
                         "so most segments would repeat others; set at most "
                         f"{PADDING_LIMIT * longest}")


def machine_memory() -> int:
    """Bytes of physical memory of this machine."""
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_batch(setting: str, frames: int, frame_bytes: int, memory: int | None = None) -> None:
    """Refuse a batch of ``frames`` frames of ``frame_bytes`` input bytes each that would take
    more than MEMORY_SHARE of the machine's memory."""
    memory = machine_memory() if memory is None else memory
    needed = frames * frame_bytes
    if needed > MEMORY_SHARE * memory:
        raise ValueError(f"{setting}: one batch of inputs needs {needed / 2**30:.1f} GiB, more "
                         f"than {MEMORY_SHARE:.0%} of this machine's {memory / 2**30:.1f} GiB; "
                         "make it smaller")


def fits_preload(nbytes: int, memory: int | None = None) -> bool:
    """Whether ``nbytes`` of features may be held in memory for one training task."""
    return nbytes <= PRELOAD_SHARE * (machine_memory() if memory is None else memory)


def frame_bytes(shapes: dict[str, tuple[int, ...]]) -> int:
    """Bytes of one frame of a model's float32 inputs, given each input's per-frame shape."""
    return sum(int(np.prod(shape)) * 4 for shape in shapes.values())


def per_call(item_bytes: int, budget: int = CALL_BYTES) -> int:
    """How many items (segments) of ``item_bytes`` input bytes one model call takes so that
    its inputs stay within ``budget`` (at least one)."""
    return max(1, budget // max(1, item_bytes))
