"""Luigi entry points of the VideoLSTM pipeline: thin tasks whose run() calls pipeline/ and models/.

    luigi --module tasks ReproducePaper --local-scheduler
    luigi --module tasks ExtractFeatures --stream flow --shard 0 --local-scheduler

Settings come from luigi.cfg (or LUIGI_CONFIG_PATH); outputs are written to a temporary name
and renamed when complete; cache paths carry a hash of what changes their content.
"""

from __future__ import annotations

import functools
import os
import secrets
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import luigi  # noqa: E402
import luigi.configuration  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

EMBEDDED_CONFIG = Path(__file__).with_name("luigi.cfg")
if EMBEDDED_CONFIG.is_file():
    # The embedded default is read first, so ./luigi.cfg and LUIGI_CONFIG_PATH override it
    # and `luigi --module tasks` runs the same from any folder.
    luigi.configuration.LuigiConfigParser._config_paths.insert(0, str(EMBEDDED_CONFIG))
    luigi.configuration.LuigiConfigParser.reload()

from pipeline import cache, config, identity, locking, report, sharding, termination  # noqa: E402
from pipeline.datasets import SPLITS, read_split, synthetic_locations  # noqa: E402
from pipeline.manifest import (check_split, check_trainable, probe_frames,  # noqa: E402
                               read_manifest, write_manifest)


def _one_line_errors(kind, error, trace):
    """Setting and input errors, and a stop by SIGTERM, end the command with their one-line
    message, no traceback."""
    if isinstance(error, (config.ConfigError, ValueError, FileNotFoundError,
                          termination.Terminated)):
        print(f"error: {error}", file=sys.stderr)
    else:
        sys.__excepthook__(kind, error, trace)


sys.excepthook = _one_line_errors
termination.install()
config.preflight()


class Choice(luigi.ChoiceParameter):
    """A choice whose bad value stops the command with one line naming the parameter: Luigi
    logs a parse error with a traceback, but lets SystemExit through."""

    def __init__(self, name: str, **kwargs):
        super().__init__(**kwargs)
        self.name = name

    def parse(self, x):
        try:
            return super().parse(x)
        except ValueError:
            raise SystemExit(f"error: --{self.name} {x} is not one of "
                             f"{', '.join(sorted(self._choices))}") from None


ARCHITECTURES = ("convnet", "lstm", "alstm", "convlstm", "convalstm", "videolstm")

STREAMS = ("rgb", "flow")


def dataset_locations(dataset: str) -> dict[str, str]:
    """Where a dataset's videos, split files and boxes are, from its config section (the
    synthetic one is generated here on first use: its content decides every path below)."""
    if dataset == "synthetic":
        generator = GenerateSynthetic()
        if not generator.complete():
            generator.run()
        return synthetic_locations(generator.root())
    section = {"ucf101": config.ucf101, "hmdb51": config.hmdb51,
               "thumos13": config.thumos13}[dataset]()
    return {key: getattr(section, key) for key in ("videos", "splits", "annotations")
            if hasattr(section, key)}


_LISTINGS: dict[tuple, tuple[pd.DataFrame, str]] = {}


def _listing(dataset: str, split: int) -> tuple[pd.DataFrame, str]:
    """A split's videos as its files list them (id, path, label, split, boxes), each with its
    content fingerprint, and the split's identity: what every output downstream is made from.
    Read once per process and state of the split files; fingerprints are kept in
    work/<dataset>/fingerprints.json."""
    locations = dataset_locations(dataset)
    key = (dataset, split, _files_state(locations), str(config.paths().folder("work").resolve()))
    if key not in _LISTINGS:
        table = read_split(dataset, split, locations)
        check_split(table)
        fingerprints = identity.FingerprintCache(
            config.paths().folder("work") / dataset / "fingerprints.json")
        table["fingerprint"] = [fingerprints.get(path) for path in table["path"]]
        fingerprints.save()
        _LISTINGS[key] = table, identity.content_hash(
            table, tuple(c for c in table.columns if c != "path"))
    return _LISTINGS[key]


def listing(dataset: str, split: int) -> pd.DataFrame:
    """A split's videos with their content fingerprints (see _listing)."""
    return _listing(dataset, split)[0]


def _files_state(locations: dict[str, str]) -> tuple:
    """Where a dataset is, and the size and modification time of its split and box files."""
    state = [str(Path(locations["videos"]).resolve())]
    for key in ("splits", "annotations"):
        if key in locations:
            path = Path(locations[key]).resolve()
            for file in sorted(path.iterdir()) if path.is_dir() else [path]:
                stat = file.stat()
                state.append((str(file), stat.st_size, stat.st_mtime_ns))
    return tuple(state)


def split_identity(dataset: str, split: int) -> str:
    """What a split is: its videos' ids, labels, roles, boxes and fingerprints (not where the
    files are, so machines that mount the dataset at other paths share a cache)."""
    return _listing(dataset, split)[1]


def all_videos(dataset: str) -> pd.DataFrame:
    """Every listed video of the dataset's splits once (flow and features ignore splits)."""
    return sharding.union([listing(dataset, split) for split in SPLITS[dataset]])


def _splits(dataset: str) -> tuple[str, ...]:
    """The identities of a dataset's splits: the cache key of what is derived from its videos
    (the hashes below are computed once per content of the splits, not at every path)."""
    return tuple(split_identity(dataset, split) for split in SPLITS[dataset])


@functools.lru_cache(maxsize=None)
def _training_videos_hash(dataset: str, splits: tuple[str, ...]) -> str:
    """A hash of the training videos' ids, labels and fingerprints (``splits`` is the key)."""
    videos = all_videos(dataset)
    return identity.content_hash(videos[videos["split"] == "train"],
                                 ("video_id", "label_index", "fingerprint"))


@functools.lru_cache(maxsize=None)
def _shard_hashes(dataset: str, splits: tuple[str, ...], shards: int) -> tuple[str, ...]:
    """Each shard's hash of its videos' ids and fingerprints (``splits`` is the key)."""
    return tuple(identity.content_hash(members, ("video_id", "fingerprint"))
                 for members in sharding.partition(all_videos(dataset), shards))


