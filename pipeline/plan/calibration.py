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
CALIBRATION_FRAMES = 9
"""8 flow pairs a video: on the embedded default the plan over-stated TV-L1 by 1.7-1.9x and
VGG-16 by 1.25x with 9 frames, by 2.0-2.3x and 1.9x with 4 (at paper shapes on 2 cores TV-L1
then takes about 30 s of the calibration instead of 20)."""
FINETUNE_IMAGES = 32
FINETUNE_EPOCHS = 5
"""Fine-tuning is timed on 32 images for 1 and 5 epochs: one epoch more of 8 images, the first
way, came out between 0.4x and 2x of the actual cost over seven calibrations."""
TRAIN_BATCH = 2
TRAIN_LENGTH = 6
STEP_BUDGET = 1.0
"""Training and forward passes are timed at [train] batch_size x snippet when a step there is
projected (from one of TRAIN_BATCH x TRAIN_LENGTH) to take at most STEP_BUDGET seconds, else
at TRAIN_BATCH x TRAIN_LENGTH: a step's cost per sample-frame falls as the batch and snippet
grow (3x from 2 x 6 to 8 x 16 on the embedded default), so the smaller shape is an upper
bound."""


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
    """ComputeFlow's runner and shard writer on the videos, after a 2-frame clip that starts
    the runner's processes (and compiles TensorFlow's batch): that start is paid once per task."""
    from pipeline import cache, config
    from pipeline.flow import batches, tvl1
    from pipeline.plan.sizes import flow_pair_bytes
    from pipeline.progress import Progress
    from pipeline.video import iter_frames, write_video
    params = config.flow().params()
    path = folder / "flow.h5"
    start = folder / "start.avi"
    write_video(start, np.stack(list(itertools.islice(iter_frames(videos["path"].iloc[0]), 2))))
    with batches.flow_runner(params, settings.flow_processes, settings.frame_size,
                             config.flow().batch_pairs) as pool:
        _, took = _timed(lambda: list(pool.map_videos([start], params)))
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
    pays once, in its own process; none on a machine without GPUs, where task processes fork
    from a scheduling process that imported it (``devices.import_tensorflow_before_tasks``)."""
    from pipeline import devices
    if not devices.visible_gpus():
        return 0.0
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
        def make():
            network = vgg16.initialise(stream, classes, settings.image_size, "none", 0)
            network.save(folder / f"vgg16-{stream}.keras")
            return network

        model, made = _timed(make)
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
            _finetune(settings, model, videos, classes, made, rates)
        rates.ratios["features"] = stored_bytes(path) / (frames * feature_frame_bytes(settings))


def _finetune(settings: Settings, model, videos: pd.DataFrame, classes: int, made: float,
              rates: Rates) -> None:
    """FinetuneConvNet's fine-tuning of the rgb network on FINETUNE_IMAGES of the videos'
    frames (repeated) for one and for FINETUNE_EPOCHS epochs: the difference is an epoch's cost
    per image, over enough steps to stand out of the compiling either call does; what one epoch
    adds beyond it is compiling and the frozen layers' pass per image, taken as the feature
    extractor's rate (an upper bound). The task's start adds ``made``: the network's
    initialisation and save."""
    from pipeline import config, features
    from pipeline.video import iter_frames
    section = config.convnet()
    frames = np.stack([frame for path in videos["path"]
                       for frame in iter_frames(path, settings.frame_size)])
    images = np.resize(frames, (FINETUNE_IMAGES, *frames.shape[1:]))
    labels = np.arange(len(images)) % classes

    def finetune(epochs: int) -> float:
        return _timed(lambda: features.finetune(
            model, images, labels, "rgb", settings.image_size, section.finetune_from, epochs,
            section.learning_rate, min(settings.convnet_batch, len(images)), 0))[1]

    once, more = finetune(1), finetune(FINETUNE_EPOCHS)
    per_epoch = max(more - once, 0.0) / ((FINETUNE_EPOCHS - 1) * len(images))
    rates.seconds["finetune_epoch_images"] = per_epoch
    rates.seconds["finetune_images"] = rates.seconds["features_rgb"]
    rates.seconds["finetune_start"] = made + max(
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


def step_shape(batch_size: int, snippet: int, small_step: float) -> tuple[int, int]:
    """(batch, length) that training and forward passes are timed at: [train] batch_size x
    snippet when a step there, projected from ``small_step`` seconds at TRAIN_BATCH x
    TRAIN_LENGTH, fits STEP_BUDGET (and a batch of 1 and more can be told apart), else the
    small shape."""
    projected = small_step * batch_size * snippet / (TRAIN_BATCH * TRAIN_LENGTH)
    if batch_size >= 2 and projected <= STEP_BUDGET:
        return batch_size, snippet
    return TRAIN_BATCH, TRAIN_LENGTH


def _model(settings: Settings, kind: str, classes: int, folder: Path, rates: Rates) -> None:
    """One kind of model at the configured sizes: TrainModel's compiled model fitted on
    in-memory batches (the snippet loader is not timed), what each epoch adds (its fit call,
    TensorBoard log and checkpoint), and its forward pass per frame and per call (from calls
    of one and of a batch of snippets), at the step shape of STEP_BUDGET; the first step and
    first forward pass, which trace and compile, are timed apart (paid once per task)."""
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

    def arrays(batch_size: int, length: int) -> tuple[dict, dict]:
        batch = {"features": rng.random((batch_size, length, *shape(inputs.layer)), np.float32)}
        if inputs.motion:
            batch["motion"] = rng.random((batch_size, length, *shape(inputs.motion_layer)),
                                         np.float32)
        return batch, {"scores": np.zeros((batch_size, length), np.int64)}

    def step(batch, targets) -> float:
        """Seconds of one training step, after a first one that traces the shape."""
        model.train_on_batch(batch, targets)
        return _timed(lambda: [model.train_on_batch(batch, targets) for _ in range(2)])[1] / 2

    keras.utils.set_random_seed(0)
    model = build_model(arch, classes, shape(inputs.layer), sizes, attention,
                        shape(inputs.motion_layer) if inputs.motion else None)
    compile_model(model, 0.001, 0.9)
    small = arrays(TRAIN_BATCH, TRAIN_LENGTH)

    def epoch(name: str) -> float:
        """One epoch of one small batch through TrainModel's loop (fit with its TensorBoard
        log, the held-out pass left out, the checkpoint)."""
        return _timed(lambda: loop.train(
            model, lambda _: tf.data.Dataset.from_tensors(small), 1,
            loop.Checkpoints(folder / f"{kind}-{name}"), 0, folder / f"{kind}-logs"))[1]

    first, again = epoch("first"), epoch("again")
    logs = folder / f"{kind}-logs"
    rates.log_bytes[kind] = sum(p.stat().st_size for p in logs.rglob("*") if p.is_file()) // 2
    small_step = step(*small)
    rates.seconds[f"train_start_{kind}"] = max(first - again, 0.0)
    rates.seconds[f"epoch_{kind}"] = max(again - small_step, 0.0)
    (batch, targets), seconds = small, small_step
    size, length = step_shape(settings.batch_size, settings.snippet, small_step)
    if (size, length) != (TRAIN_BATCH, TRAIN_LENGTH):
        batch, targets = arrays(size, length)
        seconds = step(batch, targets)
    rates.seconds[f"train_{kind}"] = seconds / (size * length)
    one = {name: array[:1] for name, array in batch.items()}
    _, rates.seconds[f"forward_start_{kind}"] = _timed(lambda: model.predict_on_batch(small[0]))
    model.predict_on_batch(batch)
    model.predict_on_batch(one)
    _, whole = _timed(lambda: model.predict_on_batch(batch))
    _, single = _timed(lambda: model.predict_on_batch(one))
    per_frame = max(whole - single, 0.0) / ((size - 1) * length)
    rates.seconds[f"forward_{kind}"] = per_frame
    rates.seconds[f"forward_call_{kind}"] = max(single - per_frame * length, 0.0)
    rates.parameters[kind] = model.count_params()
    keras.backend.clear_session()
