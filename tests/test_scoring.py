import numpy as np
import pandas as pd
import pytest

from pipeline.scoring import (
    accuracy,
    mean_over_splits,
    read_scores_frame,
    scores_frame,
    video_scores,
    write_scores_frame,
)


def test_video_scores_sum_over_time_then_mean_over_segments():
    frame_scores = np.array([
        [[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]],  # segment sums: (1.5, 1.5)
        [[0.2, 0.8], [0.2, 0.8], [0.2, 0.8]],  # segment sums: (0.6, 2.4)
    ])
    np.testing.assert_allclose(video_scores(frame_scores), [1.05, 1.95])


def test_video_scores_rejects_wrong_rank():
    with pytest.raises(ValueError, match="n_segments, length, C"):
        video_scores(np.zeros((30, 5)))


def test_accuracy_by_hand():
    scores = np.array([[0.9, 0.1, 0.0], [0.2, 0.5, 0.3], [0.1, 0.2, 0.7], [0.6, 0.3, 0.1]])
    assert accuracy(scores, [0, 1, 2, 2]) == 0.75
    assert accuracy(scores, [1, 0, 0, 1]) == 0.0


def test_accuracy_breaks_ties_towards_the_lower_class():
    assert accuracy(np.array([[0.5, 0.5]]), [0]) == 1.0


def test_accuracy_rejects_mismatched_labels():
    with pytest.raises(ValueError):
        accuracy(np.zeros((3, 2)), [0, 1])


def test_mean_over_splits():
    assert mean_over_splits([0.5, 0.6, 0.7]) == pytest.approx(0.6)
    with pytest.raises(ValueError):
        mean_over_splits([])


def _frame():
    return scores_frame(["007", "v_b"], [1, 0], [[0.1, 0.7, 1 / 3], [2.0, 1e-17, 0.0]],
                        ["Walk", "Run", "Jump"])


def test_scores_frame_columns():
    df = _frame()
    assert list(df.columns) == ["video_id", "label", "Walk", "Run", "Jump"]
    assert df["video_id"].tolist() == ["007", "v_b"]
    assert df["label"].tolist() == [1, 0]


def test_score_table_round_trips_exactly(tmp_path):
    path = tmp_path / "scores.csv"
    write_scores_frame(_frame(), path)
    assert path.read_text().splitlines()[0] == "video_id,label,Walk,Run,Jump"
    back = read_scores_frame(path)
    assert back["video_id"].tolist() == ["007", "v_b"]
    assert back["label"].tolist() == [1, 0]
    np.testing.assert_array_equal(back[["Walk", "Run", "Jump"]].to_numpy(),
                                  _frame()[["Walk", "Run", "Jump"]].to_numpy())


def test_scores_frame_rejects_shape_mismatch_and_bad_labels():
    with pytest.raises(ValueError):
        scores_frame(["a"], [0], np.zeros((1, 3)), ["x", "y"])
    with pytest.raises(ValueError, match="labels must lie"):
        scores_frame(["a"], [2], np.zeros((1, 2)), ["x", "y"])
    with pytest.raises(ValueError, match="duplicate video ids"):
        scores_frame(["a", "a"], [0, 1], np.zeros((2, 2)), ["x", "y"])


@pytest.mark.parametrize("text, problem", [
    ("", "empty file"),
    ("video_id,Walk,Run\na,0.1,0.9\n", "must start with video_id,label"),
    ("video_id,label\na,0\n", "no class score columns"),
    ("video_id,label,Walk,Walk\na,0,0.1,0.9\n", "repeated column names"),
    ("video_id,label,Walk,Run\na,0,0.1,high\n", "'Run'"),
    ("video_id,label,Walk,Run\na,0,0.1,\n", "'Run'"),
    ("video_id,label,Walk,Run\na,0,inf,0.2\n", "'Walk'"),
    ("video_id,label,Walk,Run\na,0,0.1,0.9\na,1,0.5,0.5\n", "duplicate video ids a"),
    ("video_id,label,Walk,Run\na,0.5,0.1,0.9\n", "integers"),
    ("video_id,label,Walk,Run\na,2,0.1,0.9\n", "labels must lie in"),
])
def test_read_scores_frame_errors_name_the_file(tmp_path, text, problem):
    path = tmp_path / "bad_scores.csv"
    path.write_text(text)
    with pytest.raises(ValueError) as error:
        read_scores_frame(path)
    assert "bad_scores.csv" in str(error.value)
    assert problem in str(error.value)


def test_read_scores_frame_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.csv"):
        read_scores_frame(tmp_path / "absent.csv")


def test_write_scores_frame_refuses_a_malformed_table(tmp_path):
    df = pd.DataFrame({"video_id": ["a"], "Walk": [0.3]})
    with pytest.raises(ValueError, match="must start with video_id,label"):
        write_scores_frame(df, tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()
