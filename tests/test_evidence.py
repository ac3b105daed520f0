"""Per-video evidence for the claims: correctness, shared videos, mAP from arrays, streaming."""

import numpy as np
import pandas as pd

from models.registry import ModelSizes, build_model
from pipeline import scoring
from pipeline.report import evidence
from pipeline.training.source import FeatureSource, ModelInputs

from test_training import shards  # noqa: F401  (fixture: real-format feature shards)


def test_correct_per_video_reads_the_score_table(tmp_path):
    table = scoring.scores_frame(["a", "b", "c"], [0, 1, 1],
                                 np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]]), ["x", "y"])
    scoring.write_scores_frame(table, tmp_path / "scores.csv")
    correct = evidence.correct_per_video(tmp_path / "scores.csv")
    assert correct.to_dict() == {"a": True, "b": False, "c": True}


def test_common_videos_drop_a_video_any_measurement_lacks():
    series = {"rgb": pd.Series([True, False, True], index=["a", "b", "c"]),
              "flow": pd.Series([True, True], index=["c", "a"])}
    assert evidence.common_videos(series) == ["a", "c"]


def test_map_at_hand_case():
    """Class 0 has videos a, b; class 1 has c. Ranked by the class-0 score: a (hit), c (not of
    class 0), b (overlap 0.1 < 0.2, a miss): AP 1/2 (one of two positives, found first).
    Class 1: c ranks first and overlaps 0.5: AP 1. mAP = 0.75."""
    overlaps = np.array([0.6, 0.1, 0.5])
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.9]])
    labels = np.array([0, 0, 1])
    assert evidence.map_at(overlaps, scores, labels) == 0.75
    assert evidence.map_at(overlaps, scores, labels, threshold=0.05) == (1.0 + 2 / 3) / 4 + 0.5


def test_streaming_equals_the_whole_sequence_run(shards):  # noqa: F811
    paths, descriptions, _ = shards
    sizes = ModelSizes(hidden=4, kernel=3, attention_kernel=1, dense=8, dropout=0.5)
    model = build_model("videolstm", 2, (3, 3, 5), sizes, "motion", (3, 3, 5))
    inputs = ModelInputs("rgb", "pool5", True)
    with FeatureSource(paths, inputs) as source:
        assert evidence.streaming_difference(model, source, ["v0", "v2"]) < 1e-5
