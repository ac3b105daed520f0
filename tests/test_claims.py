"""The paper's claims and their verdicts, from hand-built per-video measurements."""

import numpy as np
import pytest

from pipeline.report.claims import (ALPHA, CLAIMS, RECALL_IOU, Comparison, Outcome, Verdict,
                             claims_markdown, claims_table, compare, evaluate_claims, outcome)
from pipeline.report.stats import wilson_interval

V = 30
# GOOD is right on 20 of 30 videos, BAD on 5 of those: 15 discordant videos, all for GOOD,
# McNemar p = 2 * 2^-15 = 6.1e-5; GOOD vs GOOD has no discordant video, p = 1
GOOD = np.arange(V) < 20
BAD = np.arange(V) < 5
TABLE1_KEYS = [f"table1/{s}/{a}" for s in ("rgb", "flow") for a in ("convalstm", "alstm",
                                                                  "convlstm")]


def by_key(results):
    return {r.claim.key: r for r in results}


def table1(convalstm=GOOD, alstm=BAD, convlstm=BAD):
    return {f"table1/{s}/{a}": flags for s in ("rgb", "flow")
            for a, flags in (("convalstm", convalstm), ("alstm", alstm), ("convlstm", convlstm))}


def c1(measurements):
    return by_key(evaluate_claims(measurements))["C1"]


def test_claims_name_exactly_the_papers_measurements():
    keys = {c.key: [(x.better, x.worse, x.metric) for x in c.comparisons] for c in CLAIMS}
    assert list(keys) == ["C1", "C2", "C3", "C4", "C5"]
    assert keys["C1"] == [(f"table1/{s}/convalstm", f"table1/{s}/{a}", "accuracy")
                          for s in ("rgb", "flow") for a in ("alstm", "convlstm")]
    assert keys["C2"] == [("table2/motion/alstm", "table2/appearance/alstm", "accuracy"),
                          ("table2/motion/convalstm", "table2/appearance/convalstm", "accuracy")]
    assert keys["C3"] == [("table3/fused", "table3/rgb", "accuracy"),
                          ("table3/fused", "table3/flow", "accuracy")]
    assert keys["C4"] == [("fig4/videolstm/smoothed", "fig4/alstm/smoothed", "recall"),
                          ("fig4/videolstm/smoothed", "fig4/alstm/smoothed", "map"),
                          ("fig4/videolstm", "fig4/alstm", "gain")]
    assert keys["C5"] == []
    assert [c.source for c in CLAIMS] == ["Table 1", "Table 2", "Table 3", "Fig. 4a", "Sec. 4"]
    assert (ALPHA, RECALL_IOU) == (0.05, 0.2)


def test_comparison_rejects_an_unknown_metric():
    with pytest.raises(ValueError, match="metric"):
        Comparison("x", "a", "b", "top5")


def test_outcome_needs_sign_and_significance():
    assert outcome(0.1, 0.01) == Outcome.BETTER
    assert outcome(-0.1, 0.01) == Outcome.WORSE
    assert outcome(0.1, ALPHA) == Outcome.NO_DIFFERENCE  # p must be below alpha
    assert outcome(0.0, 0.0) == Outcome.NO_DIFFERENCE


def test_clearly_better_holds():
    result = c1(table1())
    assert result.verdict == Verdict.HOLDS
    first = result.comparisons[0]
    assert first.comparison.name == "ConvALSTM > ALSTM, rgb"
    assert first.better.value == pytest.approx(20 / 30)
    assert first.worse.value == pytest.approx(5 / 30)
    assert first.difference == pytest.approx(0.5)
    assert first.p_value == pytest.approx(2 / 2 ** 15)
    assert first.test == "McNemar" and first.outcome == "better"
    assert first.better.low < 20 / 30 < first.better.high


def test_clearly_worse_does_not_hold():
    assert c1(table1(convalstm=BAD, alstm=GOOD, convlstm=GOOD)).verdict == Verdict.DOES_NOT_HOLD


def test_equal_is_inconclusive():
    result = c1(table1(convalstm=GOOD, alstm=GOOD, convlstm=GOOD))
    assert result.verdict == Verdict.INCONCLUSIVE
    assert {r.p_value for r in result.comparisons} == {1.0}


def test_one_better_one_not_significant_is_inconclusive():
    # beats ALSTM, ties ConvLSTM on every video
    result = c1(table1(convalstm=GOOD, alstm=BAD, convlstm=GOOD))
    assert [r.outcome for r in result.comparisons] == ["better", "no significant difference"] * 2
    assert result.verdict == Verdict.INCONCLUSIVE


def test_one_worse_does_not_hold():
    measurements = table1()
    measurements["table1/flow/convlstm"] = np.ones(V, dtype=bool)  # 10 vs 0 discordant, p 0.002
    result = c1(measurements)
    assert result.comparisons[-1].outcome == Outcome.WORSE
    assert result.verdict == Verdict.DOES_NOT_HOLD


