"""(slow) The paper profile's dataset list end to end: ReproducePaper on tiny copies of UCF101,
HMDB51 and THUMOS13 (UCF101-24) in their real on-disk formats, then the paths around it that a
paper-scale user takes: Table 4 fusion with external scores on a real dataset name, and predict
with a model trained on HMDB51."""

import configparser
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline import cache
from pipeline.datasets import synthetic

from test_tasks import REPO, TINY, luigi

SPEC = synthetic.SyntheticSpec(classes=3, train_per_class=3, test_per_class=1, frames=8,
                               width=64, height=48)


def paper_datasets() -> list[str]:
    parser = configparser.ConfigParser()
    parser.read(REPO / "configs" / "paper.cfg")
    return json.loads(parser["ReproducePaper"]["datasets"])


def hmdb51_copy(source: Path, root: Path) -> dict[str, str]:
    """HMDB51's layout: <class>/<video>.avi and testTrainMulti_7030_splits/<class>_test_split
    {1,2,3}.txt with CRLF lines '<video>.avi 1|2|0'; split N tests group N, group 4 is unused."""
    videos, splits = root / "videos", root / "testTrainMulti_7030_splits"
    splits.mkdir(parents=True)
    for name in synthetic.CLASS_NAMES[:SPEC.classes]:
        (videos / name).mkdir(parents=True)
        stems = [synthetic.video_stem(name, group, 0) for group in range(SPEC.groups)]
        for stem in stems:
            shutil.copy(source / synthetic.VIDEOS_DIR / name / f"{stem}.avi",
                        videos / name / f"{stem}.avi")
        for split in (1, 2, 3):
            tags = ["2" if g == split - 1 else "0" if g == 3 else "1" for g in range(len(stems))]
            (splits / f"{name}_test_split{split}.txt").write_bytes("".join(
                f"{stem}.avi {tag} \r\n" for stem, tag in zip(stems, tags)).encode())
    return {"videos": str(videos), "splits": str(splits)}


def write_config(folder: Path, data: Path, extra: str = "") -> None:
    locations = {"videos": data / synthetic.VIDEOS_DIR, "splits": data / synthetic.SPLITS_DIR}
    hmdb = hmdb51_copy(data, folder / "hmdb51")
    text = TINY.replace("[train]\nepochs = 2", "[train]\nepochs = 1") + f"""
[ucf101]
videos = {locations['videos']}
splits = {locations['splits']}
[hmdb51]
videos = {hmdb['videos']}
splits = {hmdb['splits']}
[thumos13]
videos = {locations['videos']}
splits = {locations['splits']}
annotations = {data / synthetic.ANNOTATIONS_FILE}
[ReproducePaper]
datasets = {json.dumps(paper_datasets())}
{extra}"""
    (folder / "tiny.cfg").write_text(text)


def model_folders(folder: Path, dataset: str) -> list[Path]:
    return sorted(p for p in (folder / "work" / dataset / "models").iterdir() if p.is_dir())


def head_free_weights(path: Path) -> list[np.ndarray]:
    import keras
    from models import registry  # noqa: F401  (registers the custom layers)
    model = keras.models.load_model(path / "model.keras")
    return [w for layer in model.layers
            for w in (layer.get_weights()[:-2] if layer.name == "head" else layer.get_weights())]


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("paper")
    data = synthetic.generate(folder / "data" / "tiny", SPEC)
    write_config(folder, data)
    result = luigi(folder, "ReproducePaper", "--workers", "2")
    assert result.returncode == 0, result.stderr[-4000:]
    return folder