def shard_content(dataset: str, shard: int) -> str:
    """A hash of one shard's videos' ids and fingerprints."""
    shards = config.run().validate().shards
    if not 0 <= shard < shards:
        raise ValueError(f"shard must be in [0, {shards}), got {shard}")
    return _shard_hashes(dataset, _splits(dataset), shards)[shard]


def shard_file(folder: Path, dataset: str, shard: int) -> Path:
    """A shard's file: its number and the hash of its videos, so that a changed video, or a
    shard of another copy of the dataset, never shares its name."""
    return (folder / f"shard-{shard:03d}-of-{config.run().shards:03d}-"
                     f"{shard_content(dataset, shard)}.h5")


def shard_videos(dataset: str, shard: int) -> dict:
    """The ``videos`` entry of a shard's description (the hash its file name carries)."""
    return {"videos": shard_content(dataset, shard)}


@contextmanager
def written(target: luigi.LocalTarget) -> Iterator[str]:
    """A temporary name beside the target, renamed into place when the body completes and
    removed when it fails, e.g. on a full disk. Unlike Luigi's temporary_path, whose name comes
    from Python's `random` (which tasks seed), it differs between runs, so a rerun of a killed
    task does not collide with the temporary output the kill left behind."""
    tmp = f"{target.path}-luigi-tmp-{secrets.token_hex(5)}"
    Path(tmp).parent.mkdir(parents=True, exist_ok=True)
    try:
        yield tmp
        target.fs.rename_dont_move(tmp, target.path)
    except BaseException:
        if Path(tmp).is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            Path(tmp).unlink(missing_ok=True)
        raise


def timings_log() -> Path:
    return config.paths().folder("work") / "timings.jsonl"


@luigi.Task.event_handler(luigi.Event.PROCESSING_TIME)
def record_processing_time(task: luigi.Task, seconds: float) -> None:
    """Every finished task's wall time, for the report's time per stage."""
    report.append_timing(timings_log(), task.task_family, task.task_id, seconds)


class DatasetTask(luigi.Task):
    """A task of one dataset (default: [run] dataset)."""

    dataset = Choice("dataset", choices=config.DATASETS, default=config.run().dataset)

    def cache_dir(self, stage: str, description: dict) -> Path:
        return (config.paths().folder("cache") / self.dataset
                / f"{stage}-{cache.short_hash(description)}")

    def report_progress(self, percent: float, message: str) -> None:
        self.set_progress_percentage(percent)
        self.set_status_message(message)


class GenerateSynthetic(luigi.Task):
    """The embedded synthetic dataset, in UCF101's layout with THUMOS13-format boxes."""

    def spec(self):
        from pipeline.datasets.synthetic import SyntheticSpec
        section = config.synthetic()
        return SyntheticSpec(classes=section.classes, train_per_class=section.train_per_class,
                             test_per_class=section.test_per_class, frames=section.frames,
                             width=section.width, height=section.height, seed=section.seed,
                             context=section.context)

    def identity(self) -> dict:
        """What the generated videos depend on: the spec and the generator's version."""
        from pipeline.datasets.synthetic import GENERATOR_VERSION
        return {**self.spec().__dict__, "generator_version": GENERATOR_VERSION}

    def root(self) -> Path:
        spec_hash = cache.short_hash(cache.describe("synthetic", self.identity()))
        return config.paths().folder("data") / f"synthetic-{spec_hash}"

    def output(self):
        return luigi.LocalTarget(str(self.root() / "synthetic.json"))

    def run(self):
        from pipeline.datasets import synthetic
        synthetic.generate(self.root(), self.spec())


class Manifest(DatasetTask):
    """One table of every video of a split: id, path, label, split, frame count, GT tubes."""

    split = luigi.IntParameter(default=1)

    def requires(self):
        config.dataset_folders(self.dataset)
        return GenerateSynthetic() if self.dataset == "synthetic" else []

    def output(self):
        from pipeline.manifest import MANIFEST_COLUMNS
        description = cache.describe("manifest", {"columns": list(MANIFEST_COLUMNS)},
                                     {"split": split_identity(self.dataset, self.split)})
        name = f"manifest-split{self.split}-{cache.short_hash(description)}.parquet"
        return luigi.LocalTarget(str(config.paths().folder("work") / self.dataset / name))

    @locking.single_writer
    def run(self):
        table = probe_frames(listing(self.dataset, self.split).drop(columns="fingerprint"),
                             strict=config.run().strict)
        self.output().makedirs()
        with written(self.output()) as tmp:
            write_manifest(table, tmp)


class VideosTask(DatasetTask):
    """A task over the videos of a dataset (all its splits: flow and features ignore splits)."""

    def manifests(self):
        return [Manifest(dataset=self.dataset, split=s) for s in SPLITS[self.dataset]]

    def videos(self):
        return sharding.union([read_manifest(m.output().path) for m in self.manifests()])

    def shard_rows(self, shard: int) -> pd.DataFrame:
        """The manifest rows of one shard's videos, with their content fingerprints."""
        rows = sharding.members(self.videos(), shard, config.run().shards)
        fingerprints = all_videos(self.dataset).set_index("video_id")["fingerprint"]
        return rows.assign(fingerprint=[fingerprints[video] for video in rows["video_id"]])

    def held(self, rows: pd.DataFrame, expected: dict) -> dict:
        """Videos of ``rows`` that complete shards beside this task's output already hold (of
        another sharding): copied rather than computed again."""
        return cache.held_videos(Path(self.output().path).parent, expected,
                                 dict(zip(rows["video_id"], rows["fingerprint"])),
                                 exclude=self.output().path)


def flow_params():
    return config.flow().params()


def flow_description(dataset: str, shard: int | None = None) -> dict:
    """ComputeFlow's settings (its folder's hash); a shard's description also names its videos."""
    from pipeline.video import format_frame_size
    return cache.describe("flow", {"tvl1": flow_params().as_dict(),
                                   "frame_size": format_frame_size(config.video().size())},
                          {} if shard is None else shard_videos(dataset, shard))


