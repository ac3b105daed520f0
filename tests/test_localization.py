"""Weakly supervised localization (paper Sec. 4): hand-worked saliency, boxes, chaining, LOWESS."""

import numpy as np
import pytest
from statsmodels.nonparametric.smoothers_lowess import lowess

from pipeline.localization import (
    candidate_boxes,
    chain_boxes,
    localize,
    saliency_map,
    smooth_boxes,
    tube_scores,
)


def one_hot(n, row, col):
    attention = np.zeros((n, n), dtype=np.float32)
    attention[row, col] = 1.0
    return attention


def test_saliency_map_scaled_by_its_peak():
    saliency = saliency_map(one_hot(4, 1, 2), (64, 64), sigma=1.0)
    assert saliency.shape == (64, 64) and saliency.dtype == np.float32
    assert saliency.max() == pytest.approx(255.0) and saliency.min() >= 0.0


def test_saliency_map_of_constant_maps_does_not_divide_by_zero():
    uniform = saliency_map(np.full((4, 4), 1 / 16, dtype=np.float32), (8, 12), sigma=1.0)
    np.testing.assert_allclose(uniform, 255.0, rtol=1e-5)
    silent = saliency_map(np.zeros((4, 4)), (8, 12), sigma=1.0)
    assert np.all(silent == 0.0)


def test_one_hot_attention_gives_box_around_its_cell():
    # 4x4 map onto 64x64: cell (row 1, col 2) has its centre at pixel coordinate
    # (x, y) = (16*2 + 7.5, 16*1 + 7.5) = (39.5, 23.5). Bilinear resizing spreads it into a tent
    # of half-width 16 px; the nearest pixels sit 0.5 px off the centre, so the sampled peak is
    # 1 - 0.5/16 = 0.96875 per axis. Dividing by the peak, a pixel passes theta = 100 (of 255)
    # when its tent weight along an axis is >= (100/255) * 0.96875 = 0.380, i.e. within
    # 16 * (1 - 0.380) = 9.9 px of the centre: columns 30..49 and rows 14..33, the box
    # (30, 14, 50, 34). The sigma = 1 Gaussian can move an edge by about a pixel.
    saliency = saliency_map(one_hot(4, 1, 2), (64, 64), sigma=1.0)
    boxes = candidate_boxes(saliency, theta=100)
    assert boxes.shape == (1, 4)
    np.testing.assert_allclose(boxes[0], [30, 14, 50, 34], atol=1)


def test_candidate_boxes_join_diagonal_neighbours_and_order_by_mass():
    saliency = np.zeros((6, 7), dtype=np.float32)
    saliency[1, 1] = saliency[2, 2] = 120  # diagonal pair: one 8-connected blob, mass 240
    saliency[4, 5] = 250  # single pixel, mass 250: smaller box but more mass
    saliency[0, 6] = 100  # exactly at the threshold: kept, mass 100
    saliency[5, 0] = 99  # below the threshold
    boxes = candidate_boxes(saliency, theta=100)
    # 4-connectivity would split the diagonal pair into two boxes (four in all).
    np.testing.assert_array_equal(boxes, [[5, 4, 6, 5], [1, 1, 3, 3], [6, 0, 7, 1]])


def test_candidate_boxes_empty_when_nothing_passes():
    assert candidate_boxes(np.full((5, 5), 50.0), theta=100).shape == (0, 4)


def test_candidate_boxes_rejects_threshold_outside_saliency_range():
    with pytest.raises(ValueError, match="theta"):
        candidate_boxes(np.zeros((5, 5)), theta=300)


def test_chain_follows_previous_box_not_the_biggest():
    near = np.array([[0, 0, 10, 10]], dtype=float)
    big = [30, 30, 60, 60]
    candidates = [near, np.array([big, [1, 1, 11, 11]]), np.array([big, [2, 2, 12, 12]])]
    np.testing.assert_array_equal(
        chain_boxes(candidates), [[0, 0, 10, 10], [1, 1, 11, 11], [2, 2, 12, 12]]
    )


def test_chain_starts_with_first_candidate_and_holds_through_gaps():
    empty = np.zeros((0, 4))
    first = np.array([[5, 5, 9, 9], [0, 0, 20, 20]], dtype=float)
    chained = chain_boxes([empty, first, empty, np.array([[0, 0, 20, 20], [5, 5, 8, 9]])])
    assert np.all(np.isnan(chained[0]))
    np.testing.assert_array_equal(chained[1:], [[5, 5, 9, 9], [5, 5, 9, 9], [5, 5, 8, 9]])


FRAME_HW = (120, 160)


def linear_track(n_frames):
    t = np.arange(n_frames, dtype=float)
    return np.stack([2 * t + 1, 0.5 * t + 3, 2 * t + 21, 0.5 * t + 40], axis=1)


