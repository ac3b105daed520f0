"""The Luigi layer: names and settings, and (slow) the whole pipeline from the command line."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]

TINY = """
[run]
profile = tiny
replicates = 1
shards = 2
[video]
frame_size = 64x48
[synthetic]
classes = 3
train_per_class = 2
test_per_class = 1
frames = 8
width = 64
height = 48
[flow]
processes = 2
[convnet]
image_size = 64
finetune_epochs = 1
finetune_frames = 2
batch_size = 4
[model]
hidden = 4
dense = 8
[train]
epochs = 2
batch_size = 4
snippet = 6
[evaluate]
segments = 3
length = 6
"""


def luigi(folder, *args, config="tiny.cfg"):
    env = dict(os.environ, LUIGI_CONFIG_PATH=str(folder / config))
    return subprocess.run([sys.executable, "-m", "luigi", "--module", "tasks", *args,
                           "--local-scheduler"], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=1800)


def test_task_architectures_are_the_registry_ones():
    import tasks
    from models.registry import ARCHITECTURES
    assert tasks.ARCHITECTURES == ARCHITECTURES


@pytest.mark.slow
def test_reproduce_paper_runs_end_to_end_and_reruns_nothing(tmp_path):
    (tmp_path / "tiny.cfg").write_text(TINY)
    first = luigi(tmp_path, "ReproducePaper", "--workers", "2")
    assert first.returncode == 0, first.stderr[-3000:]
    report = (tmp_path / "reports" / "tiny" / "report.md").read_text()
    for heading in ("Table 1", "Table 2", "Table 3", "Table 4", "Fig. 4", "Wall time per stage"):
        assert heading in report
    assert "iDT and object scores cannot be computed here" in report
    table1 = pd.read_csv(tmp_path / "reports" / "tiny" / "table1.csv")
    assert len(table1) == 10 and table1["ours"].between(0, 100).all()
    for figure in ("fig4_recall_synthetic.png", "fig4_map_synthetic.png", "fig3_synthetic.png",
                   "training_synthetic.png"):
        assert (tmp_path / "reports" / "tiny" / figure).stat().st_size > 0
    assert not list(tmp_path.rglob("*luigi-tmp*"))
    assert not list(tmp_path.rglob("*.checkpoints"))
    outputs = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")
               if p.is_file() and "timings" not in p.name}
    again = luigi(tmp_path, "ReproducePaper")
    assert again.returncode == 0, again.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")
            if p.is_file() and "timings" not in p.name} == outputs


@pytest.mark.slow
def test_replicates_train_every_model_again_and_the_report_pools_them(tmp_path):
    (tmp_path / "tiny.cfg").write_text(TINY.replace("replicates = 1", "replicates = 2"))
    run = luigi(tmp_path, "ReproducePaper", "--workers", "2")
    assert run.returncode == 0, run.stderr[-3000:]
    models = tmp_path / "work" / "synthetic" / "models"
    firsts = sorted(p for p in models.iterdir() if "-rep" not in p.name)
    assert len(firsts) == 13
    for first in firsts:
        name = first.name.rsplit("-", 1)[0]
        (second,) = models.glob(f"{name}-rep1-*")
        seeds = [json.loads((p / "model.json").read_text())["description"]["params"]["seed"]
                 for p in (first, second)]
        assert seeds == [0, 1000]
    folder = tmp_path / "reports" / "tiny"
    table1 = pd.read_csv(folder / "table1.csv")
    for ours, replicates in zip(table1["ours"], table1["replicates"]):
        values = [float(v) for v in replicates.split(", ")]
        assert len(values) == 2 and ours == pytest.approx(sum(values) / 2, abs=0.06)
    claims = pd.read_csv(folder / "claims_synthetic.csv")
    compared = claims[claims["claim"] != "C5"]
    assert (compared["replicates"].str.split(", ").str.len() == 2).all()
    assert "Per replicate" in (folder / "report.md").read_text()
