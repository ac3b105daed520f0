"""bench/flow_convergence.py: its error measures and its rule on hand-worked figures."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import flow_convergence  # noqa: E402


def test_errors_average_end_point_error_over_all_and_over_moving_pixels():
    reference = np.zeros((1, 2, 2, 2), np.float32)
    reference[0, 0, 0] = (3.0, 4.0)   # the one moving pixel (5 px)
    flow = reference.copy()
    flow[0, 0, 0] += (0.0, 2.0)       # 2 px off on the moving pixel
    flow[0, 1, 1] = (0.6, 0.8)        # 1 px off on a still one
    mean, moving = flow_convergence.errors(flow, reference)
    assert np.isclose(mean, 3.0 / 4) and np.isclose(moving, 2.0)


def test_rule_takes_the_largest_epsilon_within_one_level_of_the_current_setting():
    level = 2 * 20.0 / 255
    table = pd.DataFrame({"epsilon": [0.01, 0.02, 0.03, 0.05],
                          "EPE moving px": [0.8, 0.8 + level - 1e-6, 0.8 + level + 1e-6, 2.0]})
    assert flow_convergence.pick(table, 20.0) == 0.02
    assert flow_convergence.pick(table.iloc[[0, 3]], 20.0) == 0.01