class ComputeFlow(VideosTask):
    """TV-L1 flow of one shard of videos, quantized to uint8, into one HDF5 shard  [5.2]."""

    shard = luigi.IntParameter()

    def requires(self):
        return self.manifests()

    def output(self):
        return luigi.LocalTarget(str(shard_file(
            self.cache_dir("flow", flow_description(self.dataset)), self.dataset, self.shard)))

    @locking.single_writer
    def run(self):
        from pipeline import flow, flow_batches
        from pipeline.progress import Progress
        videos = self.shard_rows(self.shard)
        self.output().makedirs()
        with written(self.output()) as tmp, \
                flow_batches.flow_runner(flow_params(), config.flow().worker_count(),
                                         config.video().size(),
                                         config.flow().batch_pairs) as pool, \
                Progress(len(videos), f"flow shard {self.shard}", self.report_progress) as bar:
            description = flow_description(self.dataset, self.shard)
            flow.write_flow_shard(tmp, description, videos, flow_params(), pool,
                                  config.run().strict, bar, self.held(videos, description))


def convnet_description(dataset: str, stream: str) -> dict:
    section = config.convnet().validate()
    params = {key: getattr(section, key) for key in (
        "weights", "image_size", "finetune_from", "finetune_epochs", "finetune_frames",
        "learning_rate", "batch_size")}
    params.update(stream=stream, seed=config.run().seed)
    if stream == "rgb":
        from pipeline.video import format_frame_size
        params["frame_size"] = format_frame_size(config.video().size())
    upstream = {"training videos": _training_videos_hash(dataset, _splits(dataset))}
    if stream == "flow":
        upstream["flow"] = cache.short_hash(flow_description(dataset))
    return cache.describe("convnet", params, upstream)


class FinetuneConvNet(VideosTask):
    """A stream's VGG-16 frame classifier (Table 1's ConvNet), fine-tuned on training frames
    when [convnet] finetune_epochs > 0; otherwise the initial network is kept as is."""

    stream = Choice("stream", choices=STREAMS)

    def requires(self):
        needs = list(self.manifests())
        if self.stream == "flow":
            needs += [ComputeFlow(dataset=self.dataset, shard=s)
                      for s in range(config.run().shards)]
        return needs

    def output(self):
        return luigi.LocalTarget(str(self.cache_dir(
            f"convnet-{self.stream}", convnet_description(self.dataset, self.stream))))

    @locking.single_writer
    def run(self):
        from models import vgg16
        from pipeline import features
        section = config.convnet().validate()
        videos = self.videos()
        model = vgg16.initialise(self.stream, int(videos["label_index"].max()) + 1,
                                 section.image_size, section.weights, config.run().seed)
        losses, skipped = [], {}
        if section.finetune_epochs:
            train = videos[videos["split"] == "train"]
            images, labels, skipped = features.training_frames(
                train, self.frames_at(), section.finetune_frames, section.image_size,
                config.run().strict)
            losses = features.finetune(
                model, images, labels, self.stream, section.image_size, section.finetune_from,
                section.finetune_epochs, section.learning_rate, section.batch_size,
                config.run().seed)
        with written(self.output()) as tmp:
            Path(tmp).mkdir(parents=True)
            model.save(Path(tmp) / "model.keras")
            report.write_json(Path(tmp) / "convnet.json", {
                "description": convnet_description(self.dataset, self.stream),
                "weights_sha256": cache.array_checksum(model.get_weights()),
                "losses": losses, "skipped": skipped})

    def frames_at(self):
        from pipeline import features
        from pipeline.video import read_frames
        if self.stream == "rgb":
            def rgb(row, count):
                frames = read_frames(row.path, config.video().size())
                return frames[features.sample_frame_indices(len(frames), count)]
            return rgb
        shards = {video: (ComputeFlow(dataset=self.dataset, shard=s).output().path,
                          flow_description(self.dataset, s))
                  for s in range(config.run().shards) for video in self.shard_rows(s)["video_id"]}

        def flow(row, count):
            with cache.Shard(*shards[row.video_id]) as shard:
                n = shard.length(row.video_id, "flow")
                return shard.read(row.video_id, "flow", features.sample_frame_indices(n, count))
        return flow


def convnet_record(dataset: str, stream: str) -> dict:
    """The saved convnet's record (weights checksum, losses); raises if it was not made."""
    path = Path(FinetuneConvNet(dataset=dataset, stream=stream).output().path) / "convnet.json"
    return report.read_json(path)


def features_description(dataset: str, stream: str, shard: int | None = None,
                         weights_sha256: str | None = None) -> dict:
    """The feature folder's description (its hash); a stored shard's also names its videos and
    the convnet's weights checksum (known only once the convnet exists)."""
    from pipeline.video import format_frame_size
    section = config.convnet().validate()
    upstream = {"convnet": cache.short_hash(convnet_description(dataset, stream))}
    if shard is not None:
        upstream.update(shard_videos(dataset, shard), weights_sha256=weights_sha256)
    return cache.describe("features", {"stream": stream, "image_size": section.image_size,
                                       "frame_size": format_frame_size(config.video().size()),
                                       "precision": section.precision, "dtype": section.dtype,
                                       "layers": ["pool5", "fc7"]}, upstream)


class ExtractFeatures(VideosTask):
    """pool5 (NxNx512) and fc7 (4096) of every frame of one shard, for one stream  [5.2]."""

    stream = Choice("stream", choices=STREAMS)
    shard = luigi.IntParameter()

    def requires(self):
        needs = {"manifests": self.manifests(),
                 "convnet": FinetuneConvNet(dataset=self.dataset, stream=self.stream)}
        if self.stream == "flow":
            needs["flow"] = ComputeFlow(dataset=self.dataset, shard=self.shard)
        return needs

    def output(self):
        return luigi.LocalTarget(str(shard_file(
            self.cache_dir(f"features-{self.stream}",
                           features_description(self.dataset, self.stream)),
            self.dataset, self.shard)))

    @locking.single_writer
    def run(self):
        from models import vgg16
        from pipeline import features
        from pipeline.progress import Progress
        from pipeline.video import iter_frames
        section = config.convnet().validate()
        record = convnet_record(self.dataset, self.stream)
        description = stored_features_description(self.dataset, self.stream, self.shard)
        videos = self.shard_rows(self.shard)
        extractor = vgg16.load_extractor(
            str(Path(self.input()["convnet"].path) / "model.keras"), section.precision)
        self.output().makedirs()
        with written(self.output()) as tmp, \
                Progress(len(videos), f"{self.stream} features shard {self.shard}",
                         self.report_progress) as bar:
            if self.stream == "rgb":
                features.write_feature_shard(
                    tmp, description, videos,
                    lambda row: iter_frames(row.path, config.video().size()), extractor,
                    self.stream, section.image_size, section.batch_size, section.dtype,
                    config.run().strict, bar, self.held(videos, description))
                return
            with cache.Shard(self.input()["flow"].path,
                             flow_description(self.dataset, self.shard)) as flow:
                features.write_feature_shard(
                    tmp, description, videos, lambda row: flow.iter_frames(row.video_id, "flow"),
                    extractor, self.stream, section.image_size, section.batch_size,
                    section.dtype, config.run().strict, bar, self.held(videos, description))


