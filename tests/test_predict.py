"""Streaming prediction on a new video (paper Sec. 4): equal to the batch pipeline, lazy, and
writing ranking, tube and overlay; a model folder that describes itself (model.json), the
one-argument command line, and the frame size shared with ComputeFlow and ExtractFeatures."""

import json
import shutil

import keras
import numpy as np
import pandas as pd
import pytest

from models import vgg16
from models.registry import ModelSizes, build_model
from pipeline import cache, features, localization, model_files, predict
from pipeline.flow.tvl1 import FlowPool, TVL1Params, video_flow, write_flow_shard
from pipeline.predict import (ConvnetRef, ModelRecord, Predictor, main, predict_video,
                              read_model_record)
from pipeline.progress import Progress
from pipeline.report import report
from pipeline.training.source import ModelInputs
from pipeline.video import read_frames, write_video

SIZE, N_CLASSES, N_FRAMES = 64, 3, 6
NAMES = ["Jump", "Run", "Wave"]
SIZES = ModelSizes(hidden=4, attention=6, kernel=3, attention_kernel=1, dense=8,
                   dropout=0.5)
FLOW = TVL1Params(nscales=2, warps=2, outer_iterations=3, inner_iterations=10)
SETTINGS = dict(flow_params=FLOW, theta=200.0, sigma=2.0, frac=0.6)
# Not OpenCV's defaults (5 scales, 5 warps, bound 20): what a model folder records.
RECORDED_FLOW = TVL1Params(nscales=2, warps=3, outer_iterations=3, inner_iterations=10,
                           bound=15.0)
# (arch, stream, attention): motion attention on rgb, appearance attention, a flow-only model.
VARIANTS = [("videolstm", "rgb", "motion"), ("convalstm", "rgb", "appearance"),
            ("lstm", "flow", "appearance")]


