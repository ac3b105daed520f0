"""Frames per second of predict (pipeline.predict.predict_video: decoding, flow, both convnets,
the recurrent model, boxes, ranking, tube and overlay) on a generated clip, two ways:

before: frames at the video's own size and OpenCV's default TV-L1 (5 scales, 5 warps), as
        predict computed flow before model folders described themselves;
after:  a model folder whose model.json records the CPU profile's settings (luigi.cfg: frames
        resized to [video] frame_size, TV-L1 with [flow] nscales / warps / bound), applied with
        Predictor.from_folder exactly as `python -m pipeline.predict VIDEO --model DIR` does.

Everything else is the same in both: a small random VideoLSTM (motion attention, rgb stream, the
CPU profile's [model] sizes), random VGG-16 convnets at [convnet] image_size, the profile's
precision and feature dtype; both predictors are warmed up on 3 other frames first. The time
spent in TV-L1 is printed beside the total.
Usage: .venv/bin/python bench/bench_predict.py [--frames 100 --width 640 --height 272]
"""

import argparse
import configparser
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import keras  # noqa: E402

from bench_flow import synthetic_clip  # noqa: E402
from models import vgg16  # noqa: E402
from models.registry import build_model  # noqa: E402
from pipeline import cache, config, model_files, predict  # noqa: E402
from pipeline.flow.tvl1 import TVL1Params  # noqa: E402
from pipeline.predict import ConvnetRef, ModelRecord, Predictor, predict_video  # noqa: E402
from pipeline.training.source import ModelInputs  # noqa: E402
from pipeline.video import parse_frame_size, write_video  # noqa: E402

CLASSES = [f"class{i}" for i in range(8)]


def cpu_profile() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(REPO / "luigi.cfg")
    return parser


def make_model_folder(root: Path, profile: configparser.ConfigParser) -> Path:
    """Random convnets and a random VideoLSTM in a model folder whose model.json records the
    CPU profile's extraction settings."""
    image_size = profile.getint("convnet", "image_size")
    convnets = {}
    for stream in ("rgb", "flow"):
        folder = root / "cache" / f"convnet-{stream}-bench"
        folder.mkdir(parents=True)
        network = vgg16.initialise(stream, len(CLASSES), image_size, "none", seed=1)
        network.save(folder / "model.keras")
        convnets[stream] = ConvnetRef(str(folder), cache.array_checksum(network.get_weights()))
    sizes = config.model.from_str_params(dict(profile["model"])).sizes()
    cells = image_size // 32
    keras.utils.set_random_seed(0)
    model = build_model("videolstm", len(CLASSES), (cells, cells, 512), sizes, "motion",
                        (cells, cells, 512))
    folder = root / "model"
    folder.mkdir()
    model.save(folder / "model.keras")
    record = ModelRecord(
        arch="videolstm", attention="motion", stream="rgb", classes=CLASSES,
        inputs=ModelInputs.of("videolstm", "rgb", "motion"), image_size=image_size,
        frame_size=parse_frame_size(profile.get("video", "frame_size")),
        flow=config.flow.from_str_params(dict(profile["flow"])).params(),
        convnets=convnets, precision=profile.get("convnet", "precision"),
        dtype=profile.get("convnet", "dtype"))
    model_files.seal(folder, record.as_json(), {"description": {}})
    return folder


def timed_run(name: str, predictor: Predictor, video: Path, out: Path, n_frames: int) -> float:
    """Run predict_video once; print frames/s and the share of TV-L1."""
    spent = [0.0]
    original = predict.tvl1

    def timed_tvl1(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - start

    predict.tvl1 = timed_tvl1
    try:
        start = time.perf_counter()
        summary = predict_video(video, predictor, out)
        seconds = time.perf_counter() - start
    finally:
        predict.tvl1 = original
    size = ("video's own" if predictor.frame_size is None
            else "x".join(map(str, predictor.frame_size)))
    params = predictor.flow_params
    print(f"{name:6s}: {n_frames / seconds:6.2f} frames/s ({seconds:6.1f} s for {n_frames} "
          f"frames, {summary['frames']} results); frame size {size}, TV-L1 "
          f"{params.nscales} scales / {params.warps} warps: {spent[0]:6.1f} s "
          f"({spent[0] / max(summary['frames'], 1):.3f} s per pair)")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=272)
    args = parser.parse_args()
    profile = cpu_profile()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        video = root / "clip.avi"
        write_video(video, synthetic_clip(args.frames, args.height, args.width))
        model = make_model_folder(root, profile)
        print(f"clip: {args.frames} frames of {args.width}x{args.height}; cores: "
              f"{os.cpu_count()}; profile: luigi.cfg ([video] frame_size = "
              f"{profile.get('video', 'frame_size')}, [flow] nscales = "
              f"{profile.get('flow', 'nscales')}, warps = {profile.get('flow', 'warps')}, "
              f"[convnet] image_size = {profile.get('convnet', 'image_size')}, precision = "
              f"{profile.get('convnet', 'precision')})")
        after = Predictor.from_folder(model)
        record = predict.read_model_record(model)
        before = Predictor(model, record.convnets["rgb"].path, record.convnets["flow"].path,
                           stream="rgb", arch="videolstm", attention="motion",
                           flow_params=TVL1Params(bound=record.flow.bound), frame_size=None,
                           precision=record.precision, dtype=record.dtype,
                           class_names=record.classes)
        warm_up = synthetic_clip(3, args.height, args.width, seed=1)
        for predictor in (before, after):  # trace the networks before timing
            list(predictor.frames(warm_up))
        t_before = timed_run("before", before, video, root / "before", args.frames)
        t_after = timed_run("after", after, video, root / "after", args.frames)
        print(f"speed-up: {t_before / t_after:.1f}x")


if __name__ == "__main__":
    main()
