"""bench/seed_sweep.py reads a pair's report and applies issue 22's bar: recall @ 0.2 >= 80% and
VideoLSTM's RGB accuracy >= 20 points above appearance ConvALSTM's."""

import sys

from test_tasks import REPO

sys.path.insert(0, str(REPO / "bench"))
import seed_sweep  # noqa: E402

TABLE2 = """dataset,attention,architecture,ours,95% CI,replicates,videos,paper UCF101,paper HMDB51
synthetic,appearance,alstm,30.2,"[21.9, 40.0]",30.2,96,77.0,40.9
synthetic,appearance,convalstm,{appearance},"[21.9, 40.0]",{appearance},96,79.6,43.3
synthetic,motion,alstm,29.2,"[21.0, 38.9]",29.2,96,78.6,42.6
synthetic,motion,convalstm,{motion},"[55.7, 74.4]",{motion},96,79.9,44.8
"""
RECALL = """iou,"VideoLSTM, smoothed","ALSTM, smoothed","Motion saliency, smoothed"
0.1,1.0,1.0,1.0
0.2,{recall},0.0,0.90625
"""
CLAIMS = """claim,hypothesis,comparison,ours,test,p,outcome,replicates,verdict
C1,h,"ConvALSTM > ALSTM, rgb",x,McNemar,1.0,no significant difference,x,inconclusive
C1,h,"ConvALSTM > ALSTM, flow",x,McNemar,0.5,no significant difference,x,inconclusive
C3,h,fused > rgb,x,McNemar,0.002,better,better,holds
"""


def finished_pair(root, name, motion, appearance, recall):
    """A pair's report folder as ReproducePaper leaves it (the files the sweep reads)."""
    folder = root / "reports" / f"sweep-{name}"
    folder.mkdir(parents=True)
    (folder / "table2.csv").write_text(TABLE2.format(motion=motion, appearance=appearance))
    (folder / "fig4_recall_synthetic.csv").write_text(RECALL.format(recall=recall))
    (folder / "claims_synthetic.csv").write_text(CLAIMS)
    return folder


def test_a_pair_with_the_recall_and_the_margin_meets_the_bar(tmp_path):
    row = seed_sweep.summary(finished_pair(tmp_path, "d1-r1", motion=65.625, appearance=30.2,
                                           recall=1.0))
    assert row["VideoLSTM rgb acc"] == 0.65625 and row["ConvALSTM appearance acc"] == 0.302
    assert row["VideoLSTM recall@0.2"] == 1.0 and row["motion saliency recall@0.2"] == 0.90625
    assert row["C1"] == "inconclusive" and row["C3"] == "holds"
    assert row["meets the bar"] is True
    at_the_bar = seed_sweep.summary(finished_pair(tmp_path, "d2-r2", motion=60.0,
                                                  appearance=39.0, recall=0.8))
    assert at_the_bar["meets the bar"] is True


def test_a_pair_short_of_the_recall_or_the_margin_misses_the_bar(tmp_path):
    recall = finished_pair(tmp_path, "d2-r2", motion=60.0, appearance=30.0, recall=0.79)
    margin = finished_pair(tmp_path, "d3-r3", motion=49.0, appearance=30.0, recall=1.0)
    assert seed_sweep.summary(recall)["meets the bar"] is False
    assert seed_sweep.summary(margin)["meets the bar"] is False


def test_a_pair_runs_under_its_own_seeds_and_folders(tmp_path):
    text = seed_sweep.config(tmp_path, 3, 4, 2).read_text()
    for line in ("seed = 4", "profile = sweep-d3-r4", "replicates = 2", "seed = 3",
                 f"work = {tmp_path / 'work' / 'd3-r4'}", f"cache = {tmp_path / 'cache'}"):
        assert line in text.splitlines()
