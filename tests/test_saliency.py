"""The motion-saliency baseline map."""

import numpy as np
import pytest

from pipeline.saliency import motion_attention


def test_the_moving_cell_gets_the_attention():
    """A 3x3 grid, 4 frames, 2 channels; every cell carries the same constant response but one
    moving cell per frame, whose channels are raised by 5: that cell is each frame's peak."""
    maps = np.ones((4, 3, 3, 2))
    moving = [(0, 0), (0, 1), (1, 1), (2, 2)]
    for t, (i, j) in enumerate(moving):
        maps[t, i, j] += 5
    attention = motion_attention(maps)
    assert attention.shape == (4, 3, 3)
    np.testing.assert_allclose(attention.sum(axis=(1, 2)), 1.0)
    assert (attention >= 0).all()
    for t, cell in enumerate(moving):
        assert np.unravel_index(attention[t].argmax(), (3, 3)) == cell


def test_hand_worked_energy():
    """One frame, 1x3 grid, 2 channels: norms 1, 5 (3-4-5) and 3; minus the lowest, 0, 4 and
    2; over their sum 6: 0, 2/3 and 1/3."""
    maps = np.array([[[[1.0, 0.0], [3.0, 4.0], [0.0, 3.0]]]])
    np.testing.assert_allclose(motion_attention(maps), [[[0.0, 2 / 3, 1 / 3]]])


def test_still_video_is_uniform():
    np.testing.assert_allclose(motion_attention(np.full((2, 2, 2, 3), 7.0)), 0.25)


def test_shape_is_checked():
    with pytest.raises(ValueError, match=r"\(T, N, N, D\)"):
        motion_attention(np.zeros((2, 3, 3)))
