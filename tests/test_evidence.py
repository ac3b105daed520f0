"""Per-video evidence for the claims: correctness, shared videos, mAP from arrays, streaming."""

import numpy as np
import pandas as pd
import pytest

from models.registry import ModelSizes, build_model
from pipeline import cache, localization_eval, scoring
from pipeline.manifest import encode_tubes
from pipeline.metrics import GroundTruth, Tube
from pipeline.report import evidence, report
from pipeline.report.stats import wilson_interval
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
    # in the first measurement's order (the test list's), not sorted
    assert evidence.common_videos(dict(reversed(series.items()))) == ["c", "a"]


def test_map_at_hand_case():
    """Class 0 has videos a, b; class 1 has c. Ranked by the class-0 score: a (hit), c (not of
    class 0), b (overlap 0.1 < 0.2, a miss): AP 1/2 (one of two positives, found first).
    Class 1: c ranks first and overlaps 0.5: AP 1. mAP = 0.75."""
    overlaps = np.array([0.6, 0.1, 0.5])
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.9]])
    labels = np.array([0, 0, 1])
    assert evidence.map_at(overlaps, scores, labels) == 0.75
    assert evidence.map_at(overlaps, scores, labels, threshold=0.05) == (1.0 + 2 / 3) / 4 + 0.5


def test_map_at_counts_every_ground_truth_tube():
    """Video a (class 0) has two tubes and its tube finds one; b (class 0) has one, found.
    Ranked a, b, both hits, 3 positives: AP 2/3 (one positive per video would say 1). The
    NaN-scored c (class 0, not localized) ranks nowhere but its tube counts: AP 2/4."""
    overlaps = np.array([[0.9, 0.0], [0.8, np.nan]])
    scores = np.array([[0.9, 0.1], [0.8, 0.2]])
    assert evidence.map_at(overlaps, scores, [0, 0]) == pytest.approx(2 / 3)
    overlaps = np.vstack([overlaps, [0.0, np.nan]])
    scores = np.vstack([scores, [np.nan, np.nan]])
    assert evidence.map_at(overlaps, scores, [0, 0, 0]) == pytest.approx(2 / 4)


def box_tube(box, frames=4):
    return np.tile(np.asarray(box, np.float64), (frames, 1))


ACTOR, OTHER = [0, 0, 10, 10], [20, 20, 30, 30]


def two_tube_case(tmp_path):
    """A tube shard and ground truth in test-list order: four Jump videos (class 0) with two
    actors each, whose tube finds the first (overlaps 1 and 0); Run (class 1) c01 with IoU
    exactly 0.5 (its box twice the actor's height) scoring 0.5 + 1e-9 for Run, a float32 tie
    with the Jump videos' 0.5; c02 found exactly; c03 not localized."""
    truth, found = {}, {}
    for clip in range(1, 5):
        video = f"v_Jump_g01_c0{clip}"
        truth[video] = GroundTruth(0, [Tube(0, box_tube(ACTOR)), Tube(0, box_tube(OTHER))])
        found[video] = (box_tube(ACTOR), [0.9, 0.5])
    for clip, box, scores in ((1, [0, 0, 10, 20], [0.1, 0.5 + 1e-9]), (2, ACTOR, [0.2, 0.8]),
                              (3, None, None)):
        video = f"v_Run_g01_c0{clip}"
        truth[video] = GroundTruth(1, [Tube(0, box_tube(ACTOR))])
        if box is not None:
            found[video] = (box_tube(box), scores)
    path = tmp_path / "tubes.h5"
    with cache.ShardWriter(path, cache.describe("tubes", {}, {})) as writer:
        for video, (boxes, scores) in found.items():
            writer.add(video, {"raw": boxes, "smooth": boxes,
                               "scores": np.asarray(scores, np.float64)})
    return path, truth


