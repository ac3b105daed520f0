"""Evaluation metrics against hand-worked cases."""

import numpy as np
import pytest

from pipeline.metrics import (
    Detection,
    GroundTruth,
    Tube,
    accuracy,
    average_precision,
    average_precisions,
    box_iou,
    recall_at_iou,
    tube_iou,
    video_map,
)

NAN_BOX = [np.nan] * 4


def constant_tube(start, n_frames, box):
    return Tube(start, np.tile(np.asarray(box, dtype=float), (n_frames, 1)))


def test_box_iou_hand_cases():
    # half-overlapping squares: intersection 5x10 = 50, union 100 + 100 - 50 = 150
    assert box_iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(1 / 3)
    assert box_iou([0, 0, 10, 10], [2, 2, 4, 4]) == pytest.approx(4 / 100)
    assert box_iou([0, 0, 10, 10], [0, 0, 10, 10]) == pytest.approx(1.0)
    assert box_iou([0, 0, 10, 10], [10, 0, 20, 10]) == 0.0  # touching edges (x2 exclusive)
    assert box_iou([5, 5, 5, 10], [5, 5, 5, 10]) == 0.0  # empty boxes
    assert box_iou([0, 0, 10, 10], NAN_BOX) == 0.0


def test_box_iou_broadcasts():
    a = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], dtype=float)[:, None]
    b = np.array([[0, 0, 10, 10], NAN_BOX])[None]
    np.testing.assert_allclose(box_iou(a, b), [[1, 0], [1 / 3, 0], [0, 0]])


def test_tube_iou_partial_temporal_overlap():
    # a: frames 0-3, b: frames 2-5; union 0-5 is 6 frames, of which frames 2 and 3 have IoU 1/3
    a = constant_tube(0, 4, [0, 0, 10, 10])
    b = constant_tube(2, 4, [5, 0, 15, 10])
    assert tube_iou(a, b) == pytest.approx((2 / 3) / 6)
    assert tube_iou(b, a) == pytest.approx((2 / 3) / 6)


def test_tube_iou_identical_disjoint_and_missing_frames():
    a = constant_tube(3, 5, [0, 0, 10, 10])
    assert tube_iou(a, a) == pytest.approx(1.0)
    assert tube_iou(a, constant_tube(8, 5, [0, 0, 10, 10])) == 0.0
    gappy = Tube(3, a.boxes.copy())
    gappy.boxes[1] = np.nan  # frame 4 only in `a`: counts 0 over a union of 5 frames
    assert tube_iou(a, gappy) == pytest.approx(4 / 5)
    assert tube_iou(Tube(0, np.full((3, 4), np.nan)), Tube(0, np.full((3, 4), np.nan))) == 0.0


def test_average_precision_interpolates_precision_from_the_right():
    # Ranked FP, TP, TP with 2 positives: precision 0, 1/2, 2/3 at recall 0, 1/2, 1.
    # VOC all-point: the precision at recall 1/2 is raised to the 2/3 found further down,
    # AP = 1/2 * 2/3 + 1/2 * 2/3 = 2/3. (Non-interpolated mean of the precision at the TPs:
    # (1/2 + 2/3) / 2 = 7/12; ACT's trapezoid from (recall 0, precision 1):
    # 1/2 * (0 * (1 + 0) + 1/2 * (0 + 1/2) + 1/2 * (1/2 + 2/3)) = 5/12.)
    assert average_precision([0.9, 0.8, 0.7], [False, True, True], n_positives=2) == (
        pytest.approx(2 / 3))


def test_average_precision_with_missed_positive():
    # By score: 0.9 TP, 0.8 FP, 0.7 FP, 0.6 TP, 0.5 TP; 4 positives, one never detected.
    # Precision 1, 1/2, 1/3, 1/2, 3/5 at recall 1/4, 1/4, 1/4, 1/2, 3/4; from the right the
    # running maximum is 1, 3/5, 3/5, 3/5, 3/5. VOC all-point: recall steps 1/4 at ranks 1, 4
    # and 5, AP = 1/4 * (1 + 3/5 + 3/5) = 0.55. (Non-interpolated: (1 + 1/2 + 3/5) / 4 = 0.525;
    # ACT's trapezoid: 1/2 * 1/4 * ((1 + 1) + (1/3 + 1/2) + (1/2 + 3/5)) = 0.4917.)
    scores = [0.6, 0.8, 0.9, 0.5, 0.7]
    hits = [True, False, True, True, False]
    assert average_precision(scores, hits, n_positives=4) == pytest.approx(0.55)