def feature_shards(dataset: str, stream: str) -> dict[str, dict]:
    """Every feature shard of a stream and what a reader expects of it."""
    weights = convnet_record(dataset, stream)["weights_sha256"]
    return {ExtractFeatures(dataset=dataset, stream=stream, shard=s).output().path:
            features_description(dataset, stream, s, weights)
            for s in range(config.run().shards)}


def stored_features_description(dataset: str, stream: str, shard: int) -> dict:
    """What a reader expects of a feature shard: its videos and the convnet's weights."""
    return features_description(dataset, stream, shard,
                                convnet_record(dataset, stream)["weights_sha256"])


class ModelTask(DatasetTask):
    """A task about one trained model: dataset split, stream, architecture and attention."""

    split = luigi.IntParameter(default=1)
    stream = Choice("stream", choices=STREAMS, default="rgb")
    arch = Choice("arch", choices=ARCHITECTURES, default="videolstm")
    attention = Choice("attention", choices=("appearance", "motion"), default="appearance")

    def inputs(self):
        from pipeline.training import ModelInputs
        return ModelInputs.of(self.arch, self.stream, self.attention,
                              config.model().sizes().alstm_motion_input)

    def model_name(self) -> str:
        attention = "motion" if self.inputs().motion else "appearance"
        return f"{self.arch}-{attention}-{self.stream}-split{self.split}"

    def streams(self) -> list[str]:
        return sorted({self.stream} | ({"flow"} if self.inputs().motion else set()))

    def source(self):
        from pipeline.training import FeatureSource
        return FeatureSource({s: feature_shards(self.dataset, s) for s in self.streams()},
                             self.inputs())

    def manifest(self):
        return read_manifest(Manifest(dataset=self.dataset, split=self.split).output().path)

    def pretraining(self) -> "TrainModel | None":
        """The model this one starts from: an HMDB51 model starts from the UCF101 model of the
        same architecture, stream and attention (paper 5.2); others start from scratch."""
        if self.dataset != "hmdb51":
            return None
        return TrainModel(dataset="ucf101", split=1, stream=self.stream, arch=self.arch,
                          attention=self.attention)

    def model_target(self, folder: str, description: dict, suffix: str = ""):
        """work/<dataset>/<folder>/<model name>-<hash><suffix>."""
        name = f"{self.model_name()}-{cache.short_hash(description)}{suffix}"
        return luigi.LocalTarget(str(config.paths().folder("work") / self.dataset / folder / name))


def model_description(task: ModelTask) -> dict:
    sizes = config.model().sizes()
    section = config.train().validate()
    params = {"arch": task.arch, "stream": task.stream, "motion": task.inputs().motion,
              "split": task.split, "seed": config.run().seed, "sizes": sizes.__dict__,
              "train": {key: getattr(section, key) for key in
                        ("epochs", "batch_size", "snippet", "learning_rate", "rho")}}
    upstream = {s: cache.short_hash(features_description(task.dataset, s))
                for s in task.streams()}
    upstream["split"] = split_identity(task.dataset, task.split)
    if task.pretraining() is not None:
        upstream["init"] = cache.short_hash(model_description(task.pretraining()))
    return cache.describe("model", params, upstream)


class TrainModel(ModelTask):
    """A recurrent model on cached features: random snippets, per-frame cross-entropy, RMSprop,
    a checkpoint per epoch (a killed run resumes)  [3, 5.2]. HMDB51 models start from UCF101's."""

    def requires(self):
        needs = [Manifest(dataset=self.dataset, split=self.split)]
        needs += [ExtractFeatures(dataset=self.dataset, stream=s, shard=i)
                  for s in self.streams() for i in range(config.run().shards)]
        if self.pretraining() is not None:
            needs.append(self.pretraining())
        return needs

    def output(self):
        return self.model_target("models", model_description(self))

    @locking.single_writer
    def run(self):
        import keras
        from models.registry import build_model
        from pipeline import training
        from pipeline.predict import ConvnetRef, ModelRecord
        section = config.train().validate()
        manifest = self.manifest()
        extraction = config.convnet().validate()
        # What predict needs to compute this model's inputs from a video (model.json).
        record = ModelRecord(
            arch=self.arch, attention="motion" if self.inputs().motion else "appearance",
            stream=self.stream, classes=list(manifest.drop_duplicates("label_index")
                                             .sort_values("label_index")["label"]),
            inputs=self.inputs(), image_size=extraction.image_size,
            frame_size=config.video().size(),
            flow=flow_params() if "flow" in self.streams() else None,
            convnets={s: ConvnetRef(str(Path(FinetuneConvNet(
                dataset=self.dataset, stream=s).output().path).resolve()),
                convnet_record(self.dataset, s)["weights_sha256"]) for s in self.streams()},
            precision=extraction.precision, dtype=extraction.dtype)
        with self.source() as source:
            cached = source.videos_cached()
            check_trainable(manifest, cached)
            (videos, labels), (test_videos, test_labels) = (
                (list(part["video_id"]), [int(x) for x in part["label_index"]])
                for part in (manifest[(manifest["split"] == split)
                                      & manifest["video_id"].isin(cached)]
                             for split in ("train", "test")))
            shapes = source.shapes()
            keras.utils.set_random_seed(config.run().seed)
            model = build_model(self.arch, int(manifest["label_index"].max()) + 1,
                                shapes["features"], config.model().sizes(),
                                "motion" if self.inputs().motion else "appearance",
                                shapes.get("motion"),
                                training.feature_statistics(source, videos))
            initialised = {}
            if self.pretraining() is not None:
                start = Path(self.input()[-1].path)
                training.transfer_except_classifier(
                    keras.models.load_model(start / "model.keras"), model)
                initialised = {"initialised_from": start.name,
                               "initial_weights_sha256": training.checksum_except_classifier(
                                   model)}
            training.compile_model(model, section.learning_rate, section.rho)

            def epoch_data(epoch):
                # the batches training_batches gives for this seed, read by [train] readers
                return loader.dataset(videos, labels, [config.run().seed, epoch])

            checkpoints = training.Checkpoints(self.output().path + ".checkpoints")
            with training.SnippetLoader(source, section.batch_size, section.snippet,
                                        section.readers) as loader, \
                    written(self.output()) as tmp:
                Path(tmp).mkdir(parents=True)
                model, history = training.train(
                    model, epoch_data, section.epochs, checkpoints, config.run().seed,
                    Path(tmp) / "logs", lambda epoch, row: self.report_progress(
                        100.0 * (epoch + 1) / section.epochs, f"epoch {epoch + 1}: {row}"),
                    lambda trained: training.held_out_accuracy(
                        trained, source, test_videos, test_labels, section.snippet))
                model.save(Path(tmp) / "model.keras")
                training.write_history(history, Path(tmp) / "history.csv")
                report.write_json(Path(tmp) / "model.json", {
                    "description": model_description(self), "videos": len(videos),
                    "seconds": round(sum(row["seconds"] for row in history), 2),
                    **initialised, **record.as_json()})
        checkpoints.remove()


