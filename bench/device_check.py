"""The one command to run on a GPU machine: what one device does for each stage that runs on it,
at the paper profile's sizes (configs/paper.cfg), in one process on the first GPU TensorFlow
sees (within 8 minutes on one H100/H200-class GPU). Prints a table and writes JSON with the
device's name, the driver and TensorFlow (and its CUDA and cuDNN) versions:

(a) TensorFlow TV-L1 (pipeline.flow.tvl1_tensorflow, OpenCV's default settings) pairs/s at
    340x256 in batches of 32, 64 and 128 pairs (the XLA compile of each batch shape first, not
    timed; bench/bench_flow.py's clip), and its agreement with OpenCV on 8 pairs of that clip
    (bench/flow_agreement.py: mean and max end-point error, truth known);
(b) VGG-16 frames/s at 224x224, pool5 + fc7 as ExtractFeatures runs it, rgb and flow stream,
    with the profile's [convnet] precision and batch size (random weights: same speed);
(c) training steps/s of ConvALSTM and VideoLSTM at the profile's sizes (hidden 512, 7x7x512,
    30 frames, batch 128) on a batch held in memory, then the same steps fed by TrainModel's
    input path (SnippetLoader readers over lzf feature shards, tf.data): the fraction of step
    time spent waiting on input is 1 - (in-memory step time / loader step time);
(d) the peak device memory of each (tf.config.experimental.get_memory_info; n/a on a CPU).

--quick runs the same code at tiny sizes on a CPU in under a minute (a test runs it).

    .venv/bin/python bench/device_check.py [--quick] [--json device_check.json]
"""

from __future__ import annotations

import argparse
import configparser
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import numpy as np  # noqa: E402

from bench_flow import SHIFT, compile_seconds, gray, synthetic_clip, timed  # noqa: E402
from flow_agreement import compare, opencv_flows, opencv_perturbed  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Sizes:
    """What each measurement runs on: the paper profile's sizes, or tiny ones (--quick)."""

    width: int
    height: int
    flow_batches: tuple[int, ...]
    agreement_pairs: int
    vgg_frames: int
    grid: int
    length: int
    train_batch: int
    train_steps: int
    loader_videos: int
    loader_repeat: int
    model: dict
    image_size: int | None = None
    vgg_batch: int | None = None


PAPER = Sizes(width=340, height=256, flow_batches=(32, 64, 128), agreement_pairs=8,
              vgg_frames=512, grid=7, length=30, train_batch=128, train_steps=10,
              loader_videos=128, loader_repeat=8, model={})
QUICK = Sizes(width=64, height=48, flow_batches=(2,), agreement_pairs=2, vgg_frames=8,
              grid=2, length=6, train_batch=4, train_steps=3, loader_videos=8,
              loader_repeat=2, model={"hidden": "4", "attention": "8", "dense": "8"},
              image_size=32, vgg_batch=4)


def paper_profile() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(REPO / "configs" / "paper.cfg")
    return parser


@dataclasses.dataclass
class Row:
    """One figure of the table (peak_mib: the device's peak memory while measuring it)."""

    part: str
    what: str
    value: float
    unit: str
    peak_mib: float | None = None


class DeviceMemory:
    """Peak memory of the first GPU between reset() and peak(); None on a CPU."""

    def __init__(self):
        import tensorflow as tf
        self.tf = tf
        self.gpu = "GPU:0" if tf.config.list_physical_devices("GPU") else None

    def reset(self) -> None:
        if self.gpu:
            self.tf.config.experimental.reset_memory_stats(self.gpu)

    def peak(self) -> float | None:
        if not self.gpu:
            return None
        return self.tf.config.experimental.get_memory_info(self.gpu)["peak"] / 2**20


def environment() -> dict:
    """Device name, driver, TensorFlow, CUDA and cuDNN versions."""
    import tensorflow as tf
    gpus = tf.config.list_physical_devices("GPU")
    name = (tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name)
            if gpus else f"CPU ({os.cpu_count()} cores, no GPU visible)")
    try:
        driver = subprocess.run(["nvidia-smi", "--query-gpu=driver_version",
                                 "--format=csv,noheader"], capture_output=True, text=True,
                                timeout=30).stdout.split("\n")[0].strip() or "n/a"
    except (OSError, subprocess.TimeoutExpired):
        driver = "n/a"
    build = tf.sysconfig.get_build_info()
    return {"device": name, "driver": driver, "tensorflow": tf.__version__,
            "cuda": build.get("cuda_version", "n/a"), "cudnn": build.get("cudnn_version", "n/a")}