def test_average_precision_ranks_scores_equal_in_float32_as_ties():
    # 0.5 + 1e-9 and 0.5 differ in float64 but are one float32: tied, they keep input order,
    # FP then TP, precision 1/2 at recall 1: AP 1/2 (float64 would rank the TP first: AP 1).
    assert np.float32(0.5 + 1e-9) == np.float32(0.5)
    assert average_precision([0.5, 0.5 + 1e-9], [False, True], n_positives=1) == 0.5
    assert average_precision([0.5 + 1e-9, 0.5], [True, False], n_positives=1) == 1.0


def test_average_precision_of_no_hit_is_zero():
    assert average_precision([0.9, 0.1], [False, False], n_positives=3) == 0.0
    assert average_precision([], [], n_positives=1) == 0.0


def test_average_precision_rejects_more_hits_than_positives():
    with pytest.raises(ValueError, match="exceed"):
        average_precision([0.5, 0.4], [True, True], n_positives=1)


def three_videos():
    # v1: class 0, detection identical to its GT (overlap 1)
    # v2: class 1, detection half-shifted (overlap 1/3)
    # v3: class 0, detection disjoint in space (overlap 0)
    gt_box, shifted, far = [0, 0, 10, 10], [5, 0, 15, 10], [50, 50, 60, 60]
    ground_truth = {
        "v1": GroundTruth(0, [constant_tube(0, 4, gt_box)]),
        "v2": GroundTruth(1, [constant_tube(0, 4, gt_box)]),
        "v3": GroundTruth(0, [constant_tube(0, 4, gt_box)]),
    }
    detections = {
        "v1": Detection(constant_tube(0, 4, gt_box), np.array([0.9, 0.1])),
        "v2": Detection(constant_tube(0, 4, shifted), np.array([0.6, 0.7])),
        "v3": Detection(constant_tube(0, 4, far), np.array([0.8, 0.3])),
    }
    return detections, ground_truth


def test_video_map_hand_case():
    detections, ground_truth = three_videos()
    # IoU 0.5. Class 0 ranking: v1 (TP), v3 (FP, overlap 0), v2 (FP, class 1); 2 positives:
    # AP = (1/1) / 2 = 0.5. Class 1 ranking: v2 (overlap 1/3 < 0.5: FP), v3, v1; AP = 0.
    mean_ap, per_class = video_map(detections, ground_truth, classes=[0, 1], iou_threshold=0.5)
    assert per_class == pytest.approx({0: 0.5, 1: 0.0})
    assert mean_ap == pytest.approx(0.25)
    # IoU 0.2: v2 becomes a hit at rank 1 for class 1, AP = 1; mAP = (0.5 + 1) / 2.
    mean_ap, per_class = video_map(detections, ground_truth, classes=[0, 1], iou_threshold=0.2)
    assert per_class == pytest.approx({0: 0.5, 1: 1.0})
    assert mean_ap == pytest.approx(0.75)


def test_video_map_skips_classes_without_ground_truth():
    detections, ground_truth = three_videos()
    detections = {v: Detection(d.tube, np.append(d.scores, 0.5)) for v, d in detections.items()}
    mean_ap, per_class = video_map(detections, ground_truth, classes=[0, 1, 2], iou_threshold=0.5)
    assert np.isnan(per_class[2])
    assert mean_ap == pytest.approx(0.25)


def test_video_map_matches_each_detection_to_one_gt_tube():
    # one video, two actors annotated; its single detection covers both boxes exactly but can
    # match only one tube: ranked list [TP], 2 positives, AP = 1/2.
    box = [0, 0, 10, 10]
    ground_truth = {"v": GroundTruth(0, [constant_tube(0, 3, box), constant_tube(0, 3, box)])}
    detections = {"v": Detection(constant_tube(0, 3, box), np.array([1.0]))}
    mean_ap, _ = video_map(detections, ground_truth, classes=[0], iou_threshold=0.5)
    assert mean_ap == pytest.approx(0.5)


def basketball_tie(dunk_score=0.5):
    """Two test videos in testlist01.txt's order, Basketball/v_Basketball_g01_c01 (class 0)
    then BasketballDunk/v_BasketballDunk_g01_c01 (class 1), both detected exactly, scoring
    0.5 and `dunk_score` for class 1. Sorted by bare id the Dunk video would come first
    ("D" < "_"), sorted by "Class/video" second ("/" < "D")."""
    box = [0, 0, 10, 10]
    ground_truth = {"v_Basketball_g01_c01": GroundTruth(0, [constant_tube(0, 2, box)]),
                    "v_BasketballDunk_g01_c01": GroundTruth(1, [constant_tube(0, 2, box)])}
    found = {"v_BasketballDunk_g01_c01": Detection(constant_tube(0, 2, box),
                                                   np.array([0.1, dunk_score])),
             "v_Basketball_g01_c01": Detection(constant_tube(0, 2, box), np.array([0.9, 0.5]))}
    return found, ground_truth


