"""A short calibration on this machine: each stage's real code on a few synthetic items at the
configured shapes, timed per unit of work (pipeline.plan.counts' work keys), with the ratios the
codecs reached and each model's parameter count."""

from __future__ import annotations

import itertools
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.plan.settings import Settings

CALIBRATION_VIDEOS = 2
CALIBRATION_FRAMES = 4
TRAIN_BATCH = 2
TRAIN_LENGTH = 6
"""Training is timed on batches of 2 snippets of 6 frames and scaled per sample-frame (a
recurrent step's cost grows linearly with both)."""


@dataclass
class Rates:
    """Seconds per unit of work (counts' work keys), codec ratios and model parameters."""

    seconds: dict[str, float] = field(default_factory=dict)
    ratios: dict[str, float] = field(default_factory=dict)
    parameters: dict[str, int] = field(default_factory=dict)
    log_bytes: dict[str, int] = field(default_factory=dict)
    """TensorBoard bytes a model kind's training writes per epoch."""
    where: dict[str, str] = field(default_factory=dict)


def _timed(work):
    start = time.perf_counter()
    result = work()
    return result, time.perf_counter() - start


def calibrate(settings: Settings, kinds: list[str], classes: int, say=print) -> Rates:
    """Time every stage's code on synthetic items; ``kinds``: the model kinds
    (counts.model_kind) of the graph."""
    rates = Rates()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        videos = _videos(settings, folder, rates)
        say(f"calibrating: videos ({rates.seconds['generate_frames']:.3f} s/frame)")
        flow_path = _flow(settings, videos, folder, rates)
        say(f"calibrating: TV-L1 ({rates.seconds['flow_pairs']:.2f} s/pair)")
        rates.seconds["tensorflow"] = _tensorflow_start()
        _features(settings, videos, flow_path, folder, classes, rates)
        say(f"calibrating: VGG-16 ({rates.seconds['features_rgb']:.3f} s/rgb frame)")
        for kind in kinds:
            _model(settings, kind, classes, folder, rates)
            say(f"calibrating: {kind} ({rates.seconds[f'train_{kind}']:.4f} s/sample-frame)")
    rates.where = {key: "this machine" for key in rates.seconds}
    return rates


def _videos(settings: Settings, folder: Path, rates: Rates) -> pd.DataFrame:
    """Synthetic videos at frame_size, written as the generator writes them; their generation,
    header probe and decode timed per frame."""
    from pipeline.datasets.synthetic import SyntheticSpec, render_video
    from pipeline.video import count_frames, probe_frame_count, write_video
    width, height = settings.frame_size
    spec = SyntheticSpec(classes=2, frames=CALIBRATION_FRAMES, width=width + width % 2,
                         height=height + height % 2)
    rows, seconds = [], 0.0
    for index in range(CALIBRATION_VIDEOS):
        path = folder / f"v{index}.avi"
        _, took = _timed(lambda: write_video(path, render_video(
            spec, index % 2, np.random.default_rng(index))[0]))
        seconds += took
        rows.append({"video_id": f"v{index}", "path": str(path), "label_index": index % 2,
                     "fingerprint": "calibration", "n_frames": CALIBRATION_FRAMES})
    frames = CALIBRATION_VIDEOS * CALIBRATION_FRAMES
    rates.seconds["generate_frames"] = seconds / frames
    rates.ratios["video"] = (sum(Path(r["path"]).stat().st_size for r in rows)
                             / (frames * width * height * 3))
    _, took = _timed(lambda: [probe_frame_count(r["path"]) for r in rows])
    rates.seconds["probe_videos"] = took / len(rows)
    _, took = _timed(lambda: [count_frames(r["path"]) for r in rows])
    rates.seconds["decode_frames"] = took / frames
    return pd.DataFrame(rows)


def _flow(settings: Settings, videos: pd.DataFrame, folder: Path, rates: Rates) -> Path:
    """ComputeFlow's runner and shard writer on the videos, after one video that starts the
    runner's processes (and compiles TensorFlow's batch): that start is paid once per task."""
    from pipeline import cache, config
    from pipeline.flow import batches, tvl1
    from pipeline.plan.sizes import flow_pair_bytes
    from pipeline.progress import Progress
    params = config.flow().params()
    path = folder / "flow.h5"
    with batches.flow_runner(params, settings.flow_processes, settings.frame_size,
                             config.flow().batch_pairs) as pool:
        _, took = _timed(lambda: list(pool.map_videos([videos["path"].iloc[0]], params)))
        rates.seconds["flow_start"] = took
        with Progress(len(videos), "calibration: flow") as bar:
            _, took = _timed(lambda: tvl1.write_flow_shard(path, cache.describe("flow", {}), videos,
                                                           params, pool, False, bar))
    pairs = len(videos) * (CALIBRATION_FRAMES - 1)
    rates.seconds["flow_pairs"] = took / pairs
    rates.ratios["flow"] = stored_bytes(path) / (pairs * flow_pair_bytes(settings))
    return path