def test_missing_measurement_is_not_measured():
    measurements = table1()
    del measurements["table1/flow/convlstm"]
    results = by_key(evaluate_claims(measurements))
    assert results["C1"].verdict == Verdict.NOT_MEASURED
    assert results["C1"].missing == ("table1/flow/convlstm",)
    assert results["C3"].missing == ("table3/fused", "table3/rgb", "table3/flow")
    assert results["C4"].verdict == Verdict.NOT_MEASURED  # e.g. a dataset without boxes


def test_streaming_claim_against_the_tolerance():
    assert by_key(evaluate_claims({}, streaming_difference=5e-5))["C5"].verdict == Verdict.HOLDS
    assert by_key(evaluate_claims({}, streaming_difference=1e-4))["C5"].verdict == Verdict.HOLDS
    beyond = by_key(evaluate_claims({}, streaming_difference=2e-4))["C5"]
    assert beyond.verdict == Verdict.DOES_NOT_HOLD and beyond.streaming_difference == 2e-4
    assert by_key(evaluate_claims({}))["C5"].verdict == Verdict.NOT_MEASURED


def localization(videolstm_smoothed, alstm_smoothed):
    # labels all 0; scores put class 0 first; the toy "mAP" is the fraction of videos whose
    # overlap exceeds 0.2 and whose top class is right
    scores = np.tile([0.9, 0.1], (len(videolstm_smoothed), 1))
    labels = np.zeros(len(videolstm_smoothed), dtype=int)
    return {
        "fig4/videolstm/smoothed": (np.asarray(videolstm_smoothed), scores, labels),
        "fig4/alstm/smoothed": (np.asarray(alstm_smoothed), scores, labels),
        "fig4/videolstm": (np.asarray(videolstm_smoothed), np.full(len(labels), 0.1)),
        "fig4/alstm": (np.asarray(alstm_smoothed), np.asarray(alstm_smoothed) - 0.05),
    }


def toy_map(overlaps, scores, labels):
    return float(np.mean((overlaps > 0.2) & (scores.argmax(axis=1) == labels)))