def flow_rows(sizes: Sizes, memory: DeviceMemory) -> list[Row]:
    """(a): pairs/s per batch size, then agreement with OpenCV on the first pairs."""
    from pipeline import config
    from pipeline.flow import tvl1_tensorflow
    params = dataclasses.replace(
        config.flow.from_str_params(dict(paper_profile()["flow"])).params(), backend="tensorflow")
    pairs = max(sizes.flow_batches)
    frames = gray(synthetic_clip(pairs + 1, sizes.height, sizes.width))
    prev, next_ = frames[:-1], frames[1:]
    rows, flows = [], None
    for batch in sizes.flow_batches:
        compile_seconds(params, pairs, sizes.height, sizes.width, batch)
        memory.reset()
        flows, seconds = timed(lambda: tvl1_tensorflow.solve_pairs(prev, next_, params,
                                                                   batch_pairs=batch))
        rows.append(Row("a", f"TV-L1 TensorFlow {sizes.width}x{sizes.height}, batch {batch}",
                        pairs / seconds, "pairs/s", memory.peak()))
    n = sizes.agreement_pairs
    opencv = opencv_flows(prev[:n], next_[:n], params)
    agreement = compare("bench texture shift", opencv, flows[:n],
                        opencv_perturbed(prev[:n], next_[:n], params), params.bound,
                        np.broadcast_to(np.float32(SHIFT), opencv.shape))
    rows += [Row("a", f"TV-L1 TensorFlow vs OpenCV, {n} pairs: mean end-point error",
                 agreement.mean, "px"),
             Row("a", f"TV-L1 TensorFlow vs OpenCV, {n} pairs: max end-point error",
                 agreement.max, "px"),
             Row("a", "TV-L1 error against the true motion, TensorFlow - OpenCV",
                 agreement.truth_tensorflow - agreement.truth_opencv, "px")]
    return rows


def vgg_rows(sizes: Sizes, memory: DeviceMemory, folder: Path) -> list[Row]:
    """(b): frames/s of pool5 + fc7 per stream, after one warm-up batch."""
    import keras
    from models import vgg16
    from pipeline import features
    section = paper_profile()["convnet"]
    image_size = sizes.image_size or section.getint("image_size")
    batch = sizes.vgg_batch or section.getint("batch_size")
    rng = np.random.default_rng(0)
    rows = []
    for stream, channels in (("rgb", 3), ("flow", 2)):
        path = folder / f"vgg16-{stream}.keras"
        vgg16.initialise(stream, 101, image_size, "none", seed=0).save(path)
        extractor = vgg16.load_extractor(str(path), section["precision"])
        frames = rng.integers(0, 255, (sizes.vgg_frames, sizes.height, sizes.width, channels),
                              dtype=np.uint8)
        features.extract(extractor, iter(frames[:batch]), stream, image_size, batch)
        memory.reset()
        _, seconds = timed(lambda: features.extract(extractor, iter(frames), stream,
                                                    image_size, batch))
        rows.append(Row("b", f"VGG-16 {stream} {image_size}x{image_size} pool5+fc7, batch "
                        f"{batch}, {section['precision']}", sizes.vgg_frames / seconds,
                        "frames/s", memory.peak()))
        keras.backend.clear_session()
    return rows


def feature_shards(sizes: Sizes, folder: Path) -> dict:
    """lzf feature shards (rgb and flow) of loader_videos synthetic videos whose pool5 maps are
    grid x grid x 512, as ExtractFeatures writes them (bench/bench_loader.py)."""
    from bench_loader import synthetic, write_shards
    rng = np.random.default_rng(0)
    frames = sizes.length + 1
    pool = [(synthetic(rng, frames, (sizes.grid, sizes.grid, 512), 0.7),
             synthetic(rng, frames, (4096,), 0.8)) for _ in range(4)]
    shape = argparse.Namespace(videos=sizes.loader_videos, frames=frames)
    return write_shards(folder, "lzf", shape, pool)