def stored_bytes(path: Path) -> int:
    """Bytes a shard's arrays take on disk (its chunks after the codec), without the file's
    metadata, which a few calibration videos would make look large."""
    import h5py
    sizes = []
    with h5py.File(path) as shard:
        shard.visititems(lambda _, item: sizes.append(item.id.get_storage_size())
                         if isinstance(item, h5py.Dataset) else None)
    return sum(sizes)


def _tensorflow_start() -> float:
    """Seconds a fresh process takes to import Keras and TensorFlow: what every device task
    pays once, in its own process."""
    _, took = _timed(lambda: subprocess.run([sys.executable, "-c", "import keras"],
                                            check=True, capture_output=True))
    return took


def _features(settings: Settings, videos: pd.DataFrame, flow_path: Path, folder: Path,
              classes: int, rates: Rates) -> None:
    """ExtractFeatures' shard writer per stream after one warm-up batch; on the rgb stream's
    shard the snippet loader's start and FinetuneConvNet's fine-tuning are timed too."""
    from models import vgg16
    from pipeline import cache, config, features
    from pipeline.plan.sizes import feature_frame_bytes
    from pipeline.progress import Progress
    from pipeline.video import iter_frames
    section = config.convnet()
    size = settings.frame_size
    for stream in ("rgb", "flow"):
        model = vgg16.initialise(stream, classes, settings.image_size, "none", 0)
        model.save(folder / f"vgg16-{stream}.keras")
        extractor = vgg16.load_extractor(str(folder / f"vgg16-{stream}.keras"),
                                         section.precision)
        with cache.Shard(flow_path) as flow:
            def frames_of(row):
                if stream == "rgb":
                    return iter_frames(row.path, size)
                return flow.iter_frames(row.video_id, "flow")

            first = videos.iloc[0]
            _, took = _timed(lambda: features.extract(
                extractor, itertools.islice(frames_of(first), 1), stream, settings.image_size,
                1, settings.feature_dtype))
            rates.seconds[f"features_start_{stream}"] = took
            path = folder / f"features-{stream}.h5"
            with Progress(len(videos), f"calibration: {stream} features") as bar:
                _, took = _timed(lambda: features.write_feature_shard(
                    path, cache.describe("features", {}), videos, frames_of, extractor, stream,
                    settings.image_size, settings.convnet_batch, settings.feature_dtype, False,
                    bar))
        frames = len(videos) * (CALIBRATION_FRAMES - (stream == "flow"))
        rates.seconds[f"features_{stream}"] = took / frames
        if stream == "rgb":
            rates.seconds["loader_start"] = _loader_start(path, videos)
            _finetune(settings, model, videos, classes, rates)
        rates.ratios["features"] = stored_bytes(path) / (frames * feature_frame_bytes(settings))


def _finetune(settings: Settings, model, videos: pd.DataFrame, classes: int,
              rates: Rates) -> None:
    """FinetuneConvNet's fine-tuning of the rgb network on the videos' frames for one and for
    two epochs: the difference is an epoch's cost per image; what one epoch adds beyond it is
    the task's start (compiling) and the frozen layers' pass per image, taken as the feature
    extractor's rate (an upper bound)."""
    from pipeline import config, features
    from pipeline.video import iter_frames
    section = config.convnet()
    images = np.stack([f for path in videos["path"]
                       for f in iter_frames(path, settings.frame_size)])
    labels = np.arange(len(images)) % classes

    def finetune(epochs: int) -> float:
        return _timed(lambda: features.finetune(
            model, images, labels, "rgb", settings.image_size, section.finetune_from, epochs,
            section.learning_rate, min(settings.convnet_batch, len(images)), 0))[1]

    once, twice = finetune(1), finetune(2)
    per_epoch = max(twice - once, 0.0) / len(images)
    rates.seconds["finetune_epoch_images"] = per_epoch
    rates.seconds["finetune_images"] = rates.seconds["features_rgb"]
    rates.seconds["finetune_start"] = max(
        once - len(images) * (per_epoch + rates.seconds["features_rgb"]), 0.0)