def test_video_map_ranks_ties_in_test_list_order():
    # Class 1, one positive: tied at 0.5 the Basketball video (FP) ranks before the Dunk video
    # (TP), as in the evaluator: precision 1/2 at recall 1, AP 1/2 (by video id: AP 1).
    found, ground_truth = basketball_tie()
    for order in (list(found), list(found)[::-1]):  # the detections' order does not matter
        _, per_class = video_map({v: found[v] for v in order}, ground_truth, [1], 0.5)
        assert per_class[1] == 0.5
    reordered = dict(reversed(list(ground_truth.items())))
    assert video_map(found, reordered, [1], 0.5)[1][1] == 1.0


def test_video_map_ties_scores_equal_in_float32():
    # 0.5 + 1e-9 is 0.5 in float32: a tie in test-list order again, AP 1/2 (float64: AP 1).
    found, ground_truth = basketball_tie(dunk_score=0.5 + 1e-9)
    assert video_map(found, ground_truth, [1], 0.5)[1][1] == 0.5
    found, ground_truth = basketball_tie(dunk_score=0.5 + 1e-6)  # above 0.5 in float32 too
    assert video_map(found, ground_truth, [1], 0.5)[1][1] == 1.0


def test_video_map_hit_needs_an_overlap_above_the_threshold():
    # The detection is twice the ground-truth box's height: IoU 100 / 200 = 0.5 exactly, in
    # every frame. Not a hit at 0.5 (IoU > threshold, as the evaluator): AP 0 (>=: AP 1).
    ground_truth = {"v": GroundTruth(0, [constant_tube(0, 3, [0, 0, 10, 10])])}
    found = {"v": Detection(constant_tube(0, 3, [0, 0, 10, 20]), np.array([1.0, 0.0]))}
    assert tube_iou(found["v"].tube, ground_truth["v"].tubes[0]) == 0.5
    assert video_map(found, ground_truth, [0], 0.5)[0] == 0.0
    assert video_map(found, ground_truth, [0], 0.49)[0] == 1.0
    np.testing.assert_array_equal(recall_at_iou(found, ground_truth, [0.49, 0.5]), [1, 0])


def test_video_map_rejects_detection_of_unknown_video():
    detections, ground_truth = three_videos()
    del ground_truth["v3"]
    with pytest.raises(ValueError, match="v3"):
        video_map(detections, ground_truth, classes=[0, 1], iou_threshold=0.5)


def test_recall_at_iou_hand_case():
    detections, ground_truth = three_videos()
    # overlaps of the 3 GT tubes: 1, 1/3, 0; none exceeds 1
    recall = recall_at_iou(detections, ground_truth, [0.1, 0.3, 0.5, 1.0])
    np.testing.assert_allclose(recall, [2 / 3, 2 / 3, 1 / 3, 0])
    del detections["v1"]  # a video without detection overlaps 0
    np.testing.assert_allclose(recall_at_iou(detections, ground_truth, [0.1]), [1 / 3])


def test_accuracy():
    scores = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert accuracy(scores, [1, 1, 1]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="labels"):
        accuracy(scores, [1, 1])


def test_average_precisions_equal_each_column_alone_to_the_last_bit():
    rng = np.random.default_rng(0)
    for trial in range(300):
        n, classes = int(rng.integers(0, 150)), int(rng.integers(1, 9))
        scores = rng.random((n, classes))
        if trial % 2:
            scores = np.round(scores, 1)  # ties, kept in input order
        hits = rng.random((n, classes)) < rng.random()
        positives = hits.sum(axis=0) + rng.integers(1, 4, classes)
        together = average_precisions(scores, hits, positives)
        alone = [average_precision(scores[:, c], hits[:, c], positives[c])
                 for c in range(classes)]
        assert together.tolist() == alone


def test_average_precisions_worked_by_hand_and_checked():
    scores = [[0.9, 0.2], [0.8, 0.9], [0.7, 0.5]]
    hits = [[False, True], [True, False], [True, False]]
    # column 0: ranks F T T, precisions 0 1/2 2/3 -> interpolated 2/3 at both recall steps
    # column 1: ranks F (0.9) F (0.5) T (0.2) -> one step of 1/2 at precision 1/3
    assert average_precisions(scores, hits, [2, 2]).tolist() == pytest.approx(
        [2 / 3, 1 / 6])
    with pytest.raises(ValueError, match="exceed"):
        average_precisions(scores, hits, [1, 1])
    with pytest.raises(ValueError, match="3 positive counts for 2 columns"):
        average_precisions(scores, hits, [2, 2, 2])