def moving_square_video(path):
    rng = np.random.default_rng(0)
    background = rng.integers(0, 120, size=(48, 64, 3), dtype=np.uint8)
    frames = np.repeat(background[None], N_FRAMES, axis=0)
    for t in range(N_FRAMES):
        frames[t, 14:30, 6 + 5 * t:22 + 5 * t] = (230, 200, 40)
    write_video(path, frames)
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    convnets, checksums = {}, {}
    for stream in ("rgb", "flow"):
        convnets[stream] = root / "cache" / f"convnet-{stream}-0123abcd"
        convnets[stream].mkdir(parents=True)
        network = vgg16.initialise(stream, N_CLASSES, SIZE, "none", seed=1)
        network.save(convnets[stream] / "model.keras")
        checksums[stream] = cache.array_checksum(network.get_weights())  # as FinetuneConvNet
    pool5, fc7 = (SIZE // 32, SIZE // 32, 512), (4096,)
    models = {}
    for seed, (arch, stream, attention) in enumerate(VARIANTS):
        keras.utils.set_random_seed(seed)
        motion = pool5 if attention == "motion" else None
        model = build_model(arch, N_CLASSES, fc7 if arch == "lstm" else pool5, SIZES,
                            attention, motion)
        models[arch] = root / f"model-{arch}"
        models[arch].mkdir()
        model.save(models[arch] / "model.keras")
    write_record(models["videolstm"], convnets, checksums, "videolstm", "rgb", "motion")
    return {"root": root, "convnets": convnets, "checksums": checksums, "models": models,
            "video": moving_square_video(root / "clip.avi")}


def record_of(convnets, checksums, arch, stream, attention, frame_size=(64, 48),
              flow=RECORDED_FLOW):
    """The record TrainModel writes for a model of these settings and convnets."""
    inputs = ModelInputs.of(arch, stream, attention)
    streams = sorted({stream} | ({"flow"} if stream == "flow" or inputs.motion else set()))
    return ModelRecord(arch=arch, attention="motion" if inputs.motion else "appearance",
                       stream=stream, classes=NAMES, inputs=inputs, image_size=SIZE,
                       frame_size=frame_size, flow=flow if "flow" in streams else None,
                       convnets={s: ConvnetRef(str(convnets[s]), checksums[s]) for s in streams},
                       precision="float32", dtype="float16")


def write_record(folder, convnets, checksums, arch, stream, attention, **settings):
    """model.json as TrainModel writes it: its description and timings beside the record."""
    record = record_of(convnets, checksums, arch, stream, attention, **settings)
    model_files.seal(folder, record.as_json(), {
        "description": cache.describe("model", {"arch": arch}), "videos": 9, "seconds": 1.0})
    return record


def model_copy(setup, folder, **settings):
    """The VideoLSTM model in another folder, with a record of other settings."""
    folder.mkdir()
    shutil.copy(setup["models"]["videolstm"] / "model.keras", folder / "model.keras")
    return write_record(folder, setup["convnets"], setup["checksums"], "videolstm", "rgb",
                        "motion", **settings)


@pytest.fixture(scope="module")
def predictors(setup):
    """One loaded Predictor per variant, shared: a Predictor keeps no state between videos."""
    return {variant: Predictor(setup["models"][variant[0]], setup["convnets"]["rgb"],
                               setup["convnets"]["flow"], stream=variant[1], arch=variant[0],
                               attention=variant[2], **SETTINGS)
            for variant in VARIANTS}


@pytest.fixture(scope="module")
def videolstm(predictors):
    return predictors[VARIANTS[0]]


@pytest.fixture(scope="module")
def batch_features(setup):
    """pool5 and fc7 per stream, extracted as the cached pipeline does: all frames of the
    decoded video, then the flow of all adjacent pairs."""
    frames = read_frames(setup["video"])
    extract = {s: vgg16.load_extractor(str(setup["convnets"][s] / "model.keras"))
               for s in ("rgb", "flow")}
    return frames, {
        "rgb": features.extract(extract["rgb"], frames, "rgb", SIZE, 1),
        "flow": features.extract(extract["flow"], video_flow(frames, FLOW), "flow", SIZE, 1)}


def batch_reference(setup, batch_features, arch, stream, attention):
    """Scores and attention of the whole video run as one sequence through the saved model."""
    frames, cached = batch_features
    uses_flow = stream == "flow" or attention == "motion"
    length = N_FRAMES - 1 if uses_flow else N_FRAMES
    layer = 1 if arch == "lstm" else 0
    inputs = {"features": cached[stream][layer][None, :length].astype(np.float32)}
    if attention == "motion":
        inputs["motion"] = cached["flow"][0][None, :length].astype(np.float32)
    model = keras.models.load_model(setup["models"][arch] / "model.keras")
    outputs = model.predict_on_batch(inputs)
    attention_maps = outputs.get("attention")
    return (frames, np.asarray(outputs["scores"])[0],
            None if attention_maps is None else np.asarray(attention_maps)[0])


@pytest.mark.parametrize("arch, stream, attention", VARIANTS)
def test_streaming_equals_the_batch_pipeline(setup, predictors, batch_features, arch, stream,
                                             attention):
    frames, scores, attention_maps = batch_reference(setup, batch_features, arch, stream,
                                                     attention)
    results = list(predictors[arch, stream, attention].frames(iter(frames)))
    assert [r.index for r in results] == list(range(len(scores)))
    np.testing.assert_allclose(np.stack([r.scores for r in results]), scores, atol=1e-5)
    boxes = np.stack([r.box for r in results])
    if attention_maps is None:
        assert all(r.attention is None for r in results)
        assert np.isnan(boxes).all()
        return
    np.testing.assert_allclose(np.stack([r.attention for r in results]), attention_maps,
                               atol=1e-5)
    expected = localization.localize(attention_maps, frames.shape[1:3], SETTINGS["theta"],
                                     SETTINGS["sigma"], SETTINGS["frac"], smooth=False)
    np.testing.assert_array_equal(boxes, expected)
    assert np.isfinite(boxes).all()


class ScriptedStepper:
    """Stands in for the model: uniform scores and the given attention maps, frame by frame."""

    def __init__(self, maps):
        self.maps = iter(maps)

    def initial_states(self, batch):
        return []

    def step(self, inputs_t, states):
        return np.full((1, N_CLASSES), 1 / N_CLASSES), next(self.maps)[None], states


def test_boxes_chain_to_the_previous_box_frame_by_frame(setup, predictors, monkeypatch):
    # 4x4 maps on 48x64 frames. Frame 0: a large top-left and a small bottom-right region
    # (the larger mass wins); frame 1: the bottom-right region is now the larger one, but the
    # top-left one overlaps the previous box (Eq. 17); frame 2: nothing salient (the box is
    # kept); frame 3: one region elsewhere.
    maps = np.zeros((5, 4, 4), np.float32)
    maps[0, :2, :2], maps[0, 3, 3] = 1.0, 1.0
    maps[1, 0, :2], maps[1, 2:, 2:] = 1.0, 1.0
    maps[3, 0, 3] = 1.0
    maps[4, 1:3, 1:3] = 1.0
    predictor = predictors[VARIANTS[0]]
    monkeypatch.setattr(predictor, "stepper", ScriptedStepper(maps))
    monkeypatch.setattr(predictor, "sigma", 0.0)
    frames = read_frames(setup["video"])
    boxes = np.stack([r.box for r in predictor.frames(frames)])
    expected = localization.localize(maps, frames.shape[1:3], predictor.theta, 0.0, 1.0,
                                     smooth=False)
    np.testing.assert_array_equal(boxes, expected)
    first = localization.candidate_boxes(localization.saliency_map(maps[1], (48, 64), 0.0),
                                         predictor.theta)[0]
    assert not np.array_equal(boxes[1], first)
    np.testing.assert_array_equal(boxes[2], boxes[1])


def counting(frames, k, consumed):
    for frame in frames[:k]:
        consumed.append(frame)
        yield frame
    raise RuntimeError("camera unplugged")


@pytest.mark.parametrize("variant, ahead", [(VARIANTS[0], 1), (VARIANTS[1], 0)])
def test_frames_are_processed_as_they_arrive(setup, predictors, variant, ahead):
    frames, k, consumed = read_frames(setup["video"]), 4, []
    stream = predictors[variant].frames(counting(frames, k, consumed))
    first = next(stream)
    assert first.index == 0 and len(consumed) == 1 + ahead
    indices = [first.index]
    with pytest.raises(RuntimeError, match="camera unplugged"):
        for result in stream:
            indices.append(result.index)
    assert indices == list(range(k - ahead))


def test_predict_video_writes_ranking_tube_and_overlay(setup, videolstm, tmp_path):
    names = ["jump", "run", "wave"]
    summary = predict_video(setup["video"], videolstm, tmp_path, names)
    results = list(videolstm.frames(read_frames(setup["video"])))
    n = len(results)
    assert n == N_FRAMES - 1 and summary["frames"] == n

    ranking = pd.read_csv(tmp_path / "ranking.csv")
    assert list(ranking.columns) == ["class", "score"] and sorted(ranking["class"]) == names
    assert np.all(np.diff(ranking["score"]) <= 0)
    mean = np.mean([r.scores for r in results], axis=0)
    np.testing.assert_allclose(ranking.set_index("class").loc[names, "score"], mean, atol=1e-9)
    assert summary["top_class"] == names[int(np.argmax(mean))]
    assert summary["score"] == pytest.approx(mean.max())

    tube = pd.read_csv(tmp_path / "tube.csv")
    assert list(tube["frame"]) == list(range(n))
    raw = np.stack([r.box for r in results])
    np.testing.assert_allclose(tube[["x1", "y1", "x2", "y2"]].to_numpy(), raw)
    smooth = tube[["smooth_x1", "smooth_y1", "smooth_x2", "smooth_y2"]].to_numpy()
    np.testing.assert_allclose(smooth, localization.smooth_boxes(raw, SETTINGS["frac"], (48, 64)))
    assert np.all((smooth >= 0) & (smooth <= [64, 48, 64, 48]))  # the 48 x 64 clip

    try:
        import pipeline.report.figures  # noqa: F401
    except ImportError:
        pytest.skip("pipeline.report.figures (overlay_frame) is not there yet")
    overlay = read_frames(tmp_path / "overlay.avi")
    assert overlay.shape == (n, 48, 64, 3)
    assert not np.array_equal(overlay, read_frames(setup["video"])[:n])


def test_predict_video_checks_the_class_count(setup, videolstm, tmp_path):
    with pytest.raises(ValueError, match="2 class names for a model of 3"):
        predict_video(setup["video"], videolstm, tmp_path, ["a", "b"])


def test_predictor_refuses_a_model_of_another_kind(setup):
    with pytest.raises(ValueError, match="model-videolstm.*motion attention"):
        Predictor(setup["models"]["videolstm"], setup["convnets"]["rgb"], stream="rgb",
                  arch="convalstm", attention="appearance")


def test_predictor_names_the_missing_convnet(setup):
    with pytest.raises(ValueError, match="flow convnet"):
        Predictor(setup["models"]["videolstm"], setup["convnets"]["rgb"], stream="rgb",
                  arch="videolstm")


def test_a_model_folder_round_trips_its_description(setup, tmp_path):
    for arch, stream, attention in VARIANTS:
        record = record_of(setup["convnets"], setup["checksums"], arch, stream, attention)
        folder = tmp_path / arch
        folder.mkdir()
        shutil.copy(setup["models"][arch] / "model.keras", folder / "model.keras")
        model_files.seal(folder, record.as_json(), {"description": {}})
        assert read_model_record(folder) == record
        assert read_model_record(folder / "model.keras") == record
        assert ModelRecord.from_json(json.loads(json.dumps(record.as_json()))) == record
    written = json.loads((setup["models"]["videolstm"] / "model.json").read_text())
    assert set(predict.RECORD_KEYS) <= set(written)
    assert written["frame_size"] == "64x48" and written["flow"] == RECORDED_FLOW.as_dict()
    assert written["convnets"]["flow"] == {"path": str(setup["convnets"]["flow"]),
                                           "weights_sha256": setup["checksums"]["flow"]}
    assert written["inputs"] == {"features": "pool5", "motion": "pool5"}
    assert written["classes"] == NAMES


def test_predictor_from_a_model_folder_has_its_settings(setup):
    predictor = Predictor.from_folder(setup["models"]["videolstm"], theta=150.0)
    assert predictor.flow_params == RECORDED_FLOW and predictor.frame_size == (64, 48)
    assert predictor.class_names == NAMES and predictor.theta == 150.0
    assert (predictor.inputs.stream, predictor.inputs.motion) == ("rgb", True)
    assert predictor.dtype == "float16" and set(predictor.extractors) == {"rgb", "flow"}


def test_a_model_folder_made_before_model_json_is_refused(setup, tmp_path):
    folder = tmp_path / "old-model"
    folder.mkdir()
    shutil.copy(setup["models"]["convalstm"] / "model.keras", folder / "model.keras")
    with pytest.raises(FileNotFoundError, match=r"old-model/model.json does not exist.*retrain"):
        Predictor.from_folder(folder)
    report.write_json(folder / "model.json", {"description": {}, "videos": 9, "seconds": 1.0})
    with pytest.raises(ValueError, match=r"old-model/model.keras carries no record .*retrain"):
        Predictor.from_folder(folder)


def edit_json(path, edit):
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def flip_middle(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("edit, file, expected", [
    (lambda folder: edit_json(folder / "model.json", lambda d: d["classes"].reverse()),
     "model.json", r"classes = \["),
    (lambda folder: edit_json(folder / "model.json", lambda d: d.update(frame_size="320x240")),
     "model.json", r'frame_size = "320x240" is not the "64x48"'),
    (lambda folder: edit_json(folder / "model.json", lambda d: d.pop("dtype")),
     "model.json", r"dtype = \"<missing>\" .*edited or damaged"),
    (lambda folder: flip_middle(folder / "model.keras"), "model.keras", r"sha256 \w+ is not"),
    (lambda folder: (folder / "model.keras").write_bytes((folder / "model.keras").read_bytes()
                                                         [:4096]),
     "model.keras", r"damaged, not a readable .keras archive"),
])
def test_a_model_folder_is_checked_as_a_whole(setup, tmp_path, edit, file, expected):
    """Reordered class names, another frame size, a key lost from model.json, a byte changed
    or the end lost in model.keras: an error naming the file, not other labels or scores (nor
    "File not found" for a damaged model.keras, nor an old model for a damaged model.json)."""
    folder = tmp_path / "model"
    model_copy(setup, folder)
    assert Predictor.from_folder(folder).class_names == NAMES
    edit(folder)
    with pytest.raises((ValueError, OSError), match=rf"model/{file}\b.*{expected}"):
        Predictor.from_folder(folder)


def test_predict_says_when_a_damaged_frame_cut_the_video_short(setup, tmp_path, capsys):
    from test_video import damage_frame
    video = tmp_path / "damaged.avi"
    shutil.copy(setup["video"], video)
    damage_frame(video, 3)
    main([str(video), "--model", str(setup["models"]["videolstm"]), "--out",
          str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert err.strip() == (f"python -m pipeline.predict: warning: {video}: decoded 3 of the "
                           f"{N_FRAMES} frames its header counts (decoding stops at a damaged "
                           "frame); the results cover only the frames before it")
    assert "over 2 frames" in out


def test_predict_refuses_a_convnet_with_other_weights(setup, tmp_path, capsys):
    elsewhere = tmp_path / "elsewhere"
    for stream, folder in setup["convnets"].items():
        shutil.copytree(folder, elsewhere / folder.name)
    other = vgg16.initialise("flow", N_CLASSES, SIZE, "none", seed=2)
    other.save(elsewhere / setup["convnets"]["flow"].name / "model.keras")
    with pytest.raises(SystemExit) as exit_info:
        main([str(setup["video"]), "--model", str(setup["models"]["videolstm"]),
              "--out", str(tmp_path / "out"), "--convnets", str(elsewhere)])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert cache.array_checksum(other.get_weights()) in err
    assert setup["checksums"]["flow"] in err and "flow convnet" in err
    assert not (tmp_path / "out").exists()


def test_predict_finds_moved_convnets_by_name(setup, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    for folder in setup["convnets"].values():
        shutil.copytree(folder, elsewhere / folder.name)
    predictor = Predictor.from_folder(setup["models"]["videolstm"], elsewhere)
    assert predictor.class_names == NAMES
    with pytest.raises(FileNotFoundError,
                       match="nowhere/convnet-flow-0123abcd: no flow convnet here"):
        Predictor.from_folder(setup["models"]["videolstm"], tmp_path / "nowhere")
    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.copy(setup["models"]["videolstm"] / "model.keras", moved / "model.keras")
    gone = {**setup["convnets"], "rgb": tmp_path / "gone" / "convnet-rgb-0123abcd"}
    record = record_of(gone, setup["checksums"], "videolstm", "rgb", "motion")
    model_files.seal(moved, record.as_json(), {"description": {}})
    with pytest.raises(FileNotFoundError, match="gone/convnet-rgb-0123abcd: the rgb convnet .*"
                                                "--convnets"):
        Predictor.from_folder(moved)


def test_predict_computes_flow_with_the_recorded_settings(setup, monkeypatch):
    asked = []
    original = predict.tvl1

    def recording(previous, current, params, initial_flow=None):
        asked.append(params)
        return original(previous, current, params, initial_flow=initial_flow)

    monkeypatch.setattr(predict, "tvl1", recording)
    predictor = Predictor.from_folder(setup["models"]["videolstm"])
    results = list(predictor.frames(read_frames(setup["video"])))
    assert len(asked) == len(results) == N_FRAMES - 1
    assert all(params == RECORDED_FLOW for params in asked)
    assert RECORDED_FLOW != TVL1Params()


def inputs_seen(predictor, monkeypatch):
    """The images the predictor's convnets are given, by stream."""
    seen = {"rgb": [], "flow": []}
    original = predictor._features

    def recording(stream, image):
        seen[stream].append(image)
        return original(stream, image)

    monkeypatch.setattr(predictor, "_features", recording)
    return seen


def test_flow_features_and_predict_agree_on_the_frame_size(setup, tmp_path, monkeypatch):
    # A 64x48 video, a model trained at frame size 32x24: predict's flow is ComputeFlow's
    # (same frames, resize, TV-L1 settings and bound), its rgb input ExtractFeatures' frames.
    model_copy(setup, tmp_path / "model-32x24", frame_size=(32, 24))
    predictor = Predictor.from_folder(tmp_path / "model-32x24")
    seen = inputs_seen(predictor, monkeypatch)
    results = list(predictor.frames(read_frames(setup["video"])))

    videos = pd.DataFrame({"video_id": ["clip"], "path": [str(setup["video"])],
                           "n_frames": [N_FRAMES], "fingerprint": ["f"]})
    description = cache.describe("flow", {"tvl1": RECORDED_FLOW.as_dict(),
                                          "frame_size": "32x24"})
    with FlowPool(processes=1, frame_size=(32, 24)) as pool, Progress(1, "flow") as progress:
        write_flow_shard(tmp_path / "flow.h5", description, videos, RECORDED_FLOW, pool,
                         strict=True, progress=progress)
    with cache.Shard(tmp_path / "flow.h5", description) as shard:
        stored = shard.read("clip", "flow")
    assert stored.shape == (N_FRAMES - 1, 24, 32, 2)
    np.testing.assert_array_equal(np.stack(seen["flow"]), stored)
    rgb = read_frames(setup["video"], (32, 24))  # what ExtractFeatures reads
    np.testing.assert_array_equal(np.stack(seen["rgb"]), rgb[:len(results)])
    boxes = np.stack([r.box for r in results])
    assert np.isfinite(boxes).all()
    assert np.all((boxes >= 0) & (boxes <= [64, 48, 64, 48]))


def test_boxes_are_in_the_original_frame_at_any_frame_size(setup, tmp_path, monkeypatch):
    # The attention of a model reading 32x24 frames is upsampled to the 64x48 video, as
    # Localize does: a salient bottom-right cell is a box reaching the video's corner.
    model_copy(setup, tmp_path / "model-32x24", frame_size=(32, 24))
    predictor = Predictor.from_folder(tmp_path / "model-32x24", theta=200.0, sigma=0.0,
                                      frac=0.6)
    maps = np.zeros((N_FRAMES, 2, 2), np.float32)
    maps[:, 1, 1] = 1.0
    monkeypatch.setattr(predictor, "stepper", ScriptedStepper(maps))
    predict_video(setup["video"], predictor, tmp_path / "out")
    tube = pd.read_csv(tmp_path / "out" / "tube.csv")
    expected = localization.localize(maps[:N_FRAMES - 1], (48, 64), 200.0, 0.0, 0.6,
                                     smooth=False)
    np.testing.assert_allclose(tube[["x1", "y1", "x2", "y2"]].to_numpy(), expected)
    assert tuple(expected[0][2:]) == (64, 48) and expected[0][0] > 32  # not a 32x24 box
    smooth = tube[["smooth_x1", "smooth_y1", "smooth_x2", "smooth_y2"]].to_numpy()
    assert np.all((smooth >= 0) & (smooth <= [64, 48, 64, 48]))
    assert read_frames(tmp_path / "out" / "overlay.avi").shape[1:3] == (48, 64)


def test_the_command_line_asks_only_what_model_json_cannot_answer():
    options = {o for action in predict._parser()._actions for o in action.option_strings}
    assert options == {"-h", "--help", "--model", "--out", "--convnets", "--theta", "--sigma",
                       "--frac", "--fps"}


def test_main_runs_end_to_end(setup, tmp_path, capsys):
    out = tmp_path / "out"
    main([str(setup["video"]), "--model", str(setup["models"]["videolstm"]), "--out", str(out),
          "--theta", "200"])
    ranking = pd.read_csv(out / "ranking.csv")
    printed = capsys.readouterr().out
    assert sorted(ranking["class"]) == sorted(NAMES)
    for rank, name in enumerate(ranking["class"], 1):
        assert f"{rank}. {name}" in printed
    assert len(pd.read_csv(out / "tube.csv")) == N_FRAMES - 1
    assert (out / "overlay.avi").is_file()


@pytest.mark.parametrize("missing", ["video", "model"])
def test_main_names_a_missing_file_and_fails(setup, tmp_path, capsys, missing):
    paths = {"video": str(setup["video"]), "model": str(setup["models"]["videolstm"])}
    paths[missing] = str(tmp_path / f"no-such-{missing}")
    with pytest.raises(SystemExit) as exit_info:
        main([paths["video"], "--model", paths["model"], "--out", str(tmp_path / "out")])
    assert exit_info.value.code not in (0, None)
    err = capsys.readouterr().err
    assert f"no-such-{missing}" in err and "Traceback" not in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("fps", ["0", "-25", "nan"])
def test_main_refuses_a_bad_fps_before_writing_anything(setup, tmp_path, capsys, fps):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main([str(setup["video"]), "--model", str(setup["models"]["videolstm"]),
              "--out", str(out), "--fps", fps])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert f"--fps must be a frame rate > 0, got {float(fps)}" in err and len(err.splitlines()) == 1
    assert not out.exists()
