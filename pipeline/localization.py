"""Weakly supervised action localization from attention maps (paper Sec. 4 and 5.4).

Attention maps become saliency maps (up-sampling, Gaussian smoothing), saliency maps become
candidate boxes (threshold, 8-connected components, Eq. 16), boxes are chained over time by
IoU with the previously selected box (Eq. 17) and smoothed by local linear regression, giving
one tube per video. Boxes are float (x1, y1, x2, y2) in frame pixels with x2, y2 exclusive;
a frame without a box is a row of NaN.
"""

import cv2
import numpy as np
from statsmodels.nonparametric.smoothers_lowess import lowess

from pipeline.metrics import box_iou

SALIENCY_MAX = 255.0


def saliency_map(attention, frame_hw, sigma):
    """Saliency map S_t of one frame (Sec. 4): attention up-sampled, smoothed, scaled to [0, 255].

    The N x N attention map is resized to the frame with bilinear interpolation (OpenCV,
    pixel centres aligned: the paper's "2-dimensional interpolation assuming affine
    transform"), smoothed with a Gaussian of standard deviation `sigma` pixels (0: none), and
    divided by its maximum times 255. Division by the maximum rather than min-max: attention
    is a softmax (Eq. 8), so non-negative, and theta = 100 then reads "at least 100/255 of this
    frame's peak attention"; a nearly uniform map stays nearly uniform (a frame-sized box)
    instead of having its small differences stretched to the full range. An all-zero map
    gives an all-zero saliency map.
    """
    attention = np.asarray(attention, dtype=np.float32)
    if attention.ndim != 2:
        raise ValueError(f"attention map must be 2-D (N, N), got shape {attention.shape}")
    if not np.all(np.isfinite(attention)) or attention.min() < 0:
        raise ValueError("attention map must be finite and non-negative (a softmax, Eq. 8)")
    height, width = (int(v) for v in frame_hw)
    if height < 1 or width < 1:
        raise ValueError(f"frame_hw must be positive (H, W), got {tuple(frame_hw)}")
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0 pixels, got {sigma}")
    saliency = cv2.resize(attention, (width, height), interpolation=cv2.INTER_LINEAR)
    if sigma > 0:
        saliency = cv2.GaussianBlur(saliency, (0, 0), sigmaX=sigma, sigmaY=sigma)
    peak = float(saliency.max())
    if peak <= 0:
        return np.zeros((height, width), dtype=np.float32)
    return (saliency * (SALIENCY_MAX / peak)).astype(np.float32)


def candidate_boxes(saliency, theta=100.0):
    """Candidate boxes B_t = CCbox(S_t >= theta) (Eq. 16): 8-connected components, enclosed.

    Returns (K, 4) float boxes ordered by saliency mass (sum of S_t over the component's
    pixels), largest first; equal masses keep OpenCV's label order (raster order of each
    component's first pixel).
    """
    saliency = np.asarray(saliency, dtype=np.float32)
    if saliency.ndim != 2:
        raise ValueError(f"saliency map must be 2-D (H, W), got shape {saliency.shape}")
    if not 0 < theta <= SALIENCY_MAX:
        raise ValueError(f"theta must be in (0, {SALIENCY_MAX:g}], got {theta}")
    mask = (saliency >= theta).astype(np.uint8)
    n_labels, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n_labels == 1:
        return np.zeros((0, 4), dtype=np.float64)
    mass = np.bincount(labels.ravel(), weights=saliency.ravel(), minlength=n_labels)[1:]
    stats = stats[1:]
    order = np.argsort(-mass, kind="stable")
    x, y = stats[order, cv2.CC_STAT_LEFT], stats[order, cv2.CC_STAT_TOP]
    w, h = stats[order, cv2.CC_STAT_WIDTH], stats[order, cv2.CC_STAT_HEIGHT]
    return np.stack([x, y, x + w, y + h], axis=1).astype(np.float64)