@pytest.mark.slow
def test_the_paper_dataset_list_runs_end_to_end(paper_run):
    assert paper_datasets() == ["ucf101", "hmdb51", "thumos13"]
    reports = paper_run / "reports" / "tiny"
    text = (reports / "report.md").read_text()
    assert "hmdb51: every accuracy is the mean over its splits 1, 2, 3" in text
    for key in ("table1", "table2", "table3"):
        table = pd.read_csv(reports / f"{key}.csv")
        assert set(table["dataset"]) == {"ucf101", "hmdb51"}, key
        assert table["ours"].between(0, 100).all()
    for name in ("recall", "map"):
        assert (reports / f"fig4_{name}_thumos13.csv").is_file()
        assert (reports / f"fig4_{name}_thumos13.png").stat().st_size > 0
    evaluations = [p for p in (paper_run / "work" / "hmdb51" / "evaluation").iterdir()]
    assert {p.name.split("-")[3] for p in evaluations} == {"split1", "split2", "split3"}


@pytest.mark.slow
def test_each_hmdb51_model_starts_from_its_ucf101_model(paper_run):
    def kind(model: Path) -> str:
        return "-".join(model.name.split("-")[:3])

    ucf101 = {kind(p): p for p in model_folders(paper_run, "ucf101")}
    hmdb51 = model_folders(paper_run, "hmdb51")
    assert len(hmdb51) == 3 * len(ucf101) == 39
    for model in hmdb51:
        record = json.loads((model / "model.json").read_text())
        source = ucf101[kind(model)]
        assert record["initialised_from"] == source.name
        assert record["description"]["upstream"]["init"] == source.name.rsplit("-", 1)[1]
        assert record["initial_weights_sha256"] == cache.array_checksum(
            head_free_weights(source))


@pytest.mark.slow
def test_table4_reads_external_scores_per_dataset_and_split(paper_run):
    scores = paper_run / "scores"
    scores.mkdir()
    for dataset, splits in (("ucf101", (1,)), ("hmdb51", (1, 2, 3))):
        for split in splits:
            manifest = pd.read_parquet(next(
                (paper_run / "work" / dataset).glob(f"manifest-split{split}-*.parquet")))
            test = manifest[manifest["split"] == "test"]
            classes = list(manifest.drop_duplicates("label_index")
                           .sort_values("label_index")["label"])
            table = pd.DataFrame(np.eye(len(classes))[test["label_index"]], columns=classes)
            table.insert(0, "video_id", list(test["video_id"]))
            table.to_csv(scores / f"idt_{dataset}_split{split}.csv", index=False)
    config = (paper_run / "tiny.cfg").read_text()
    (paper_run / "tiny.cfg").write_text(config + f"\n[fusion]\nidt = {scores}/idt_{{dataset}}"
                                        "_split{split}.csv\n")
    (paper_run / "reports" / "tiny" / "report.md").unlink()
    result = luigi(paper_run, "ReproducePaper")
    assert result.returncode == 0, result.stderr[-4000:]
    table4 = pd.read_csv(paper_run / "reports" / "tiny" / "table4.csv")
    idt = table4[table4["combination"] == "iDT(FV)"]
    # the external scores are the labels themselves: 100% on every dataset
    assert sorted(idt["dataset"]) == ["hmdb51", "ucf101"]
    assert (idt["ours"] == 100).all()
    assert set(table4[table4["combination"] == "iDT(FV)+VideoLSTM"]["dataset"]) == {
        "ucf101", "hmdb51"}


@pytest.mark.slow
def test_predict_applies_a_model_trained_on_hmdb51(paper_run, tmp_path):
    model = next(p for p in model_folders(paper_run, "hmdb51")
                 if p.name.startswith("videolstm-motion-rgb-split2"))
    convnets = {stream: next((paper_run / "cache" / "hmdb51").glob(f"convnet-{stream}-*"))
                for stream in ("rgb", "flow")}
    video = next((paper_run / "hmdb51" / "videos").rglob("*.avi"))
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.predict", str(video), "--model", str(model),
         "--out", str(tmp_path / "out")],
        cwd=paper_run, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    ranking = pd.read_csv(tmp_path / "out" / "ranking.csv")
    assert sorted(ranking.iloc[:, 0]) == sorted(synthetic.CLASS_NAMES[:SPEC.classes])