class Evaluate(ModelTask):
    """Per-video class scores of the test videos (25 segments of 30 frames) and accuracy  [5.2]."""

    def requires(self):
        return TrainModel(dataset=self.dataset, split=self.split, stream=self.stream,
                          arch=self.arch, attention=self.attention)

    def output(self):
        return self.model_target("evaluation", evaluation_description(self))

    @locking.single_writer
    def run(self):
        import keras
        from pipeline import scoring, training
        section = config.evaluate().validate()
        manifest = self.manifest()
        test = manifest[manifest["split"] == "test"]
        model = keras.models.load_model(Path(self.input().path) / "model.keras")
        with self.source() as source:
            cached = source.videos_cached()
            test = test[[v in cached for v in test["video_id"]]]
            scores = np.stack([training.segment_scores(model, source, video, section.segments,
                                                       section.length)
                               for video in test["video_id"]])
        labels = test["label_index"].to_numpy()
        classes = manifest.drop_duplicates("label_index").sort_values("label_index")["label"]
        with written(self.output()) as tmp:
            Path(tmp).mkdir(parents=True)
            scoring.write_scores_frame(scoring.scores_frame(
                list(test["video_id"]), labels, scores, list(classes)), Path(tmp) / "scores.csv")
            report.write_json(Path(tmp) / "metrics.json", {
                "accuracy": scoring.accuracy(scores, labels), "videos": len(test),
                "missing": sorted(set(manifest[manifest["split"] == "test"]["video_id"])
                                  - set(test["video_id"])),
                "chance": 1.0 / len(classes)})


def evaluation_description(task: ModelTask) -> dict:
    section = config.evaluate().validate()
    return cache.describe("evaluation", {"segments": section.segments, "length": section.length},
                          {"model": cache.short_hash(model_description(task))})


class Fuse(DatasetTask):
    """Product fusion of VideoLSTM's rgb and flow scores (Table 3) and, when score files are
    given in [fusion], the weighted product with iDT and object scores (Table 4)."""

    split = luigi.IntParameter(default=1)

    def requires(self):
        return {stream: Evaluate(dataset=self.dataset, split=self.split, stream=stream,
                                 arch="videolstm", attention="motion") for stream in STREAMS}

    def external(self) -> dict[str, str]:
        """The user's iDT / object score files for this dataset and split ({dataset} and
        {split} in a [fusion] path are filled in, so one config serves several datasets)."""
        section = config.fusion()
        return {name: getattr(section, name).format(dataset=self.dataset, split=self.split)
                for name in ("idt", "objects") if getattr(section, name)}

    def output(self):
        section = config.fusion()
        description = cache.describe("fusion", {**{key: getattr(section, key) for key in (
            "videolstm_weight", "idt_weight", "objects_weight")}, **self.external()},
            {stream: Path(target.path).name for stream, target in self.input().items()})
        folder = config.paths().folder("work") / self.dataset / "fusion"
        return luigi.LocalTarget(str(folder / f"split{self.split}-{cache.short_hash(description)}"))

    @locking.single_writer
    def run(self):
        from pipeline import fusion, scoring
        section = config.fusion()
        tables = {stream: scoring.read_scores_frame(Path(target.path) / "scores.csv")
                  for stream, target in self.input().items()}
        rgb = tables["rgb"]
        flow = tables["flow"].set_index("video_id").loc[rgb["video_id"]]
        classes = list(rgb.columns[2:])
        labels = rgb["label"].to_numpy()
        fused = fusion.product_fusion([rgb[classes].to_numpy(), flow[classes].to_numpy()])
        results = {"videolstm": scoring.accuracy(fused, labels)}
        external = self.external()
        for name, path in external.items():
            scores = fusion.read_external_scores(path, list(rgb["video_id"]), classes)
            results[name] = scoring.accuracy(scores, labels)
            results[f"{name}+videolstm"] = scoring.accuracy(fusion.weighted_product_fusion(
                [scores, fused], [getattr(section, f"{name}_weight"), section.videolstm_weight]),
                labels)
        if len(external) == 2:
            parts = [fusion.read_external_scores(p, list(rgb["video_id"]), classes)
                     for p in external.values()]
            weights = [section.idt_weight, section.objects_weight]
            results["idt+objects"] = scoring.accuracy(
                fusion.weighted_product_fusion(parts, weights), labels)
            results["idt+objects+videolstm"] = scoring.accuracy(fusion.weighted_product_fusion(
                parts + [fused], weights + [section.videolstm_weight]), labels)
        with written(self.output()) as tmp:
            Path(tmp).mkdir(parents=True)
            scoring.write_scores_frame(scoring.scores_frame(
                list(rgb["video_id"]), labels, fused, classes), Path(tmp) / "scores.csv")
            report.write_json(Path(tmp) / "metrics.json", {"accuracy": results})


