"""The benches' actor cells from a box (bench/attention_formation.py) and the cross-validated
ridge probe of bench/look_probe.py."""

import sys

import numpy as np

from test_tasks import REPO

sys.path.insert(0, str(REPO / "bench"))
from attention_formation import actor_cells, actor_mass  # noqa: E402
from look_probe import cross_validated_accuracy  # noqa: E402


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