def chain_boxes(candidates):
    """One box per frame (Eq. 17): the candidate with the best IoU to the previous selected box.

    `candidates` is a list of (K_t, 4) arrays ordered by preference (as `candidate_boxes`
    returns them). The first frame with candidates has no predecessor and takes its first
    (largest saliency mass). Ties in IoU, all-zero IoUs included, go to the earlier candidate.
    A frame without candidates keeps the previous selected box; frames before the first
    candidate have none (NaN). Returns (T, 4).
    """
    chained = np.full((len(candidates), 4), np.nan)
    previous = None
    for t, boxes in enumerate(candidates):
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        if len(boxes) == 0:
            if previous is not None:
                chained[t] = previous
            continue
        if previous is None:
            previous = boxes[0]
        else:
            previous = boxes[int(np.argmax(box_iou(boxes, previous[None, :])))]
        chained[t] = previous
    return chained


def smooth_boxes(boxes, frac, frame_hw):
    """Temporal smoothing of each box coordinate by LOWESS (Sec. 4), clipped to the frame.

    Locally weighted linear regression (first degree, tricube weights) of each coordinate
    against the frame index, with statsmodels' `lowess` and no robustness iterations
    (it=0), each window holding `frac` of the frames that have a box. NaN rows are left out of
    the fit and stay NaN; with fewer than 3 boxes there is no fit. The line can extrapolate
    past the frame edges near the ends of a track, so x is clipped to [0, W], y to [0, H].
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must have shape (T, 4), got {boxes.shape}")
    if not 0 < frac <= 1:
        raise ValueError(f"frac must be in (0, 1], got {frac}")
    height, width = (int(v) for v in frame_hw)
    if height < 1 or width < 1:
        raise ValueError(f"frame_hw must be positive (H, W), got {tuple(frame_hw)}")
    present = np.all(np.isfinite(boxes), axis=1)
    smoothed = boxes.copy()
    if present.sum() >= 3:
        frames = np.flatnonzero(present).astype(np.float64)
        for k in range(4):
            smoothed[present, k] = lowess(
                boxes[present, k], frames, frac=frac, it=0, delta=0.0, return_sorted=False
            )
    return np.clip(smoothed, 0.0, [width, height, width, height])


def localize(attention, frame_hw, theta, sigma, frac, smooth=True):
    """One action tube per video from its attention maps (T, N, N): Sec. 4 end to end.

    Returns (T, 4) boxes in the frame, NaN where no frame up to then had a salient region.
    """
    attention = np.asarray(attention)
    if attention.ndim != 3:
        raise ValueError(f"attention must have shape (T, N, N), got {attention.shape}")
    candidates = [candidate_boxes(saliency_map(a, frame_hw, sigma), theta) for a in attention]
    tube = chain_boxes(candidates)
    return smooth_boxes(tube, frac, frame_hw) if smooth else tube


def tube_scores(frame_scores):
    """Class scores of the single proposal: per-frame class scores averaged over frames (Sec. 4)."""
    frame_scores = np.asarray(frame_scores, dtype=np.float64)
    if frame_scores.ndim != 2 or frame_scores.shape[0] == 0:
        raise ValueError(
            f"frame_scores must have shape (T, C) with T >= 1, got {frame_scores.shape}"
        )
    return frame_scores.mean(axis=0)


def write_tube_shard(path, description: dict, videos, run_model, frame_hw, theta: float,
                     sigma: float, frac: float, progress) -> None:
    """Localize for a set of videos: per video the attention maps, the raw and smoothed tube and
    the tube's class scores, in one HDF5 shard.

    ``run_model(video_id) -> (frame scores (T, C), attention (T, N, N))`` applies the model to a
    whole video; ``frame_hw(row) -> (H, W)`` gives the frame size the boxes are in.
    """
    from pipeline import cache
    with cache.ShardWriter(path, description) as writer:
        for row in videos.itertuples():
            scores, attention = run_model(row.video_id)
            size = frame_hw(row)
            raw = localize(attention, size, theta, sigma, frac, smooth=False)
            writer.add(row.video_id, {"attention": attention.astype(np.float16), "raw": raw,
                                      "smooth": smooth_boxes(raw, frac, size),
                                      "scores": tube_scores(scores)},
                       {"label_index": row.label_index})
            progress.advance(row.video_id)
