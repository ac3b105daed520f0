"""bench/look_probe.py: the actor's cells from a box, and the cross-validated ridge probe."""

import sys

import numpy as np

from test_tasks import REPO

sys.path.insert(0, str(REPO / "bench"))
from look_probe import actor_cells, cross_validated_accuracy  # noqa: E402


def test_actor_cells_are_those_whose_centres_lie_in_the_box():
    # 100 x 100 frame, 5 x 5 grid: cell centres at 10, 30, 50, 70, 90 px.
    masks = actor_cells(np.array([[25, 5, 55, 35], [0, 0, 9, 9]]), 5, (100, 100))
    expected = np.zeros((2, 5, 5), bool)
    expected[0, 0:2, 1:3] = True  # rows y = 10, 30; columns x = 30, 50
    np.testing.assert_array_equal(masks, expected)


def test_the_probe_reads_a_look_written_in_the_features_and_not_one_that_is_not():
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(4), 50)
    noise = rng.normal(size=(200, 20))
    written = noise.copy()
    written[np.arange(200), labels] += 4.0
    assert cross_validated_accuracy(written, labels, 4) > 0.95
    assert cross_validated_accuracy(noise, labels, 4) < 0.45