def test_localization_claim():
    # VideoLSTM overlaps 0.21 on all 20 videos, ALSTM 0.2 (exactly the threshold: a miss):
    # recall 1.0 vs 0.0, McNemar 20 vs 0, p = 2 * 2^-20; toy mAP 1 vs 0 on every resample;
    # gains 0.21 - 0.1 = 0.11 vs 0.05 on every video, difference 0.06 on every resample (p 0)
    results = by_key(evaluate_claims(localization([0.21] * 20, [0.2] * 20), toy_map,
                                     resamples=200))
    recall, map_, gain = results["C4"].comparisons
    assert (recall.better.value, recall.worse.value) == (1.0, 0.0)
    assert recall.p_value == pytest.approx(2 / 2 ** 20) and recall.test == "McNemar"
    assert (map_.better, map_.worse) == ((1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    assert map_.test == "paired bootstrap" and map_.p_value == 0.0
    assert gain.better.value == pytest.approx(0.11) and gain.worse.value == pytest.approx(0.05)
    assert gain.difference == pytest.approx(0.06) and gain.p_value == 0.0
    assert results["C4"].verdict == Verdict.HOLDS


def test_recall_needs_an_overlap_above_the_threshold():
    # successes (overlap > 0.2): A [no, yes, yes, no], B [no, yes, no, no]: 50% vs 25%;
    # McNemar 1 vs 0 discordant, p = 1 (with >=, A's 0.2 would count: 75%, p = 0.5)
    result = compare(Comparison("r", "a", "b", "recall"), np.array([0.2, 0.3, 0.25, 0.1]),
                     np.array([0.19, 0.3, 0.0, 0.1]))
    assert (result.better.value, result.worse.value) == (0.5, 0.25)
    assert result.p_value == 1.0
    assert result.outcome == Outcome.NO_DIFFERENCE


def test_recall_counts_and_pairs_ground_truth_tubes():
    # Video 1 has two tubes, video 2 one (NaN: no second tube). A finds tube 1a and video 2's,
    # B finds 1a and 1b: 2 of 3 tubes each, Wilson over 3 tubes, McNemar pairs tube by tube:
    # 1b for B only, 2 for A only, p = 1. Per video (best overlap) it would be 100% vs 50%.
    a = np.array([[0.9, 0.1], [0.5, np.nan]])
    b = np.array([[0.9, 0.6], [0.1, np.nan]])
    result = compare(Comparison("r", "a", "b", "recall"), (a, None, None), (b, None, None))
    assert (result.better.value, result.worse.value) == (2 / 3, 2 / 3)
    assert result.better[1:] == pytest.approx(wilson_interval(2, 3))
    assert result.p_value == 1.0 and result.difference == 0.0


def test_gain_is_the_mean_change_per_ground_truth_tube():
    # Video 1's two tubes gain 0.3 and 0.0, video 2's one tube 0.6: (0.3 + 0 + 0.6) / 3 = 0.3
    # per tube (0.375 averaged per video, 0.45 on best overlaps)
    smoothed = np.array([[0.8, 0.2], [0.7, np.nan]])
    not_smoothed = np.array([[0.5, 0.2], [0.1, np.nan]])
    result = compare(Comparison("g", "a", "b", "gain"), (smoothed, not_smoothed),
                     (not_smoothed, not_smoothed), resamples=50)
    assert result.better.value == pytest.approx(0.3) and result.worse.value == 0.0


def test_map_needs_its_metric():
    with pytest.raises(ValueError, match="map_at"):
        evaluate_claims(localization([0.5] * 4, [0.1] * 4))


def test_table_and_markdown():
    measurements = table1()
    # C2 motion right on 8 of 10 videos, appearance on the same 8: Wilson [49.0, 94.3] each
    eight = np.arange(10) < 8
    measurements.update({"table2/motion/alstm": eight, "table2/appearance/alstm": eight,
                         "table2/motion/convalstm": eight, "table2/appearance/convalstm": eight})
    results = evaluate_claims(measurements, streaming_difference=3e-6)
    table = claims_table(results)
    assert list(table["claim"]) == ["C1"] * 4 + ["C2"] * 2 + ["C3"] * 2 + ["C4"] * 3 + ["C5"]
    c2 = table[table["claim"] == "C2"].iloc[0]
    assert c2["ours"] == "80.0 [49.0, 94.3] vs 80.0 [49.0, 94.3]"
    assert c2["p"] == 1.0 and c2["outcome"] == "no significant difference"
    assert c2["verdict"] == "inconclusive"
    assert table[table["claim"] == "C3"].iloc[0]["verdict"] == (
        "not measured (missing: table3/fused, table3/rgb, table3/flow)")

    text = claims_markdown(results)
    assert text.startswith("## Claims")
    rows = [line for line in text.splitlines() if line[:4] in {f"| C{i}" for i in range(1, 6)}]
    assert [row.split(" | ")[0] for row in rows] == ["| C1", "| C2", "| C3", "| C4", "| C5"]
    for key, expected in [("C1", "holds"), ("C2", "inconclusive"), ("C3", "not measured"),
                          ("C4", "not measured"), ("C5", "holds")]:
        row = next(r for r in rows if r.startswith(f"| {key} |"))
        assert f"**{expected}" in row
    # the verdict is shown on a claim's first row only: 12 table rows, 5 of them with a key;
    # every row has the header's 9 cells (no stray "|" inside a cell)
    table_lines = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(table_lines) == 1 + 12
    assert {line.count("|") for line in table_lines} == {10}
    assert "3e-06" in rows[-1]
    assert "0.05" in text and "McNemar" in text and "Wilson" in text


def test_replicates_are_pooled_over_videos_with_a_majority():
    # 12 videos, 3 replicates. Replicate 0: A right and B wrong on every video (+1);
    # replicates 1 and 2: B right and A wrong on video 0 only (-1/12 each). Per-video sums
    # are [-1, +1 x 11], sign-flip p = P(|S| >= 10) = 2 * 13 / 4096, pooled difference > 0,
    # but only one replicate of three goes A's way: no significant difference
    right, wrong = np.ones(12, bool), np.zeros(12, bool)
    only0 = np.arange(12) == 0
    comparison = Comparison("A > B", "a", "b", "accuracy")
    result = compare(comparison, [right, ~only0, ~only0], [wrong, right, right])
    assert result.p_value == pytest.approx(26 / 4096)
    assert result.difference == pytest.approx((12 - 1 - 1) / 36)
    assert result.outcome == Outcome.NO_DIFFERENCE
    assert result.replicates == (Outcome.BETTER, Outcome.NO_DIFFERENCE, Outcome.NO_DIFFERENCE)
    assert result.test == "sign-flip over videos"
    # the same evidence in two replicates of three is better
    result = compare(comparison, [right, right, ~only0], [wrong, wrong, right])
    assert result.outcome == Outcome.BETTER
    assert result.better.value == pytest.approx(35 / 36)


def test_majority_rule_of_outcome():
    assert outcome(0.1, 0.01, [0.2, 0.1, -0.1]) == Outcome.BETTER
    assert outcome(0.1, 0.01, [0.3, -0.1, -0.1]) == Outcome.NO_DIFFERENCE
    assert outcome(-0.1, 0.01, [-0.2, -0.1, 0.1]) == Outcome.WORSE
    assert outcome(0.1, 0.01, [0.1, -0.1]) == Outcome.NO_DIFFERENCE
    with pytest.raises(ValueError, match="replicates against"):
        compare(Comparison("A > B", "a", "b", "accuracy"), [GOOD, GOOD], [BAD])