class LocalizationTask(ModelTask):
    """Localization settings: saliency threshold (Eq. 16), Gaussian sigma, LOWESS span."""

    theta = luigi.FloatParameter(default=100.0)
    sigma = luigi.FloatParameter(default=8.0)
    frac = luigi.FloatParameter(default=0.3)


class Localize(LocalizationTask):
    """One tube per test video from the model's attention maps: upsample, Gaussian, threshold,
    8-connected boxes, IoU chaining, LOWESS; the tube's class scores are the frame scores
    averaged  [4]."""

    def requires(self):
        return TrainModel(dataset=self.dataset, split=self.split, stream=self.stream,
                          arch=self.arch, attention=self.attention)

    def output(self):
        return self.model_target("localization", self.description(), ".h5")

    def description(self) -> dict:
        return cache.describe("tubes", {"theta": self.theta, "sigma": self.sigma,
                                        "frac": self.frac, "boxes": "clipped to the frame"},
                              {"model": cache.short_hash(model_description(self))})

    @locking.single_writer
    def run(self):
        import keras
        from pipeline import localization, training
        from pipeline.progress import Progress
        from pipeline.video import iter_frames
        manifest = self.manifest()
        model = keras.models.load_model(Path(self.input().path) / "model.keras")
        self.output().makedirs()
        with self.source() as source, written(self.output()) as tmp:
            test = manifest[(manifest["split"] == "test") & (manifest["tubes"] != "")]
            test = test[[v in source.videos_cached() for v in test["video_id"]]]
            with Progress(len(test), f"localize {self.model_name()}",
                          self.report_progress) as bar:
                localization.write_tube_shard(
                    tmp, self.description(), test,
                    lambda video: training.whole_video(model, source, video),
                    lambda row: next(iter_frames(row.path)).shape[:2],
                    self.theta, self.sigma, self.frac, bar)


class MotionSaliencyTubes(DatasetTask):
    """The non-learned baseline beside Fig. 4: one tube per test video from the flow stream's
    pool5 energy (pipeline.saliency) through the same box procedure as Localize, with
    VideoLSTM's tube class scores, so only the map that boxes are drawn from differs."""

    split = luigi.IntParameter(default=1)
    theta = luigi.FloatParameter(default=100.0)
    sigma = luigi.FloatParameter(default=8.0)
    frac = luigi.FloatParameter(default=0.3)

    def requires(self):
        return {"scores": Localize(dataset=self.dataset, split=self.split, stream="rgb",
                                   arch="videolstm", attention="motion", theta=self.theta,
                                   sigma=self.sigma, frac=self.frac),
                "flow": [ExtractFeatures(dataset=self.dataset, stream="flow", shard=s)
                         for s in range(config.run().shards)]}

    def description(self) -> dict:
        return cache.describe("tubes", {"theta": self.theta, "sigma": self.sigma,
                                        "frac": self.frac, "boxes": "clipped to the frame",
                                        "attention": "flow pool5 energy above the frame's lowest"},
                              {"flow": cache.short_hash(features_description(self.dataset,
                                                                             "flow")),
                               "scores": cache.short_hash(self.requires()["scores"]
                                                          .description())})

    def output(self):
        name = f"motion-saliency-split{self.split}-{cache.short_hash(self.description())}.h5"
        return luigi.LocalTarget(str(config.paths().folder("work") / self.dataset
                                     / "localization" / name))

    @locking.single_writer
    def run(self):
        from pipeline import localization, saliency
        from pipeline.progress import Progress
        from pipeline.training import FeatureSource, ModelInputs
        from pipeline.video import iter_frames
        source = FeatureSource({"flow": feature_shards(self.dataset, "flow")},
                               ModelInputs("flow", "pool5", False))
        with source, cache.Shard(self.input()["scores"].path) as scored, \
                written(self.output()) as tmp:
            manifest = read_manifest(Manifest(dataset=self.dataset, split=self.split)
                                     .output().path)
            test = manifest[manifest["video_id"].isin(scored.videos)]
            with Progress(len(test), f"motion saliency {self.dataset}",
                          self.report_progress) as bar:
                localization.write_tube_shard(
                    tmp, self.description(), test,
                    lambda video: (scored.read(video, "scores")[None], saliency.motion_attention(
                        source.frames(video, np.arange(source.length(video)))["features"])),
                    lambda row: next(iter_frames(row.path)).shape[:2],
                    self.theta, self.sigma, self.frac, bar)


LOCALIZED = {"VideoLSTM": ("videolstm", "motion"), "ALSTM": ("alstm", "appearance")}
"""The two attention models of Fig. 4a: ours, and Sharma et al.'s ALSTM (appearance)."""
BASELINE = "Motion saliency"
"""The non-learned baseline printed beside them (MotionSaliencyTubes)."""
IOU_THRESHOLDS = (0.05, 0.1, 0.125, 0.2, 0.3, 0.4, 0.5)
"""Video mAP thresholds: Fig. 4b's range, with 0.125 where it compares with Yu et al."""
RECALL_THRESHOLDS = tuple(np.round(np.arange(0.05, 0.80, 0.05), 2))


class EvaluateLocalization(LocalizationTask):
    """Video mAP at IoU thresholds and recall vs IoU, with and without smoothing, for VideoLSTM
    and ALSTM (Fig. 4)  [5.4]."""

    def requires(self):
        tubes = {name: Localize(dataset=self.dataset, split=self.split, stream="rgb", arch=arch,
                                attention=attention, theta=self.theta, sigma=self.sigma,
                                frac=self.frac)
                 for name, (arch, attention) in LOCALIZED.items()}
        tubes[BASELINE] = MotionSaliencyTubes(dataset=self.dataset, split=self.split,
                                              theta=self.theta, sigma=self.sigma, frac=self.frac)
        return tubes

    def output(self):
        description = cache.describe("localization-evaluation", {"ap": "voc-all-point",
            "iou": list(IOU_THRESHOLDS), "recall": list(RECALL_THRESHOLDS)},
            {name: cache.short_hash(task.description()) for name, task in self.requires().items()})
        folder = config.paths().folder("work") / self.dataset / "localization"
        return luigi.LocalTarget(str(folder / f"evaluation-split{self.split}-"
                                      f"{cache.short_hash(description)}"))

    @locking.single_writer
    def run(self):
        from pipeline import localization_eval
        truth = localization_eval.ground_truth(self.manifest())
        results = {name: localization_eval.evaluate(target.path, truth, IOU_THRESHOLDS,
                                                    RECALL_THRESHOLDS)
                   for name, target in self.input().items()}
        with written(self.output()) as tmp:
            Path(tmp).mkdir(parents=True)
            localization_eval.write_tables(results, IOU_THRESHOLDS, RECALL_THRESHOLDS, tmp)


