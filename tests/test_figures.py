"""Report figures: PNGs that read back at a sensible size, and exact overlay pixels (Fig. 3)."""

import cv2
import numpy as np
import pandas as pd
import pytest

from pipeline.report.figures import (
    PREDICTED_RGB,
    TRUTH_RGB,
    attention_strip,
    map_vs_iou,
    overlay_frame,
    recall_vs_iou,
    training_curves,
)

THRESHOLDS = np.array([0.1, 0.2, 0.3, 0.4, 0.5])


def read_png(path, min_hw, max_hw):
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, f"{path} is not a readable image"
    height, width = image.shape[:2]
    assert min_hw[0] <= height <= max_hw[0] and min_hw[1] <= width <= max_hw[1], image.shape
    assert image.std() > 0, "the figure is blank"
    return image


def textured(height=40, width=60, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_overlay_draws_boxes_on_their_border_pixels_and_leaves_cold_pixels_alone():
    frame = textured()
    saliency = np.zeros((40, 60), dtype=np.float32)
    saliency[5:10, 5:10] = 255.0
    out = overlay_frame(frame, saliency, predicted=[20, 12, 41, 30], truth=[30, 2, 50, 8])
    assert out.shape == frame.shape and out.dtype == np.uint8
    # x2, y2 exclusive: the predicted box's border is columns 20 and 40, rows 12 and 29.
    for y, x in ((12, 20), (12, 33), (29, 40), (20, 40), (29, 25)):
        assert tuple(out[y, x]) == PREDICTED_RGB
    for y, x in ((11, 25), (30, 25), (20, 19), (20, 41), (20, 30)):
        assert tuple(out[y, x]) == tuple(frame[y, x]), (y, x)
    assert tuple(out[2, 35]) == TRUTH_RGB and tuple(out[7, 49]) == TRUTH_RGB
    # Saliency 255 blends the heat map at HEAT_OPACITY; zero saliency keeps the frame exactly.
    assert not np.array_equal(out[5:10, 5:10], frame[5:10, 5:10])
    assert np.array_equal(out[25:, :15], frame[25:, :15])


def test_overlay_prediction_is_drawn_over_truth_and_clipped_to_frame():
    frame = textured(seed=1)
    zero = np.zeros((40, 60))
    out = overlay_frame(frame, zero, predicted=[-5, 10, 30, 50], truth=[-5, 10, 30, 50])
    assert tuple(out[10, 0]) == PREDICTED_RGB and tuple(out[39, 29]) == PREDICTED_RGB
    assert tuple(out[20, 15]) == tuple(frame[20, 15])


@pytest.mark.parametrize("saliency", [np.zeros((40, 60)), None])
def test_overlay_skips_nan_boxes_and_does_not_modify_its_input(saliency):
    frame = textured(seed=2)
    before = frame.copy()
    out = overlay_frame(frame, saliency, predicted=[np.nan] * 4, truth=[1, 1, 5, np.nan])
    assert np.array_equal(out, before) and np.array_equal(frame, before)


@pytest.mark.parametrize("frame, saliency, box, message", [
    (np.zeros((40, 60), np.uint8), np.zeros((40, 60)), [0, 0, 1, 1], "frame must be"),
    (np.zeros((40, 60, 3), np.float32), np.zeros((40, 60)), [0, 0, 1, 1], "frame must be"),
    (np.zeros((40, 60, 3), np.uint8), np.zeros((40, 61)), [0, 0, 1, 1], "saliency must be"),
    (np.zeros((40, 60, 3), np.uint8), np.full((40, 60), 300.0), [0, 0, 1, 1], "saliency must"),
    (np.zeros((40, 60, 3), np.uint8), np.zeros((40, 60)), [0, 0, 1], "a box must be"),
    (np.zeros((40, 60, 3), np.uint8), np.zeros((40, 60)), [5, 0, 1, 1], "x1 <= x2"),
])
def test_overlay_rejects_bad_shapes_and_values(frame, saliency, box, message):
    with pytest.raises(ValueError, match=message):
        overlay_frame(frame, saliency, box)


def test_attention_strip_writes_one_row_of_frames(tmp_path):
    k = 4
    frames = np.stack([textured(seed=s) for s in range(k)])
    saliency = np.zeros((k, 40, 60), dtype=np.float32)
    saliency[:, 10:20, 10:30] = 200.0
    predicted = np.array([[10, 10, 30, 20]] * k, dtype=float)
    predicted[1] = np.nan
    path = attention_strip(frames, saliency, predicted, predicted + 2, tmp_path / "strip.png",
                           "Long jump", frame_numbers=[0, 8, 16, 24])
    image = read_png(path, (100, 600), (400, 1200))
    assert image.shape[1] > 2 * image.shape[0], "frames must be laid out in one row"


def test_attention_strip_validates_shapes(tmp_path):
    frames = np.zeros((3, 40, 60, 3), np.uint8)
    with pytest.raises(ValueError, match="saliency must be"):
        attention_strip(frames, np.zeros((2, 40, 60)), np.zeros((3, 4)), None,
                        tmp_path / "a.png", "x")
    with pytest.raises(ValueError, match="predicted boxes"):
        attention_strip(frames, np.zeros((3, 40, 60)), np.zeros((2, 4)), None,
                        tmp_path / "a.png", "x")
    with pytest.raises(ValueError, match="frame_numbers"):
        attention_strip(frames, np.zeros((3, 40, 60)), np.zeros((3, 4)), None,
                        tmp_path / "a.png", "x", frame_numbers=[1, 2])
    assert not (tmp_path / "a.png").exists()


def test_recall_and_map_plots_write_pngs(tmp_path):
    curves = {"VideoLSTM": np.linspace(0.9, 0.3, 5), "VideoLSTM, no smoothing":
              np.linspace(0.8, 0.2, 5), "ALSTM": np.linspace(0.5, 0.0, 5)}
    read_png(recall_vs_iou(curves, THRESHOLDS, tmp_path / "a" / "recall.png", "Fig. 4a"),
             (200, 300), (600, 800))
    reported_once = {"VideoLSTM": np.linspace(0.6, 0.1, 5),
                     "Yu et al.": np.array([np.nan, 0.3, np.nan, np.nan, np.nan])}
    read_png(map_vs_iou(reported_once, THRESHOLDS, tmp_path / "map.png", "Fig. 4b"),
             (200, 300), (600, 800))


def test_iou_plots_reject_mismatched_or_percentage_curves(tmp_path):
    with pytest.raises(ValueError, match="shape"):
        recall_vs_iou({"a": np.zeros(3)}, THRESHOLDS, tmp_path / "r.png", "x")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        map_vs_iou({"a": np.full(5, 45.0)}, THRESHOLDS, tmp_path / "m.png", "x")
    with pytest.raises(ValueError, match="no curves"):
        map_vs_iou({}, THRESHOLDS, tmp_path / "m.png", "x")


def test_training_curves_one_panel_per_model(tmp_path):
    histories = {f"model{i}": pd.DataFrame({"epoch": [2, 0, 1], "loss": [0.5, 2.0, 1.0]})
                 for i in range(5)}
    histories["model0"]["val_loss"] = [0.9, 2.1, 1.4]
    read_png(training_curves(histories, tmp_path / "loss.png"), (300, 800), (800, 1600))
    with pytest.raises(ValueError, match="lacks columns"):
        training_curves({"bad": pd.DataFrame({"epoch": [0]})}, tmp_path / "bad.png")
