"""bench/seed_sweep.py reads finished pairs' reports and applies issue 22's bar: recall @ 0.2
>= 80% and VideoLSTM's RGB accuracy >= 20 points above appearance ConvALSTM's."""

import subprocess
import sys

from test_tasks import REPO

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
    (folder / "report.md").write_text("# report\n")
    (folder / "table2.csv").write_text(TABLE2.format(motion=motion, appearance=appearance))
    (folder / "fig4_recall_synthetic.csv").write_text(RECALL.format(recall=recall))
    (folder / "claims_synthetic.csv").write_text(CLAIMS)


def sweep(root, *pairs):
    return subprocess.run([sys.executable, str(REPO / "bench" / "seed_sweep.py"),
                           "--root", str(root), "--pairs", *pairs],
                          capture_output=True, text=True, timeout=120)


def test_sweep_reads_finished_pairs_and_passes_when_every_pair_meets_the_bar(tmp_path):
    finished_pair(tmp_path, "d1-r1", motion=65.625, appearance=30.2, recall=1.0)
    finished_pair(tmp_path, "d2-r2", motion=60.0, appearance=39.0, recall=0.8)
    result = sweep(tmp_path, "1:1", "2:2")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("1:1: ") and "'C1': 'inconclusive'" in lines[0]
    assert "'C3': 'holds'" in lines[0] and "'meets the bar': np.True_" in lines[0]
    assert "0.65625" in lines[0] and "0.302" in lines[0]
    assert lines[1].startswith("2:2: ") and "'meets the bar': np.True_" in lines[1]
    assert "meets the bar" in lines[2]  # the table's header


def test_sweep_fails_when_one_pair_misses_recall_or_margin(tmp_path):
    finished_pair(tmp_path, "d1-r1", motion=65.625, appearance=30.2, recall=1.0)
    finished_pair(tmp_path, "d2-r2", motion=60.0, appearance=30.0, recall=0.79)
    finished_pair(tmp_path, "d3-r3", motion=49.0, appearance=30.0, recall=1.0)
    result = sweep(tmp_path, "1:1", "2:2", "3:3")
    assert result.returncode == 1, result.stderr[-3000:]
    verdicts = [line.split("'meets the bar': ")[1] for line in result.stdout.splitlines()[:3]]
    assert verdicts == ["np.True_}", "np.False_}", "np.False_}"]