def test_ground_truth_keeps_the_manifests_test_list_order():
    # testlist01.txt lists Basketball/v_Basketball_g01_c01 before BasketballDunk/...: score
    # ties rank in this order, which sorting the bare ids would reverse
    tube = encode_tubes([{"start": 0, "boxes": box_tube(ACTOR)}])
    manifest = pd.DataFrame({"video_id": ["v_Basketball_g01_c01", "v_BasketballDunk_g01_c01",
                                          "v_Basketball_g02_c01"],
                             "label_index": [0, 1, 0], "split": ["test", "test", "train"],
                             "tubes": [tube, tube, tube]})
    truth = localization_eval.ground_truth(manifest)
    assert list(truth) == ["v_Basketball_g01_c01", "v_BasketballDunk_g01_c01"]


def test_tube_evidence_gives_the_tables_numbers_and_intervals_around_them(tmp_path):
    """map.csv and recall.csv (localization_eval) against the evidence behind their intervals.
    Recall at 0.5 counts 11 tubes: 4 Jump tubes found, Run c01 at IoU 0.5 missed, c02 found,
    c03 missed: 5/11. Per video by best overlap (the old intervals) it was 6 of the 6
    localized videos, whose Wilson interval [0.61, 1] leaves 5/11 out. mAP at 0.5: Jump 4 hits
    of 8 tubes, AP 1/2; Run ranks c02 (hit), then the float32 tie at 0.5 in test-list order:
    4 Jump videos and c01 (IoU not > 0.5), AP 1/3; mAP 5/12. At 0.2 c01 becomes a hit at
    rank 6: Run AP 1/3 + 1/3 * 2/6, mAP (1/2 + 4/9) / 2."""
    path, truth = two_tube_case(tmp_path)
    thresholds = (0.2, 0.5)
    results = {"VideoLSTM": localization_eval.evaluate(str(path), truth, thresholds, thresholds)}
    localization_eval.write_tables(results, thresholds, thresholds, tmp_path)
    tables = {name: pd.read_csv(tmp_path / f"{name}.csv") for name in ("map", "recall")}
    assert tables["recall"]["VideoLSTM, smoothed"].tolist() == pytest.approx([6 / 11, 5 / 11])
    assert tables["map"]["VideoLSTM, smoothed"].tolist() == pytest.approx(
        [(1 / 2 + 4 / 9) / 2, 5 / 12])
    assert wilson_interval(6, 6)[0] > 5 / 11

    tubes = {"VideoLSTM": evidence.tube_evidence(path, truth)}
    assert list(tubes["VideoLSTM"].index) == list(truth)
    overlaps = evidence.overlap_matrix(tubes["VideoLSTM"], "smoothed")
    np.testing.assert_array_equal(overlaps[0], [1, 0])
    np.testing.assert_array_equal(overlaps[4:], [[0.5, np.nan], [1, np.nan], [0, np.nan]])
    for name, table in tables.items():
        out = report.with_intervals(table, [tubes], name)
        for column in ("VideoLSTM, smoothed", "VideoLSTM, not smoothed"):
            assert (out[f"{column} low"] <= out[column]).all()
            assert (out[column] <= out[f"{column} high"]).all()
    for t, value in zip(thresholds, tables["recall"]["VideoLSTM, smoothed"]):
        assert evidence.recall_with_interval(overlaps, t)[0] == value
    for t, value in zip(thresholds, tables["map"]["VideoLSTM, smoothed"]):
        assert evidence.map_with_interval([tubes["VideoLSTM"]], "smoothed", t, 50)[0] == value


@pytest.mark.parametrize("initial_state", ["zero", "mean"])
def test_streaming_equals_the_whole_sequence_run(shards, initial_state):  # noqa: F811
    """Under both initial states: with "mean" the stream starts from the whole video's mean
    states, as the whole-sequence run does (from frame 0's alone it would differ)."""
    paths, descriptions, _ = shards
    sizes = ModelSizes(hidden=4, attention=6, kernel=3, attention_kernel=1, dense=8,
                       dropout=0.5, initial_state=initial_state)
    model = build_model("videolstm", 2, (3, 3, 5), sizes, "motion", (3, 3, 5))
    inputs = ModelInputs("rgb", "pool5", True)
    with FeatureSource(paths, inputs) as source:
        assert evidence.streaming_difference(model, source, ["v0", "v2"]) < 1e-5
