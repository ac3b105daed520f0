"""The report's figures: localization curves (Fig. 4), attention overlays (Fig. 3), training loss.

Plotting functions draw on a matplotlib Figure with the Agg canvas (no display, no pyplot state
shared between threads), write a PNG and return its path.
Boxes are float (x1, y1, x2, y2) in frame pixels with x2, y2 exclusive; a NaN row means no box.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pipeline.scoring import HELD_OUT

PREDICTED_RGB = (0, 255, 0)
TRUTH_RGB = (255, 255, 0)
HEAT_OPACITY = 0.5
DPI = 100
MIN_PANEL_INCHES = 1.5


def overlay_frame(frame, saliency, predicted, truth=None):
    """One RGB frame with its saliency map S_t as a translucent heat map and its boxes (Fig. 3).

    frame (H, W, 3) uint8 RGB; saliency (H, W) in [0, 255], or None for a model without
    attention (no heat map); predicted and truth (4,) boxes, NaN for none. A pixel's heat-map
    weight grows with its saliency (opacity HEAT_OPACITY at 255), so a pixel with zero saliency
    keeps its colour. The ground truth is drawn in yellow, then the prediction in green over
    it, each as a one-pixel outline on the box's own border pixels (clipped to the frame).
    Pure and vectorised, as it also renders overlay videos. Returns a new (H, W, 3) uint8 array.
    """
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frame must be (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
    out = frame.copy() if saliency is None else _blend_heat(frame, saliency)
    if truth is not None:
        _draw_box(out, truth, TRUTH_RGB)
    _draw_box(out, predicted, PREDICTED_RGB)
    return out


def _blend_heat(frame, saliency):
    """The frame blended with the JET colour map of `saliency`, weight saliency / 255 times
    HEAT_OPACITY per pixel."""
    saliency = np.asarray(saliency, dtype=np.float32)
    if saliency.shape != frame.shape[:2]:
        raise ValueError(f"saliency must be (H, W) = {frame.shape[:2]}, got {saliency.shape}")
    if not np.all(np.isfinite(saliency)) or saliency.min() < 0 or saliency.max() > 255.001:
        raise ValueError("saliency must be finite and in [0, 255]")
    saliency = np.clip(saliency, 0.0, 255.0)
    heat = cv2.cvtColor(cv2.applyColorMap(np.rint(saliency).astype(np.uint8), cv2.COLORMAP_JET),
                        cv2.COLOR_BGR2RGB)
    weight = (saliency * (HEAT_OPACITY / 255.0))[..., None]
    return np.rint(frame * (1.0 - weight) + heat * weight).astype(np.uint8)


def _draw_box(image, box, colour):
    """Outline `box` in place on the border of pixels x1..x2-1, y1..y2-1 (rounded, clipped to
    the image); a box with a NaN coordinate, or wholly outside the image, draws nothing."""
    box = np.asarray(box, dtype=np.float64)
    if box.shape != (4,):
        raise ValueError(f"a box must be (x1, y1, x2, y2), got shape {box.shape}")
    if np.any(np.isnan(box)):
        return
    if not np.all(np.isfinite(box)) or box[2] < box[0] or box[3] < box[1]:
        raise ValueError(f"box must be finite with x1 <= x2 and y1 <= y2, got {box.tolist()}")
    x1, y1, x2, y2 = (int(v) for v in np.rint(box))
    height, width = image.shape[:2]
    left, right = max(x1, 0), min(x2 - 1, width - 1)
    top, bottom = max(y1, 0), min(y2 - 1, height - 1)
    if left > right or top > bottom:
        return
    image[[top, bottom], left:right + 1] = colour
    image[top:bottom + 1, [left, right]] = colour


def attention_strip(frames, saliency, predicted, truth, path, title, frame_numbers=None):
    """Fig. 3 style: a row of K frames with saliency heat maps, predicted (green) and ground-truth
    (yellow) boxes, each titled "t=<frame number>".

    frames (K, H, W, 3) uint8 RGB; saliency (K, H, W) in [0, 255]; predicted (K, 4); truth
    (K, 4) or None; frame_numbers (K,) the frames' indices in the video (default 0..K-1).
    Frames are shown at about their own resolution, so one-pixel box outlines stay visible.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[0] == 0:
        raise ValueError(f"frames must be (K, H, W, 3) with K >= 1, got {frames.shape}")
    count = frames.shape[0]
    saliency = np.asarray(saliency)
    if saliency.shape != frames.shape[:3]:
        raise ValueError(f"saliency must be (K, H, W) = {frames.shape[:3]}, got {saliency.shape}")
    predicted = _boxes(predicted, count, "predicted")
    truth = None if truth is None else _boxes(truth, count, "truth")
    numbers = np.arange(count) if frame_numbers is None else np.asarray(frame_numbers)
    if numbers.shape != (count,):
        raise ValueError(f"frame_numbers must have {count} entries, got shape {numbers.shape}")
    height, width = frames.shape[1:3]
    panel = max(width / DPI, MIN_PANEL_INCHES)
    figure = _figure(panel * count, panel * height / width + 0.7)
    axes = figure.subplots(1, count, squeeze=False)
    for k, ax in enumerate(axes[0]):
        ax.imshow(overlay_frame(frames[k], saliency[k], predicted[k],
                                None if truth is None else truth[k]), interpolation="nearest")
        ax.set_title(f"t={int(numbers[k])}", fontsize=9)
        ax.set_axis_off()
    figure.suptitle(title)
    return _save(figure, path)