def test_lowess_keeps_a_linear_trajectory():
    track = linear_track(12)
    np.testing.assert_allclose(smooth_boxes(track, 0.5, FRAME_HW), track, atol=1e-9)


def test_lowess_pulls_an_outlier_back_and_skips_missing_frames():
    track = linear_track(15)
    noisy = track.copy()
    noisy[7, 0] += 30
    noisy[3] = np.nan
    smoothed = smooth_boxes(noisy, 0.5, FRAME_HW)
    assert np.all(np.isnan(smoothed[3]))
    assert abs(smoothed[7, 0] - track[7, 0]) < 15
    np.testing.assert_allclose(smoothed[7, 1:], track[7, 1:], atol=1e-9)


def test_lowess_leaves_one_or_two_frames_alone():
    two = np.array([[0, 0, 4, 4], [10, 10, 20, 20]], dtype=float)
    np.testing.assert_array_equal(smooth_boxes(two, 0.5, FRAME_HW), two)
    np.testing.assert_array_equal(smooth_boxes(two[:1], 0.5, FRAME_HW), two[:1])


def test_lowess_boxes_are_clipped_to_the_frame():
    # Frames 0-3 inside a 64 x 80 (H x W) frame; x1 = 0, 0, 10, 10 (y2 = 54, 54, 64, 64 the
    # same plus 54); frame 4 has no box. frac = 1: at frame 0 the tricube weights of frames
    # 0-3 are (1 - (d/3)^3)^3 = 1, (26/27)^3, (19/27)^3, 0, and the weighted least-squares
    # line through (0, 0), (1, 0), (2, 10) meets frame 0 at -1.19772: left of the frame, so 0.
    # By symmetry frame 3 gets 10 + 1.19772, and y2 there 65.19772 > 64, so 64. At frame 1
    # the weights are (7/8)^3, 1, (7/8)^3, 0 around it: 10 w / (1 + 2 w) = 2.86311.
    x1 = np.array([0, 0, 10, 10, np.nan])
    boxes = np.stack([x1, np.full(5, 10.0), x1 + 30, x1 + 54], axis=1)
    w = (7 / 8) ** 3
    edge, inner = 1.1977227, 10 * w / (1 + 2 * w)
    smoothed_x1 = np.array([-edge, inner, 10 - inner, 10 + edge, np.nan])
    np.testing.assert_allclose(  # the fit itself, before clipping
        lowess(x1[:4], np.arange(4.0), frac=1.0, it=0, delta=0.0, return_sorted=False),
        smoothed_x1[:4], atol=1e-6)
    expected = np.stack([smoothed_x1, np.full(5, 10.0), smoothed_x1 + 30, smoothed_x1 + 54],
                        axis=1)
    expected[0, 0], expected[3, 3] = 0, 64
    np.testing.assert_allclose(smooth_boxes(boxes, 1.0, (64, 80)), expected, atol=1e-6)


def test_smooth_boxes_clips_without_a_fit_too():
    two = np.array([[-3, 2, 40, 70], [np.nan] * 4])
    np.testing.assert_array_equal(smooth_boxes(two, 0.5, (64, 32)),
                                  [[0, 2, 32, 64], [np.nan] * 4])


def test_localize_tracks_a_moving_hot_cell():
    # 8x8 attention on a 64x32 (W x H) frame: cells are 8 px wide and 4 px high, cell (i, j)
    # centred on the exclusive-box centre (8j + 4, 4i + 2). The hot cell walks one column a frame.
    cells = [(3, 2), (3, 3), (3, 4), (3, 5)]
    attention = np.stack([one_hot(8, i, j) for i, j in cells])
    tube = localize(attention, (32, 64), theta=100, sigma=0.5, frac=0.8, smooth=False)
    centres = np.stack([(tube[:, 0] + tube[:, 2]) / 2, (tube[:, 1] + tube[:, 3]) / 2], axis=1)
    np.testing.assert_allclose(centres, [[8 * j + 4, 4 * i + 2] for i, j in cells], atol=1)
    smoothed = localize(attention, (32, 64), theta=100, sigma=0.5, frac=0.8)
    np.testing.assert_allclose(smoothed, tube, atol=1e-6)


def test_localize_rejects_negative_attention():
    with pytest.raises(ValueError, match="non-negative"):
        localize(-np.ones((2, 4, 4)), (16, 16), theta=100, sigma=1, frac=0.5)


def test_tube_scores_average_over_frames():
    frame_scores = np.array([[0.2, 0.8], [0.6, 0.4], [0.4, 0.6]])
    np.testing.assert_allclose(tube_scores(frame_scores), [0.4, 0.6])