def _loader_start(path: Path, videos: pd.DataFrame) -> float:
    """Seconds TrainModel's SnippetLoader takes to start its [train] readers and give a first
    batch (once per task)."""
    from pipeline import cache, config
    from pipeline.training.loader import SnippetLoader
    from pipeline.training.source import FeatureSource, ModelInputs
    ids, labels = list(videos["video_id"]), list(videos["label_index"])
    with FeatureSource({"rgb": {str(path): cache.describe("features", {})}},
                       ModelInputs("rgb", "fc7", False)) as source:
        def first_batch():
            with SnippetLoader(source, len(ids), 2, config.train().readers) as loader:
                next(iter(loader.dataset(ids, labels, [0, 0])))
        return _timed(first_batch)[1]


def _model(settings: Settings, kind: str, classes: int, folder: Path, rates: Rates) -> None:
    """One kind of model at the configured sizes: TrainModel's compiled model fitted on
    in-memory batches (the snippet loader is not timed), what each epoch adds (its fit call,
    TensorBoard log and checkpoint), and its forward pass per frame and per
    call (from calls of one and of TRAIN_BATCH snippets); the first step and first forward
    pass, which trace and compile, are timed apart (paid once per task)."""
    import keras
    import tensorflow as tf
    from models.registry import build_model
    from pipeline import config
    from pipeline.training import loop
    from pipeline.training.loop import compile_model
    from pipeline.training.source import ModelInputs
    arch, attention = kind.split("-")
    sizes = config.model().sizes()
    inputs = ModelInputs.of(arch, "rgb", attention, sizes.alstm_motion_input)
    grid = settings.grid

    def shape(layer):
        return (4096,) if layer == "fc7" else (grid, grid, 512)

    rng = np.random.default_rng(0)
    batch = {"features": rng.random((TRAIN_BATCH, TRAIN_LENGTH, *shape(inputs.layer)),
                                    np.float32)}
    if inputs.motion:
        batch["motion"] = rng.random((TRAIN_BATCH, TRAIN_LENGTH, *shape(inputs.motion_layer)),
                                     np.float32)
    targets = {"scores": np.zeros((TRAIN_BATCH, TRAIN_LENGTH), np.int64)}
    keras.utils.set_random_seed(0)
    model = build_model(arch, classes, shape(inputs.layer), sizes, attention,
                        shape(inputs.motion_layer) if inputs.motion else None)
    compile_model(model, 0.001, 0.9)

    def epoch(name: str) -> float:
        """One epoch of one batch through TrainModel's loop (fit with its TensorBoard log,
        the held-out pass left out, the checkpoint)."""
        return _timed(lambda: loop.train(
            model, lambda _: tf.data.Dataset.from_tensors((batch, targets)), 1,
            loop.Checkpoints(folder / f"{kind}-{name}"), 0, folder / f"{kind}-logs"))[1]

    first, again = epoch("first"), epoch("again")
    logs = folder / f"{kind}-logs"
    rates.log_bytes[kind] = sum(p.stat().st_size for p in logs.rglob("*") if p.is_file()) // 2
    model.train_on_batch(batch, targets)  # traced for arrays apart from fit's datasets
    _, took = _timed(lambda: [model.train_on_batch(batch, targets) for _ in range(2)])
    rates.seconds[f"train_{kind}"] = took / (2 * TRAIN_BATCH * TRAIN_LENGTH)
    rates.seconds[f"train_start_{kind}"] = max(first - again, 0.0)
    rates.seconds[f"epoch_{kind}"] = max(again - took / 2, 0.0)
    one = {name: array[:1] for name, array in batch.items()}
    _, rates.seconds[f"forward_start_{kind}"] = _timed(lambda: model.predict_on_batch(batch))
    model.predict_on_batch(one)
    _, whole = _timed(lambda: model.predict_on_batch(batch))
    _, single = _timed(lambda: model.predict_on_batch(one))
    per_frame = max(whole - single, 0.0) / ((TRAIN_BATCH - 1) * TRAIN_LENGTH)
    rates.seconds[f"forward_{kind}"] = per_frame
    rates.seconds[f"forward_call_{kind}"] = max(single - per_frame * TRAIN_LENGTH, 0.0)
    rates.parameters[kind] = model.count_params()
    keras.backend.clear_session()
