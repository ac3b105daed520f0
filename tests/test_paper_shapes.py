"""(slow) Every stage at the paper's shapes: ReproducePaper with configs/paper.cfg changed only in
counts and budgets (a few synthetic videos of 40 frames at 320x240, one epoch, small batches,
fewer test segments, seeded random VGG-16 weights), so frames are stretched to 340x256, TV-L1
runs with OpenCV's 5 scales and 5 warps, VGG-16 reads 224x224 (pool5 7x7x512, fc7 4096) and the
models have 512 hidden channels, 1,024 dense units, mean initial states, a tanh head and the
ALSTM's motion layer on flow fc7, on 30-frame snippets. On the shared 2-core machine it took 26
min (--workers 1, TV-L1 11 of them) and its largest process peaked at 5.0 GiB of RSS."""

import configparser
import json

import h5py
import pandas as pd
import pytest

from test_tasks import REPO, luigi

BUDGETS = {
    "run": {"dataset": "synthetic", "profile": "paper-shapes", "shards": "2", "replicates": "1"},
    "synthetic": {"classes": "3", "train_per_class": "2", "test_per_class": "1", "frames": "40",
                  "width": "320", "height": "240"},
    "flow": {"processes": "2"},
    "convnet": {"weights": "none", "finetune_frames": "2", "batch_size": "4"},
    "train": {"epochs": "1", "batch_size": "2", "readers": "1"},
    "evaluate": {"segments": "2"},
    "ReproducePaper": {"datasets": json.dumps(["synthetic"])},
}
"""What differs from configs/paper.cfg: counts, budgets and the dataset, never a shape."""


def paper_shapes_config() -> configparser.ConfigParser:
    """configs/paper.cfg with BUDGETS applied."""
    parser = configparser.ConfigParser()
    parser.optionxform = str
    parser.read(REPO / "configs" / "paper.cfg")
    for section, values in BUDGETS.items():
        if not parser.has_section(section):
            parser.add_section(section)
        for key, value in values.items():
            parser.set(section, key, value)
    return parser


def test_the_budgets_change_no_shape():
    paper = configparser.ConfigParser()
    paper.read(REPO / "configs" / "paper.cfg")
    shapes = paper_shapes_config()
    for section, key in (("video", "frame_size"), ("flow", "nscales"), ("flow", "warps"),
                         ("convnet", "image_size"), ("convnet", "dtype"), ("model", "hidden"),
                         ("model", "attention"), ("model", "dense"), ("model", "initial_state"),
                         ("model", "dense_activation"), ("model", "alstm_motion_input"),
                         ("train", "snippet"), ("evaluate", "length")):
        assert shapes[section][key] == paper[section][key], (section, key)


def first_shard_arrays(root, pattern: str) -> list[dict]:
    """Per video group of the first shard in cache/synthetic/<pattern>: each array's per-frame
    shape and dtype."""
    (path,) = {p for p in (root / "cache" / "synthetic").glob(f"{pattern}/*.h5")
               if "shard-000" in p.name}
    with h5py.File(path) as shard:
        return [{name: (array.shape[1:], str(array.dtype)) for name, array in group.items()}
                for group in shard.values() if isinstance(group, h5py.Group)]


@pytest.mark.slow
def test_reproduce_paper_runs_at_the_paper_shapes(tmp_path):
    with open(tmp_path / "paper-shapes.cfg", "w") as handle:
        paper_shapes_config().write(handle)
    result = luigi(tmp_path, "ReproducePaper", "--workers", "1", config="paper-shapes.cfg")
    assert result.returncode == 0, result.stderr[-4000:]
    report = (tmp_path / "reports" / "paper-shapes" / "report.md").read_text()
    assert "Table 1" in report and "Fig. 4" in report
    flow = first_shard_arrays(tmp_path, "flow-*")
    assert flow and all(arrays["flow"] == ((256, 340, 2), "uint8") for arrays in flow)
    features = first_shard_arrays(tmp_path, "features-flow-*")
    assert features and all(arrays["pool5"] == ((7, 7, 512), "float16")
                            and arrays["fc7"] == ((4096,), "float16") for arrays in features)
    models = sorted((tmp_path / "work" / "synthetic" / "models").iterdir())
    assert len([m for m in models if m.is_dir()]) == 13
    table1 = pd.read_csv(tmp_path / "reports" / "paper-shapes" / "table1.csv")
    assert table1["ours"].between(0, 100).all()