def fit_seconds(model, dataset) -> float:
    """Seconds of one Keras fit epoch over ``dataset``, as TrainModel's loop runs it."""
    return timed(lambda: model.fit(dataset, epochs=1, verbose=0, shuffle=False))[1]


def training_rows(sizes: Sizes, memory: DeviceMemory, shards: dict) -> list[Row]:
    """(c) and (d): steps/s on a batch in memory, then the same steps fed by the SnippetLoader,
    for ConvALSTM (appearance attention) and VideoLSTM (motion attention)."""
    import keras
    import tensorflow as tf
    from models.registry import build_model
    from pipeline import config
    from pipeline.training.loader import SnippetLoader
    from pipeline.training.loop import compile_model
    from pipeline.training.source import FeatureSource, ModelInputs, feature_statistics
    model_sizes = config.model.from_str_params(
        {**dict(paper_profile()["model"]), **sizes.model}).sizes()
    rows = []
    for arch, attention in (("convalstm", "appearance"), ("videolstm", "motion")):
        with FeatureSource(shards, ModelInputs.of(arch, "rgb", attention)) as source:
            videos = sorted(source.videos_cached()) * sizes.loader_repeat
            labels = [int(video[1:]) % 8 for video in videos]
            shapes = source.shapes()
            keras.utils.set_random_seed(0)
            model = build_model(arch, 8, shapes["features"], model_sizes, attention,
                                shapes.get("motion"), feature_statistics(source, videos))
            compile_model(model, 0.001, 0.9)
            with SnippetLoader(source, sizes.train_batch, sizes.length) as loader:
                batch = next(iter(loader.dataset(videos[:sizes.train_batch],
                                                 labels[:sizes.train_batch], [0, 0])))
                steps = len(videos) // sizes.train_batch
                in_memory = tf.data.Dataset.from_tensors(batch).repeat(steps)
                fit_seconds(model, in_memory.take(2))  # trace and compile the step
                memory.reset()
                compute = fit_seconds(model, in_memory) / steps
                peak = memory.peak()
                fit_seconds(model, loader.dataset(videos, labels, [0, 1]))  # readers started
                fed = fit_seconds(model, loader.dataset(videos, labels, [0, 2])) / steps
        name = {"convalstm": "ConvALSTM", "videolstm": "VideoLSTM"}[arch]
        grid = f"{sizes.grid}x{sizes.grid}x512"
        rows += [Row("c", f"{name} training, batch {sizes.train_batch} x {sizes.length} x "
                     f"{grid}, hidden {model_sizes.hidden}, in memory", 1 / compute, "steps/s",
                     peak),
                 Row("c", f"{name} training fed by SnippetLoader (lzf shards)", 1 / fed,
                     "steps/s"),
                 Row("c", f"{name}: step time waiting on input", max(0.0, 1 - compute / fed),
                     "fraction")]
        keras.backend.clear_session()
    return rows


def print_table(facts: dict, rows: list[Row]) -> None:
    print(", ".join(f"{key} {value}" for key, value in facts.items()))
    print(f"{'':3}{'measurement':<78}{'value':>10} {'unit':<9}{'peak MiB':>9}")
    for row in rows:
        peak = "n/a" if row.peak_mib is None else f"{row.peak_mib:.0f}"
        print(f"({row.part}) {row.what:<76}{row.value:>10.4g} {row.unit:<9}{peak:>9}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes, on a CPU in under a minute")
    parser.add_argument("--json", type=Path, default=Path("device_check.json"))
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else PAPER
    started = time.perf_counter()
    facts = environment()
    memory = DeviceMemory()
    rows, seconds = [], {}
    with tempfile.TemporaryDirectory() as folder:
        parts = {"a": lambda: flow_rows(sizes, memory),
                 "b": lambda: vgg_rows(sizes, memory, Path(folder)),
                 "c": lambda: training_rows(sizes, memory, feature_shards(sizes, Path(folder)))}
        for part, measure in parts.items():
            found, seconds[part] = timed(measure)
            rows += found
    facts.update(quick=args.quick, seconds={"total": round(time.perf_counter() - started, 1),
                                            **{p: round(s, 1) for p, s in seconds.items()}})
    print_table(facts, rows)
    args.json.write_text(json.dumps({**facts, "rows": [dataclasses.asdict(r) for r in rows]},
                                    indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
