"""The report: tables beside the paper's numbers, stage times, skipped videos."""

import numpy as np
import pandas as pd
import pytest

from pipeline import cache
from pipeline.report import report


def acc(value, videos=40):
    """A cell with a made-up interval: the tables must print what they are given."""
    return report.Accuracy(value, value - 0.1, value + 0.05, videos)


def results():
    return {"synthetic": {
        "table1": {"rgb": {"convnet": acc(0.5), "convalstm": acc(0.75)},
                   "flow": {"lstm": acc(0.25)}},
        "table2": {"motion": {"alstm": acc(0.6)}},
        "table3": {"rgb": acc(0.7), "flow": acc(0.8), "fused": acc(0.9, 39)},
        "table4": {}}}


def test_tables_put_our_percentages_and_intervals_beside_the_papers():
    tables = report.classification_tables(results())
    table1 = tables["table1"].set_index(["input", "architecture"])
    assert table1.loc[("rgb", "convalstm"), "ours"] == 75.0
    assert table1.loc[("rgb", "convalstm"), "95% CI"] == "[65.0, 80.0]"
    assert table1.loc[("rgb", "convalstm"), "videos"] == "40"
    assert table1.loc[("rgb", "convalstm"), "paper UCF101"] == 79.6
    assert table1.loc[("flow", "lstm"), "paper HMDB51"] == 46.0
    assert tables["table2"].iloc[0]["paper UCF101"] == 78.6
    fused = tables["table3"].set_index("VideoLSTM").loc["fused"]
    assert fused["ours"] == 90.0 and fused["paper UCF101"] == 89.2 and fused["videos"] == "39"
    assert np.isnan(tables["table3"].set_index("VideoLSTM").loc["rgb", "paper UCF101"])
    assert tables["table4"].empty and list(tables["table4"].columns)[0] == "dataset"


def test_fig4_intervals_are_wilson_for_recall_and_bootstrap_for_map():
    """Tubes of 4 videos, one ground-truth tube each; recall at 0.5 of overlaps 0.9, 0.6, 0.1,
    0.0 is 2/4, whose Wilson interval is [0.150, 0.850]."""
    tubes = {"VideoLSTM": pd.DataFrame({
        "label": [0, 0, 1, 1], "smoothed 0": [0.9, 0.6, 0.1, 0.0],
        "not smoothed 0": [0.9, 0.6, 0.6, 0.0], "score_0": [0.9, 0.8, 0.2, 0.1],
        "score_1": [0.1, 0.2, 0.8, 0.9]}, index=["a", "b", "c", "d"])}
    recall = pd.DataFrame({"iou": [0.5], "VideoLSTM, smoothed": [0.5]})
    out = report.with_intervals(recall, [tubes], "recall")
    np.testing.assert_allclose(out[["VideoLSTM, smoothed low", "VideoLSTM, smoothed high"]]
                               .to_numpy()[0], [0.150, 0.850], atol=1e-3)
    mAP = pd.DataFrame({"iou": [0.5], "VideoLSTM, not smoothed": [0.75]})
    out = report.with_intervals(mAP, [tubes], "map")
    low, high = out.iloc[0][["VideoLSTM, not smoothed low", "VideoLSTM, not smoothed high"]]
    assert 0 <= low <= 0.75 <= high <= 1


def test_fig4_intervals_over_replicates_are_those_of_the_replicate_mean():
    """A second replicate recalls 4 of 4 where the first recalls 2 of 4: the mean is 3/4, and
    its interval is Wilson's for 3 of 4, [0.301, 0.954]."""
    first = pd.DataFrame({"label": [0, 0, 1, 1], "smoothed 0": [0.9, 0.6, 0.1, 0.0]},
                         index=["a", "b", "c", "d"])
    second = first.assign(**{"smoothed 0": [0.9, 0.6, 0.7, 0.8]})
    recall = pd.DataFrame({"iou": [0.5], "VideoLSTM, smoothed": [0.75]})
    out = report.with_intervals(recall, [{"VideoLSTM": first}, {"VideoLSTM": second}], "recall")
    np.testing.assert_allclose(out[["VideoLSTM, smoothed low", "VideoLSTM, smoothed high"]]
                               .to_numpy()[0], [0.301, 0.954], atol=1e-3)


def test_fig4_replicate_mean_keeps_the_thresholds_exact():
    """Three replicates at thresholds 0.05-0.75: summing the iou column made 0.2 into
    0.20000000000000004, and a reader looking up 0.2 found nothing."""
    from pipeline.localization_eval import RECALL_THRESHOLDS
    thresholds = list(RECALL_THRESHOLDS)
    tables = [pd.DataFrame({"iou": thresholds, "VideoLSTM, smoothed": [value] * len(thresholds)})
              for value in (1.0, 0.5, 0.0)]
    mean = report.replicate_mean(tables, ["r0", "r1", "r2"])
    assert list(mean.columns) == ["iou", "VideoLSTM, smoothed"]
    assert mean.set_index("iou").loc[0.2, "VideoLSTM, smoothed"] == 0.5
    assert list(mean["iou"]) == thresholds


