"""videolstm-plan: exact task, video, frame and pair counts of a tiny config against counts made
here from the split files and decoded videos; its JSON; the disk warning; bad device figures;
the wall-time schedule."""

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from pipeline.plan import device_figures, estimate, schedule
from pipeline.plan.calibration import Rates
from pipeline.plan.cli import notes

from test_tasks import REPO, TINY


def plan(folder: Path, *args: str, config: str = TINY) -> subprocess.CompletedProcess:
    (folder / "tiny.cfg").write_text(config)
    env = dict(os.environ, LUIGI_CONFIG_PATH=str(folder / "tiny.cfg"),
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "pipeline.plan", *args], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=600)


def decoded_frames(path: Path) -> int:
    capture = cv2.VideoCapture(str(path))
    frames = 0
    while capture.read()[0]:
        frames += 1
    capture.release()
    return frames


def listed(root: Path, name: str) -> list[str]:
    return [line.split()[0] for line in (root / "ucfTrainTestlist" / name).read_text().split("\n")
            if line.strip()]


@pytest.fixture(scope="module")
def tiny_plan(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plan")
    result = plan(folder, "--no-calibrate", "--json", "plan.json")
    assert result.returncode == 0, result.stderr[-3000:]
    return folder, result.stdout, json.loads((folder / "plan.json").read_text())


def test_counts_are_those_of_the_split_files_and_decoded_videos(tiny_plan):
    folder, _, found = tiny_plan
    (root,) = (folder / "data").glob("synthetic-*")
    train, test = listed(root, "trainlist01.txt"), listed(root, "testlist01.txt")
    frames = {video: decoded_frames(root / "UCF-101" / video) for video in train + test}
    shards = 2
    stages = {stage["stage"]: stage for stage in found["stages"]}
    assert stages["Manifest"]["tasks"] == 1 and stages["Manifest"]["items"]["videos"] == 9
    flow = stages["ComputeFlow"]
    assert flow["tasks"] == shards
    assert flow["items"] == {"videos": len(frames), "frames": sum(frames.values()),
                             "pairs": sum(n - 1 for n in frames.values())}
    features = stages["ExtractFeatures"]
    assert features["tasks"] == 2 * shards
    assert features["items"]["frames"] == 2 * sum(frames.values()) - len(frames)
    models = 10 + 4 - 1  # Table 1's ten, Table 2's four of which VideoLSTM rgb is Table 3's too
    assert stages["TrainModel"]["tasks"] == models and stages["Evaluate"]["tasks"] == models
    assert stages["TrainModel"]["items"]["steps"] == models * 2 * -(-len(train) // 4)
    assert stages["Evaluate"]["items"]["segments"] == models * len(test) * 3
    assert stages["FinetuneConvNet"]["tasks"] == 2
    assert stages["Localize"]["tasks"] == 2
    assert found["total"]["tasks"] == sum(stage["tasks"] for stage in found["stages"])


def test_replicates_repeat_the_model_tasks_only(tmp_path, tiny_plan):
    result = plan(tmp_path, "--no-calibrate", "--json", "plan.json",
                  config=TINY.replace("replicates = 1", "replicates = 2"))
    assert result.returncode == 0, result.stderr[-3000:]
    once = {s["stage"]: s["tasks"] for s in tiny_plan[2]["stages"]}
    twice = {s["stage"]: s["tasks"] for s in json.loads((tmp_path / "plan.json").read_text())
             ["stages"]}
    doubled = {"TrainModel", "Evaluate", "Fuse", "Localize", "MotionSaliencyTubes",
               "EvaluateLocalization"}
    assert twice == {stage: tasks * (2 if stage in doubled else 1)
                     for stage, tasks in once.items()}


def test_the_json_has_one_entry_per_task_family_and_the_totals(tiny_plan):
    _, printed, found = tiny_plan
    assert set(found) >= {"stages", "total"}
    for stage in found["stages"]:
        assert {"stage", "tasks", "items", "bytes", "seconds"} <= set(stage)
        assert set(stage["items"]) <= {"videos", "frames", "pairs", "steps", "segments"}
        assert stage["seconds"] is None  # --no-calibrate
        assert f"| {stage['stage']} | {stage['tasks']} |" in printed
    assert len({s["stage"] for s in found["stages"]}) == len(found["stages"])
    assert found["total"]["bytes"] == sum(stage["bytes"] for stage in found["stages"])
    flow = next(s for s in found["stages"] if s["stage"] == "ComputeFlow")
    assert flow["bytes"] == flow["items"]["pairs"] * 64 * 48 * 2  # uncompressed, uint8 x 2
    assert "CAP_PROP_FRAME_COUNT" in printed


def test_a_short_disk_is_a_warning():
    stages = [{"folder": "cache", "bytes": 5000}, {"folder": "work", "bytes": 10}]
    free = {"cache": ("fs1", 1000), "work": ("fs2", 10 ** 9), "data": ("fs1", 1000),
            "reports": ("fs2", 10 ** 9)}
    disk = estimate.disk(stages, free)
    assert [(d["filesystem"], d["needed"], d["short"]) for d in disk] == [
        ("fs1", 5000, True), ("fs2", 10, False)]
    result = {"total": {"disk": disk, "workers": 1, "machines": 1, "gpus_per_machine": 0,
                        "wall_seconds": None}}
    warnings = [line for line in notes(result, False, [], None) if line.startswith("WARNING")]
    assert len(warnings) == 1 and "cache, data" in warnings[0]


def test_bad_device_figures_name_the_file(tmp_path):
    bad = tmp_path / "figures.json"
    bad.write_text('{"device": "x", "rows": [')
    result = plan(tmp_path, "--no-calibrate", "--device-figures", str(bad))
    assert result.returncode != 0
    assert str(bad) in result.stderr and "device_check.py" in result.stderr
    missing = plan(tmp_path, "--no-calibrate", "--device-figures", str(tmp_path / "none.json"))
    assert missing.returncode != 0 and "none.json" in missing.stderr


def test_device_figures_replace_the_gpu_stages_rates():
    figures = {"device": "GPU-X", "rows": [
        {"what": "TV-L1 TensorFlow 340x256, batch 32", "value": 50.0, "unit": "pairs/s"},
        {"what": "VGG-16 rgb 224x224 pool5+fc7, batch 64, float32", "value": 400.0,
         "unit": "frames/s"},
        {"what": "VGG-16 flow 224x224 pool5+fc7, batch 64, float32", "value": 500.0,
         "unit": "frames/s"},
        {"what": "ConvALSTM training, batch 128 x 30 x 7x7x512, hidden 512, in memory",
         "value": 2.0, "unit": "steps/s"},
        {"what": "ConvALSTM training fed by SnippetLoader (lzf shards)", "value": 1.0,
         "unit": "steps/s"}]}
    rates = Rates(seconds={"train_convalstm-appearance": 0.01, "train_lstm-appearance": 0.002})
    replaced = device_figures.apply(figures, rates, True,
                                    ["convalstm-appearance", "lstm-appearance"])
    assert rates.seconds["flow_pairs"] == pytest.approx(1 / 50)
    assert rates.seconds["features_flow"] == pytest.approx(1 / 500)
    assert rates.seconds["train_convalstm-appearance"] == pytest.approx(1 / (128 * 30))
    assert rates.seconds["train_lstm-appearance"] == pytest.approx(0.2 / (128 * 30))
    assert set(replaced) >= {"flow_pairs", "features_rgb", "train_lstm-appearance"}
    assert rates.where["flow_pairs"] == "GPU-X"


def test_the_schedule_runs_device_tasks_per_gpu_and_cpu_tasks_one_at_a_time():
    jobs = [schedule.Job(f"t{i}", (), 10.0, "gpu") for i in range(4)]
    assert schedule.wall_seconds(jobs, workers=4, machines=1, gpus=2) == 20.0
    assert schedule.wall_seconds(jobs, workers=4, machines=2, gpus=2) == 10.0
    cpu = [schedule.Job(f"c{i}", (), 10.0, "cpu") for i in range(3)]
    assert schedule.wall_seconds(cpu, workers=3, machines=1, gpus=0) == 30.0
    chain = [schedule.Job("a", (), 5.0, "light"), schedule.Job("b", ("a",), 7.0, "light")]
    assert schedule.wall_seconds(chain, workers=8, machines=1, gpus=0) == 12.0
    with pytest.raises(ValueError, match="needs a GPU"):
        schedule.wall_seconds(jobs, workers=1, machines=1, gpus=0)


def test_a_task_without_a_per_item_rate_has_no_time_and_a_missing_start_counts_zero():
    work = {"features_rgb": 10, "features_start_rgb": 1, "tensorflow": 1}
    assert estimate.task_seconds(work, Rates()) is None
    assert estimate.task_seconds(work, Rates(seconds={"tensorflow": 5.0})) is None
    assert estimate.task_seconds(work, Rates(seconds={"features_rgb": 0.5})) == 5.0
    assert estimate.task_seconds(work, Rates(seconds={
        "features_rgb": 0.5, "features_start_rgb": 2.0, "tensorflow": 3.0})) == 10.0


def test_training_is_timed_at_the_configured_step_when_it_fits_the_budget():
    from pipeline.plan.calibration import STEP_BUDGET, step_shape
    small = 2 * 6  # sample-frames of the small calibration step
    assert step_shape(8, 16, 0.03) == (8, 16)  # projected 0.32 s
    assert step_shape(8, 16, STEP_BUDGET * small / 128) == (8, 16)  # exactly the budget
    assert step_shape(8, 16, STEP_BUDGET * small / 128 * 1.01) == (2, 6)
    assert step_shape(128, 30, 0.03) == (2, 6)  # paper sizes on a CPU: 9.6 s projected
    assert step_shape(1, 16, 0.001) == (2, 6)  # one snippet: no per-frame cost to tell apart


def test_only_the_curves_replicate_pays_for_the_per_epoch_held_out_scoring():
    import dataclasses
    import pandas as pd
    from pipeline.plan import counts
    from pipeline.plan.graph import Node
    from pipeline.plan.settings import Settings
    from pipeline.scoring import CURVES_REPLICATE
    table = pd.DataFrame({"split_number": 1, "video_id": [f"v{i}" for i in range(5)],
                          "role": ["train"] * 3 + ["test"] * 2, "n_frames": 20,
                          "tubes": False})
    settings = Settings(shards=1, replicates=2, gpus=0, frame_size=(32, 24),
                        flow_backend="opencv", flow_processes=1, image_size=64,
                        feature_dtype="float16", finetune_epochs=0, finetune_frames=1,
                        convnet_batch=4, epochs=3, batch_size=2, snippet=4, segments=2,
                        length=8, hidden=8, dense=8, synthetic_size=(32, 24))
    params = dict(dataset="synthetic", split=1, stream="rgb", arch="videolstm",
                  attention="motion", replicate=CURVES_REPLICATE)
    node = Node("t", "TrainModel", params, (), True)
    drawn = counts.count(node, {"synthetic": table}, settings).work
    other = counts.count(dataclasses.replace(node, params={**params, "replicate": 1}),
                         {"synthetic": table}, settings).work
    assert drawn["forward_videolstm-motion"] == 3 * 2 * 4
    assert drawn["forward_call_videolstm-motion"] == 3
    assert other == {key: units for key, units in drawn.items() if not key.startswith("forward")}
    assert other["train_videolstm-motion"] == 3 * 3 * 4