CLASSIFICATION = ("synthetic", "ucf101", "hmdb51")
LOCALIZATION = ("synthetic", "thumos13")
TABLE1 = ("convnet", "lstm", "alstm", "convlstm", "convalstm")
TABLE2 = {("appearance", "alstm"): ("alstm", "appearance"),
          ("appearance", "convalstm"): ("convalstm", "appearance"),
          ("motion", "alstm"): ("alstm", "motion"),
          ("motion", "convalstm"): ("videolstm", "motion")}
"""Table 2's cells and the model behind each: the motion-attention ConvALSTM is VideoLSTM."""


class ReproducePaper(luigi.Task):
    """Everything for the configured datasets: Tables 1-4 and Fig. 4 (our numbers beside the
    paper's), Fig. 3-style attention strips, training curves, time per stage, skipped videos."""

    datasets = luigi.ListParameter(default=[config.run().dataset])

    def evaluations(self, dataset: str) -> dict:
        cells = {("table1", stream, arch): (arch, stream, "appearance")
                 for stream in STREAMS for arch in TABLE1}
        cells.update({("table2", attention, name): (arch, "rgb", model_attention)
                      for (attention, name), (arch, model_attention) in TABLE2.items()})
        cells.update({("table3", stream, "videolstm"): ("videolstm", stream, "motion")
                      for stream in STREAMS})
        return {(split, *cell): Evaluate(dataset=dataset, split=split, stream=stream, arch=arch,
                                         attention=attention)
                for split in SPLITS[dataset] for cell, (arch, stream, attention) in cells.items()}

    def requires(self):
        needs = {}
        for dataset in self.datasets:
            config.dataset_folders(dataset)
            if dataset in CLASSIFICATION:
                needs[("evaluate", dataset)] = self.evaluations(dataset)
                needs[("fuse", dataset)] = [Fuse(dataset=dataset, split=s)
                                            for s in SPLITS[dataset]]
            if dataset in LOCALIZATION:
                needs[("localize", dataset)] = EvaluateLocalization(dataset=dataset, split=1,
                                                                    stream="rgb")
        return needs

    def output(self):
        folder = config.paths().folder("reports") / config.run().profile
        return luigi.LocalTarget(str(folder / "report.md"))

    @locking.single_writer
    def run(self):
        from pipeline import claims, evidence, figures
        folder = Path(self.output().path).parent
        folder.mkdir(parents=True, exist_ok=True)
        results, chance, localization, shown, skipped = {}, {}, {}, {}, {}
        verdicts, readings = {}, {}
        missing4 = None
        for dataset in self.datasets:
            skipped.update(skipped_videos(dataset))
            measurements = {}
            if dataset in CLASSIFICATION:
                results[dataset], chance[dataset], missing4, measurements = \
                    self.classification(dataset)
                shown[f"training curves ({dataset})"] = figures.training_curves(
                    training_histories(self.requires()[("evaluate", dataset)]),
                    folder / f"training_{dataset}.png").name
            if dataset in LOCALIZATION:
                localization[dataset], strip, tubes = self.localization(dataset, folder)
                shown.update(strip)
                measurements.update(tubes)
            if dataset == "synthetic":
                from pipeline.datasets.synthetic import READING_THE_CLAIMS
                readings[dataset] = READING_THE_CLAIMS
            verdicts[dataset] = claims.evaluate_claims(
                measurements, evidence.map_at,
                self.streaming_difference(dataset) if dataset == self.datasets[0] else None)
            claims.claims_table(verdicts[dataset]).to_csv(folder / f"claims_{dataset}.csv",
                                                          index=False)
        tables = report.classification_tables(results)
        for key, table in tables.items():
            table.to_csv(folder / f"{key}.csv", index=False)
        for dataset, frames in localization.items():
            for name, frame in frames.items():
                frame.to_csv(folder / f"fig4_{name}_{dataset}.csv", index=False)
        sections = {dataset: claims.claims_markdown(found) + (
            f"\n{readings[dataset]}\n" if dataset in readings else "")
            for dataset, found in verdicts.items()}
        text = report.paper_report(config.run().profile, tables, chance, localization, shown,
                                   report.stage_times(timings_log()), skipped, missing4,
                                   generated=time.strftime("%Y-%m-%d %H:%M:%S"),
                                   splits={d: SPLITS[d] for d in results},
                                   claims=sections)
        with written(self.output()) as tmp:
            Path(tmp).write_text(text)

    def classification(self, dataset: str):
        """Every cell's accuracy (the mean over the dataset's splits) with a 95% Wilson interval
        over its pooled test videos, Table 4, and the per-video correctness of each cell, for
        the claims. Every cell is measured on the test videos all cells share (a video one
        stream skipped leaves every cell), so the tables compare like with like."""
        from pipeline import evidence
        correct: dict = {}
        for (split, table, row, column), task in self.requires()[("evaluate", dataset)].items():
            path = Path(task.output().path)
            correct.setdefault(claim_key(table, row, column), []).append(
                evidence.correct_per_video(path / "scores.csv").rename(
                    lambda video, split=split: f"split{split}/{video}"))
            chance = report.read_json(path / "metrics.json")["chance"]
        fused = []
        for split, task in zip(SPLITS[dataset], self.requires()[("fuse", dataset)]):
            path = Path(task.output().path)
            fused.append(report.read_json(path / "metrics.json")["accuracy"])
            correct.setdefault(claim_key("table3", "fused"), []).append(
                evidence.correct_per_video(path / "scores.csv").rename(
                    lambda video, split=split: f"split{split}/{video}"))
        series = {key: pd.concat(parts) for key, parts in correct.items()}
        videos = evidence.common_videos(series)
        result = {"table1": {}, "table2": {}, "table3": {}, "table4": {}}
        for key, pooled in series.items():
            table, *cell = key.split("/")
            pooled = pooled.loc[videos]
            per_split = pooled.groupby(pooled.index.str.split("/").str[0]).mean()
            estimate = report.Accuracy(float(per_split.mean()),
                                       *evidence.wilson_interval(int(pooled.sum()), len(pooled)),
                                       len(pooled))
            if len(cell) == 1:
                result[table][cell[0]] = estimate
            else:
                result[table].setdefault(cell[0], {})[cell[1]] = estimate
        names = {"idt": "iDT(FV)", "idt+videolstm": "iDT(FV)+VideoLSTM",
                 "objects": "Objects", "objects+videolstm": "Objects+VideoLSTM",
                 "idt+objects": "iDT(FV)+Objects",
                 "idt+objects+videolstm": "iDT(FV)+Objects+VideoLSTM"}
        for key, name in names.items():
            if key in fused[0]:
                result["table4"][name] = float(np.mean([f[key] for f in fused]))
        missing = None if result["table4"] else (
            "Not computed: iDT and object scores cannot be computed here. Supply them as CSV "
            "files (header `video_id,<class>,...`, one row per test video, non-negative "
            "scores; see pipeline/fusion.py) in `[fusion] idt` and `[fusion] objects` (a path "
            "may hold `{dataset}` and `{split}`), and rerun ReproducePaper.")
        return result, chance, missing, {key: s.loc[videos].to_numpy(bool)
                                         for key, s in series.items()}

    def localization(self, dataset: str, folder: Path):
        """Fig. 4 tables with 95% intervals and plots, a Fig. 3-style strip of one test video,
        and the per-video tube evidence of VideoLSTM and ALSTM for the claims."""
        from pipeline import evidence, figures, localization_eval
        evaluation = self.requires()[("localize", dataset)]
        truth = localization_eval.ground_truth(evaluation.manifest())
        tubes = {name: evidence.tube_evidence(task.output().path, truth)
                 for name, task in evaluation.requires().items()}
        frames = {name: pd.read_csv(Path(evaluation.output().path) / f"{name}.csv")
                  for name in ("recall", "map")}
        shown = {}
        for name, plot in (("recall", figures.recall_vs_iou), ("map", figures.map_vs_iou)):
            table = frames[name]
            shown[f"Fig. 4 {name} ({dataset})"] = plot(
                {c: table[c].to_numpy() for c in table.columns if c != "iou"},
                table["iou"].to_numpy(), folder / f"fig4_{name}_{dataset}.png",
                f"{dataset}: {'recall' if name == 'recall' else 'video mAP'} vs IoU").name
        frames = {name: report.with_intervals(frame, tubes, name) for name, frame in frames.items()}
        videolstm = evaluation.requires()["VideoLSTM"]
        strip = localization_eval.attention_strip(
            videolstm.output().path, videolstm.manifest(), videolstm.sigma,
            folder / f"fig3_{dataset}.png", f"{dataset}: VideoLSTM attention and tube")
        shown[f"Fig. 3 ({dataset})"] = strip.name
        videos = evidence.common_videos({name: table["label"] for name, table in tubes.items()
                                         if name in LOCALIZED})
        measurements = {}
        for name in LOCALIZED:
            table = tubes[name].loc[videos]
            key = f"fig4/{name.lower()}"
            measurements[f"{key}/smoothed"] = (table["smoothed"].to_numpy(),
                                               evidence.score_matrix(table),
                                               table["label"].to_numpy())
            measurements[key] = (table["smoothed"].to_numpy(), table["not smoothed"].to_numpy())
        return frames, shown, measurements

    def streaming_difference(self, dataset: str) -> float:
        """C5: VideoLSTM (rgb) run frame by frame against the whole-sequence run, on the first
        three test videos."""
        import keras
        from pipeline import evidence
        task = Evaluate(dataset=dataset, split=SPLITS[dataset][0], stream="rgb",
                        arch="videolstm", attention="motion")
        model = keras.models.load_model(Path(task.input().path) / "model.keras")
        with task.source() as source:
            manifest = task.manifest()
            test = [v for v in manifest[manifest["split"] == "test"]["video_id"]
                    if v in source.videos_cached()][:3]
            return evidence.streaming_difference(model, source, test)