def test_fig4_replicate_mean_refuses_replicates_with_other_thresholds():
    first = pd.DataFrame({"iou": [0.1, 0.2], "ALSTM, smoothed": [1.0, 0.5]})
    second = first.assign(iou=[0.1, 0.3])
    with pytest.raises(ValueError, match=r"r1\.csv: IoU thresholds \[0\.1, 0\.3\]"):
        report.replicate_mean([first, second], ["r0.csv", "r1.csv"])


def test_tables_list_every_replicate():
    cell = report.Accuracy(0.6, 0.5, 0.7, 40, (0.55, 0.65))
    table = report.classification_tables({"synthetic": {
        "table1": {"rgb": {"convalstm": cell}}, "table2": {}, "table3": {}, "table4": {}}})
    assert table["table1"].iloc[0]["replicates"] == "55.0, 65.0"


def test_report_opens_with_the_claims_and_labels_the_dataset():
    tables = report.classification_tables(results())
    recall = pd.DataFrame({"iou": [0.1, 0.5], "VideoLSTM, smoothed": [0.8, 0.25],
                           "VideoLSTM, smoothed low": [0.7, 0.2],
                           "VideoLSTM, smoothed high": [0.9, 0.3]})
    text = report.paper_report("synthetic-cpu", tables, {"synthetic": 0.125},
                               {"synthetic": {"recall": recall}}, {"fig": "fig.png"},
                               {"ComputeFlow": 10.0, "TrainModel": 5.5},
                               {"synthetic/v_x (ComputeFlow)": "cannot open"},
                               "Not computed: supply scores", generated="now",
                               claims={"synthetic": "## Claims\n\n| C1 | holds |\n"},
                               devices={("node1", "gpu:0"): (3, 12.5), ("node1", "cpu"): (2, 4.0)})
    assert text.index("## Claims (synthetic)") < text.index("## Table 1")
    assert "| node1 | gpu:0 | 3 | 12.5 |" in text and "| node1 | cpu | 2 | 4.0 |" in text
    assert "| synthetic | rgb | convalstm | 75.0 | [65.0, 80.0] |  | 40 | 79.6 | 43.3 |" in text
    assert "Chance level: synthetic 12.5%" in text
    assert "Not computed: supply scores" in text
    assert "| 0.1 | 80.0 [70.0, 90.0] |" in text and "| 0.5 | 25.0 [20.0, 30.0] |" in text
    assert "| total | 15.5 |" in text
    assert "- synthetic/v_x (ComputeFlow): cannot open" in text


def timing(log, stage, task, start, end, device, host="a"):
    report.append_timing(log, stage, task, end - start, start=start, end=end, host=host,
                         device=device)


def test_stage_and_device_times_sum_the_last_run_of_each_task(tmp_path):
    log = tmp_path / "timings.jsonl"
    timing(log, "ComputeFlow", "ComputeFlow_0", 100.0, 103.0, "cpu")
    timing(log, "ComputeFlow", "ComputeFlow_1", 100.0, 104.0, "cpu")
    timing(log, "ComputeFlow", "ComputeFlow_0", 200.0, 205.0, "cpu")
    timing(log, "Evaluate", "Evaluate_a", 110.0, 111.25, "gpu:1")
    timing(log, "Evaluate", "Evaluate_b", 110.0, 112.0, "gpu:1", host="b")
    with open(log, "a") as handle:  # a record from before records named their device
        handle.write('{"stage": "Manifest", "task": "Manifest_1", "seconds": 0.5}\n')
    assert report.stage_times(log) == {"ComputeFlow": 9.0, "Evaluate": 3.25, "Manifest": 0.5}
    assert report.device_times(log) == {("a", "cpu"): (2, 9.0), ("a", "gpu:1"): (1, 1.25),
                                        ("b", "gpu:1"): (1, 2.0)}
    first = report.last_timings(log)[0]
    assert (first["start"], first["end"], first["host"]) == (200.0, 205.0, "a")
    assert report.stage_times(tmp_path / "none.jsonl") == {}


def test_shard_summary_counts_videos_and_skips(tmp_path):
    paths = []
    for index in range(2):
        path = tmp_path / f"s{index}.h5"
        with cache.ShardWriter(path, cache.describe("flow", {}, {})) as writer:
            writer.add(f"v{index}", {"flow": np.zeros((3, 2, 2, 2), np.uint8)})
            writer.skip(f"bad{index}", "truncated")
            writer.info.update(frames=3, seconds=1.5)
        paths.append(str(path))
    summary = report.shard_summary(paths)
    assert summary["videos"] == 2 and summary["frames"] == 6 and summary["seconds"] == 3.0
    assert summary["skipped"] == {"bad0": "truncated", "bad1": "truncated"}
