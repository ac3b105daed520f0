"""The benches' actor cells from a box (bench/attention_formation.py), the cross-validated
ridge probe of bench/look_probe.py and the oracle attention of bench/oracle_attention.py."""

import sys

import numpy as np

from test_tasks import REPO

sys.path.insert(0, str(REPO / "bench"))
from attention_formation import actor_cells, actor_mass  # noqa: E402
from look_probe import cross_validated_accuracy  # noqa: E402
from oracle_attention import oracle_attention  # noqa: E402


def test_actor_cells_are_those_whose_centres_lie_in_the_box():
    # 100 x 100 frame, 5 x 5 grid: cell centres at 10, 30, 50, 70, 90 px.
    masks = actor_cells(np.array([[25, 5, 55, 35], [0, 0, 9, 9]]), 5, (100, 100))
    expected = np.zeros((2, 5, 5), bool)
    expected[0, 0:2, 1:3] = True  # rows y = 10, 30; columns x = 30, 50
    np.testing.assert_array_equal(masks, expected)


def test_actor_mass_sums_each_frames_attention_on_the_actors_cells():
    attention = np.full((2, 5, 5), 1 / 25)
    attention[1] = 0.0
    attention[1, 0, 1] = 1.0  # frame 2: all mass on a cell of the box
    boxes = np.array([[25, 5, 55, 35], [25, 5, 55, 35]])
    assert np.isclose(actor_mass(attention, boxes, (100, 100)), (4 / 25 + 1.0) / 2)


def test_the_probe_reads_a_look_written_in_the_features_and_not_one_that_is_not():
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(4), 50)
    noise = rng.normal(size=(200, 20))
    written = noise.copy()
    written[np.arange(200), labels] += 4.0
    assert cross_validated_accuracy(written, labels, 4) > 0.95
    assert cross_validated_accuracy(noise, labels, 4) < 0.45


def test_oracle_attention_is_uniform_over_the_actors_cells_and_else_over_the_grid():
    # frames 1 and 2 have boxes (the tube starts at frame 1); frame 2's box holds no cell centre
    boxes = np.array([[25, 5, 55, 35], [0, 0, 9, 9], [25, 5, 55, 35]])
    maps = oracle_attention(boxes, start=1, frames=3, grid=5, frame_hw=(100, 100))
    assert maps.shape == (3, 5, 5)
    np.testing.assert_allclose(maps[0], np.full((5, 5), 1 / 25))
    expected = np.zeros((5, 5))
    expected[0:2, 1:3] = 0.25
    np.testing.assert_allclose(maps[1], expected)
    np.testing.assert_allclose(maps[2], np.full((5, 5), 1 / 25))
    np.testing.assert_allclose(maps.sum(axis=(1, 2)), 1.0, rtol=1e-6)