def _boxes(boxes, count, name):
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.shape != (count, 4):
        raise ValueError(f"{name} boxes must be ({count}, 4), got {boxes.shape}")
    return boxes


def recall_vs_iou(curves, thresholds, path, title):
    """Fig. 4a style: recall of the ground-truth tubes against the IoU threshold, one line per
    method. curves {method: (N,) recall in [0, 1], NaN where not reported}; thresholds (N,)."""
    return _iou_plot(curves, thresholds, path, title, "recall")


def map_vs_iou(curves, thresholds, path, title):
    """Fig. 4b style: video mAP against the IoU threshold, one line per method. curves
    {method: (N,) mAP in [0, 1], NaN where not reported}; thresholds (N,)."""
    return _iou_plot(curves, thresholds, path, title, "video mAP")


def _iou_plot(curves, thresholds, path, title, ylabel):
    """Lines over IoU thresholds; "Method, variant" shares the colour of "Method", dashed."""
    thresholds = np.asarray(thresholds, dtype=np.float64)
    if thresholds.ndim != 1 or thresholds.size == 0:
        raise ValueError(f"thresholds must be a non-empty vector, got shape {thresholds.shape}")
    if not curves:
        raise ValueError(f"no curves to plot for {path}")
    figure = _figure(5.0, 3.8)
    ax = figure.subplots()
    colours = {}
    palette = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for name, values in curves.items():
        values = np.asarray(values, dtype=np.float64)
        if values.shape != thresholds.shape:
            raise ValueError(f"curve {name!r} has shape {values.shape}, thresholds "
                             f"{thresholds.shape}")
        known = values[~np.isnan(values)]
        if np.any((known < 0) | (known > 1)):
            raise ValueError(f"curve {name!r} must lie in [0, 1] (a fraction, not a percentage)")
        base, _, variant = name.partition(",")
        colour = colours.setdefault(base, palette[len(colours) % len(palette)])
        ax.plot(thresholds, values, marker="o", markersize=3, color=colour,
                linestyle="--" if variant else "-", label=name)
    ax.set_xlabel("IoU threshold")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0.0, 1.0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    return _save(figure, path)


def training_curves(histories, path):
    """Training loss per epoch, one small panel per model, and, on a second axis, the
    per-epoch accuracy on the held-out test split when the history has it (shown to judge
    transfer, never used to pick a model or an epoch).

    histories {model name: DataFrame with columns "epoch" and "loss" (optionally
    "heldout_test_accuracy")}, as written by the training stage.
    """
    if not histories:
        raise ValueError(f"no training histories to plot for {path}")
    for name, history in histories.items():
        missing = {"epoch", "loss"} - set(history.columns)
        if missing:
            raise ValueError(f"history of {name!r} lacks columns {sorted(missing)}")
    columns = min(len(histories), 4)
    rows = -(-len(histories) // columns)
    figure = _figure(3.2 * columns, 2.6 * rows)
    axes = figure.subplots(rows, columns, squeeze=False)
    for ax, (name, history) in zip(axes.ravel(), histories.items()):
        history = history.sort_values("epoch")
        lines = ax.plot(history["epoch"], history["loss"], marker="o", markersize=3,
                        label="training loss")
        if HELD_OUT in history.columns:
            accuracy = ax.twinx()
            lines += accuracy.plot(history["epoch"], history[HELD_OUT], marker="s",
                                   markersize=3, linestyle="--", color="tab:orange",
                                   label="held-out test accuracy (not used to select)")
            accuracy.set_ylim(0, 1)
            accuracy.set_ylabel("accuracy", fontsize=8)
            ax.legend(lines, [line.get_label() for line in lines], fontsize=6)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(histories):]:
        ax.set_axis_off()
    return _save(figure, path)


def _figure(width, height):
    """A figure of width x height inches on an Agg canvas, laid out by matplotlib's constrained
    layout (titles, labels and legends kept inside)."""
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path):
    """Write the figure as a PNG (parent folders created), return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI, format="png")
    return path
