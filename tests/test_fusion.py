from pathlib import Path

import numpy as np
import pytest

from pipeline.fusion import product_fusion, read_external_scores, weighted_product_fusion

FIXTURES = Path(__file__).parent / "fixtures" / "scores"

RGB = np.array([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3]])
FLOW = np.array([[0.2, 0.2, 0.6], [0.25, 0.25, 0.5]])


def test_product_fusion_by_hand():
    # row 1: (0.10, 0.06, 0.12) / 0.28; row 2: (0.025, 0.15, 0.15) / 0.325
    expected = np.array([[10 / 28, 6 / 28, 12 / 28], [1 / 13, 6 / 13, 6 / 13]])
    np.testing.assert_allclose(product_fusion([RGB, FLOW]), expected, rtol=1e-7)


def test_weighted_product_fusion_by_hand():
    # rgb ** 2 * flow -> row 1: (0.05, 0.018, 0.024) / 0.092; row 2: (0.0025, 0.09, 0.045) / 0.1375
    expected = np.array([[50 / 92, 18 / 92, 24 / 92], [1 / 55, 36 / 55, 18 / 55]])
    np.testing.assert_allclose(weighted_product_fusion([RGB, FLOW], [2, 1]), expected, rtol=1e-7)


def test_fusion_ignores_each_tables_row_scale():
    # video scores summed over 30 frames sum to 30 per row; fusing them equals fusing probabilities
    np.testing.assert_allclose(product_fusion([30 * RGB, FLOW]), product_fusion([RGB, FLOW]),
                               rtol=1e-7)


def test_fusion_survives_zero_scores_and_extreme_products():
    tiny = np.array([[1e-300, 1.0, 0.0]])
    fused = product_fusion([tiny, tiny, tiny])
    assert np.all(np.isfinite(fused))
    np.testing.assert_allclose(fused, [[0.0, 1.0, 0.0]], atol=1e-12)


@pytest.mark.parametrize("tables, weights", [
    ([], []),
    ([RGB, FLOW], [1.0]),
    ([RGB, FLOW], [1.0, 0.0]),
    ([RGB, FLOW], [1.0, -1.0]),
    ([RGB, FLOW[:1]], [1.0, 1.0]),
    ([RGB, -FLOW], [1.0, 1.0]),
    ([RGB, np.zeros_like(FLOW)], [1.0, 1.0]),
])
def test_fusion_rejects_bad_inputs(tables, weights):
    with pytest.raises(ValueError):
        weighted_product_fusion(tables, weights)


def test_read_external_scores_reorders_videos_and_classes_by_name():
    scores = read_external_scores(FIXTURES / "external_idt.csv",
                                  ["v_Walk_g05_c02", "v_Run_g01_c01", "v_Jump_g02_c03"],
                                  ["Run", "Walk", "Jump"])
    expected = np.array([[0.25, 0.5, 0.25], [0.75, 0.125, 0.125], [0.25, 0.0, 0.75]])
    np.testing.assert_allclose(scores, expected)


HEADER = "video_id,Walk,Run\n"


@pytest.mark.parametrize("text, problem", [
    (HEADER + "a,0.5,0.5\n", "2 of 3 videos, e.g. b, c"),
    ("video_id,Walk\na,1\nb,1\nc,1\n", "missing ['Run']"),
    ("video_id,Walk,Run,Jump\na,1,1,1\nb,1,1,1\nc,1,1,1\n", "unexpected ['Jump']"),
    (HEADER + "a,0.5,0.5\nb,-0.1,1\nc,1,1\n", "negative scores for videos b"),
    (HEADER + "a,0.5,0.5\nb,nan,1\nc,1,1\n", "non-finite"),
    (HEADER + "a,0.5,0.5\nb,inf,1\nc,1,1\n", "non-finite"),
    (HEADER + "a,0.5,0.5\nb,0,0\nc,1,1\n", "all-zero rows for videos b"),
    (HEADER + "a,0.5,0.5\nb,1,1\nc,1,1\nb,1,1\n", "duplicate video ids b"),
    ("video_id,Walk,Run,Walk\na,1,1,1\nb,1,1,1\nc,1,1,1\n", "repeated column names"),
    ("Walk,Run\n1,1\n", "must start with video_id"),
])
def test_read_external_scores_errors_name_the_file(tmp_path, text, problem):
    path = tmp_path / "idt_scores.csv"
    path.write_text(text)
    with pytest.raises(ValueError) as error:
        read_external_scores(path, ["a", "b", "c"], ["Walk", "Run"])
    assert "idt_scores.csv" in str(error.value)
    assert problem in str(error.value)


def test_read_external_scores_lists_only_a_few_missing_videos(tmp_path):
    path = tmp_path / "objects.csv"
    path.write_text(HEADER + "a,1,1\n")
    wanted = ["a"] + [f"v{i}" for i in range(20)]
    with pytest.raises(ValueError, match="20 of 21 videos, e.g. v0, v1, v2, v3, v4$"):
        read_external_scores(path, wanted, ["Walk", "Run"])


def test_read_external_scores_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.csv"):
        read_external_scores(tmp_path / "nowhere.csv", ["a"], ["Walk"])
