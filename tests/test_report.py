"""The report: tables beside the paper's numbers, stage times, skipped videos."""

import numpy as np
import pandas as pd

from pipeline import cache, report


def results():
    return {"synthetic": {
        "table1": {"rgb": {"convnet": 0.5, "convalstm": 0.75}, "flow": {"lstm": 0.25}},
        "table2": {"motion": {"alstm": 0.6}},
        "table3": {"rgb": 0.7, "flow": 0.8, "fused": 0.9},
        "table4": {}}}


def test_tables_put_our_percentages_beside_the_papers():
    tables = report.classification_tables(results())
    table1 = tables["table1"].set_index(["input", "architecture"])
    assert table1.loc[("rgb", "convalstm"), "ours"] == 75.0
    assert table1.loc[("rgb", "convalstm"), "paper UCF101"] == 79.6
    assert table1.loc[("flow", "lstm"), "paper HMDB51"] == 46.0
    assert tables["table2"].iloc[0]["paper UCF101"] == 78.6
    fused = tables["table3"].set_index("VideoLSTM").loc["fused"]
    assert fused["ours"] == 90.0 and fused["paper UCF101"] == 89.2
    assert np.isnan(tables["table3"].set_index("VideoLSTM").loc["rgb", "paper UCF101"])
    assert tables["table4"].empty and list(tables["table4"].columns)[0] == "dataset"


def test_report_labels_the_dataset_and_says_what_is_missing():
    tables = report.classification_tables(results())
    recall = pd.DataFrame({"iou": [0.1, 0.5], "VideoLSTM, smoothed": [0.8, 0.25]})
    text = report.paper_report("synthetic-cpu", tables, {"synthetic": 0.125},
                               {"synthetic": {"recall": recall}}, {"fig": "fig.png"},
                               {"ComputeFlow": 10.0, "TrainModel": 5.5},
                               {"synthetic/v_x (ComputeFlow)": "cannot open"},
                               "Not computed: supply scores", generated="now")
    assert "| synthetic | rgb | convalstm | 75.0 | 79.6 | 43.3 |" in text
    assert "Chance level: synthetic 12.5%" in text
    assert "Not computed: supply scores" in text
    assert "| 0.10 | 80.0 |" in text and "| 0.50 | 25.0 |" in text
    assert "| total | 15.5 |" in text
    assert "- synthetic/v_x (ComputeFlow): cannot open" in text


def test_stage_times_sum_the_last_run_of_each_task(tmp_path):
    log = tmp_path / "timings.jsonl"
    report.append_timing(log, "ComputeFlow", "ComputeFlow_0", 3.0)
    report.append_timing(log, "ComputeFlow", "ComputeFlow_1", 4.0)
    report.append_timing(log, "ComputeFlow", "ComputeFlow_0", 5.0)
    report.append_timing(log, "Evaluate", "Evaluate_a", 1.25)
    assert report.stage_times(log) == {"ComputeFlow": 9.0, "Evaluate": 1.25}
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
