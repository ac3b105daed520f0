"""Streaming prediction on a new video (paper Sec. 4): equal to the batch pipeline, lazy, and
writing ranking, tube and overlay."""

import keras
import numpy as np
import pandas as pd
import pytest

from models import vgg16
from models.registry import ModelSizes, build_model
from pipeline import features, localization
from pipeline.flow import TVL1Params, video_flow
from pipeline.predict import Predictor, main, predict_video, read_class_names
from pipeline.video import read_frames, write_video

SIZE, N_CLASSES, N_FRAMES = 64, 3, 6
SIZES = ModelSizes(hidden=4, kernel=3, attention_kernel=1, dense=8, dropout=0.5)
FLOW = TVL1Params(nscales=2, warps=2, outer_iterations=3, inner_iterations=10)
SETTINGS = dict(flow_params=FLOW, theta=200.0, sigma=2.0, frac=0.6)
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
    convnets = {}
    for stream in ("rgb", "flow"):
        convnets[stream] = root / f"convnet-{stream}"
        convnets[stream].mkdir()
        vgg16.initialise(stream, N_CLASSES, SIZE, "none", seed=1).save(
            convnets[stream] / "model.keras")
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
    return {"root": root, "convnets": convnets, "models": models,
            "video": moving_square_video(root / "clip.avi")}


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
        import pipeline.figures  # noqa: F401
    except ImportError:
        pytest.skip("pipeline.figures (overlay_frame) is not there yet")
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


def test_class_names_from_class_index_or_plain_list(tmp_path):
    (tmp_path / "classInd.txt").write_text("2 Run\n1 Jump\n3 Wave\n")
    (tmp_path / "names.txt").write_text("Jump\n\nRun\nWave\n")
    assert read_class_names(tmp_path / "classInd.txt") == ["Jump", "Run", "Wave"]
    assert read_class_names(tmp_path / "names.txt") == ["Jump", "Run", "Wave"]
    with pytest.raises(FileNotFoundError, match="nowhere.txt"):
        read_class_names(tmp_path / "nowhere.txt")


def test_main_runs_end_to_end(setup, tmp_path, capsys):
    (tmp_path / "classInd.txt").write_text("1 Jump\n2 Run\n3 Wave\n")
    out = tmp_path / "out"
    main([str(setup["video"]), "--model", str(setup["models"]["videolstm"]),
          "--rgb-convnet", str(setup["convnets"]["rgb"]),
          "--flow-convnet", str(setup["convnets"]["flow"]), "--arch", "videolstm",
          "--stream", "rgb", "--attention", "motion", "--classes",
          str(tmp_path / "classInd.txt"), "--out", str(out), "--theta", "200"])
    ranking = pd.read_csv(out / "ranking.csv")
    assert ranking["class"].iloc[0] in capsys.readouterr().out
    assert len(pd.read_csv(out / "tube.csv")) == N_FRAMES - 1


@pytest.mark.parametrize("missing", ["video", "model"])
def test_main_names_a_missing_file_and_fails(setup, tmp_path, capsys, missing):
    (tmp_path / "classes.txt").write_text("Jump\nRun\nWave\n")
    paths = {"video": str(setup["video"]), "model": str(setup["models"]["videolstm"])}
    paths[missing] = str(tmp_path / f"no-such-{missing}")
    with pytest.raises(SystemExit) as exit_info:
        main([paths["video"], "--model", paths["model"],
              "--rgb-convnet", str(setup["convnets"]["rgb"]),
              "--flow-convnet", str(setup["convnets"]["flow"]), "--arch", "videolstm",
              "--classes", str(tmp_path / "classes.txt"), "--out", str(tmp_path / "out")])
    assert exit_info.value.code not in (0, None)
    err = capsys.readouterr().err
    assert f"no-such-{missing}" in err and "Traceback" not in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("fps", ["0", "-25", "nan"])
def test_main_refuses_a_bad_fps_before_writing_anything(setup, tmp_path, capsys, fps):
    (tmp_path / "classes.txt").write_text("Jump\nRun\nWave\n")
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main([str(setup["video"]), "--model", str(setup["models"]["videolstm"]),
              "--rgb-convnet", str(setup["convnets"]["rgb"]),
              "--flow-convnet", str(setup["convnets"]["flow"]), "--arch", "videolstm",
              "--attention", "motion", "--classes", str(tmp_path / "classes.txt"),
              "--out", str(out), "--fps", fps])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert f"--fps must be a frame rate > 0, got {float(fps)}" in err and len(err.splitlines()) == 1
    assert not out.exists()
