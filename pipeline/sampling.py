"""Which frames a model sees: random training snippets and fixed test segments (paper 5.2).

Videos shorter than the snippet length are padded by repeating their last frame. The models
take fixed-length sequences, and repeating the last frame keeps the frames in their true order
without inventing motion, whereas looping back to the first frame would put a jump cut inside
the sequence that the recurrent state would have to absorb.
"""

import numpy as np


def _check_counts(n_frames, length):
    if n_frames < 1:
        raise ValueError(f"n_frames must be at least 1, got {n_frames}")
    if length < 1:
        raise ValueError(f"snippet length must be at least 1, got {length}")


def _window(start, n_frames, length):
    """`length` consecutive indices from `start`, clipped to the last frame (pads short videos)."""
    return np.minimum(np.arange(start, start + length), n_frames - 1)


def random_snippet(n_frames, length, rng: np.random.Generator):
    """Frame indices (length,) of one contiguous snippet at a uniformly random start (training)."""
    _check_counts(n_frames, length)
    start = int(rng.integers(0, max(n_frames - length, 0) + 1))
    return _window(start, n_frames, length)


def segment_indices(n_frames, n_segments=25, length=30):
    """Frame indices (n_segments, length) of equally spaced test segments (paper 5.2, after [2]).

    The first segment starts at frame 0 and the last ends at the last frame; the starts in
    between are floor(i * (n_frames - length) / (n_segments - 1)), computed in integers so
    they do not depend on floating-point rounding. A single segment is centred. Videos with
    fewer frames than n_segments + length - 1 get overlapping or repeated segments.
    """
    _check_counts(n_frames, length)
    if n_segments < 1:
        raise ValueError(f"n_segments must be at least 1, got {n_segments}")
    span = max(n_frames - length, 0)
    if n_segments == 1:
        starts = [span // 2]
    else:
        starts = [i * span // (n_segments - 1) for i in range(n_segments)]
    return np.stack([_window(start, n_frames, length) for start in starts])


def aligned_length(n_rgb, n_flow):
    """Frames usable by a model that reads both streams: min(n_rgb, n_flow).

    Flow frame t lies between RGB frames t and t + 1, so a video has one flow frame fewer than
    RGB frames; frame t of both streams is then the pair (rgb t, flow t) for t < min.
    """
    if n_rgb < 1 or n_flow < 1:
        raise ValueError(
            f"both streams need at least 1 frame to align, got n_rgb={n_rgb}, n_flow={n_flow}"
        )
    return min(int(n_rgb), int(n_flow))