def claim_key(table: str, *cell: str) -> str:
    """The claims' name of a table cell: table1/<stream>/<arch>, table2/<attention>/<arch>,
    table3/<rgb|flow|fused> (pipeline.claims)."""
    if table == "table3":
        return f"table3/{cell[0]}"
    return "/".join((table, *cell))


def training_histories(evaluations: dict) -> dict:
    """Training history of every evaluated model, by model name."""
    histories = {}
    for task in evaluations.values():
        path = Path(task.requires().output().path) / "history.csv"
        histories[task.model_name()] = pd.read_csv(path)
    return histories


def skipped_videos(dataset: str) -> dict[str, str]:
    """Videos skipped by the flow and feature stages of a dataset, with their reasons."""
    skipped = {}
    shards = range(config.run().shards)
    stages = {"ComputeFlow": [ComputeFlow(dataset=dataset, shard=s) for s in shards]}
    stages.update({f"ExtractFeatures {stream}": [ExtractFeatures(dataset=dataset, stream=stream,
                                                                 shard=s) for s in shards]
                   for stream in STREAMS})
    for split in SPLITS[dataset]:
        table = read_manifest(Manifest(dataset=dataset, split=split).output().path)
        skipped.update({f"{dataset}/{video} (Manifest: boxes)": reason for video, reason
                        in zip(table["video_id"], table["tubes_skipped"]) if reason})
    for stage, tasks in stages.items():
        paths = [t.output().path for t in tasks if t.complete()]
        skipped.update({f"{dataset}/{video} ({stage})": reason for video, reason in
                        report.shard_summary(paths)["skipped"].items()})
    return skipped


config.check_task_sections()
