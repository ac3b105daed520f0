"""Luigi entry points of the VideoLSTM pipeline: thin tasks whose run() calls pipeline/ and models/.

    luigi --module tasks ReproducePaper --local-scheduler
    luigi --module tasks ExtractFeatures --stream flow --shard 0 --local-scheduler

Settings come from luigi.cfg (or LUIGI_CONFIG_PATH); outputs are written to a temporary name
and renamed when complete; cache paths carry a hash of what changes their content.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from pathlib import Path

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

from pipeline import (cache, config, devices, locking, scoring, sharding,  # noqa: E402
                      termination)
from pipeline.datasets import SPLITS  # noqa: E402
from pipeline.identity import descriptions  # noqa: E402
from pipeline.localization_eval import (BASELINE, IOU_THRESHOLDS, LOCALIZED,  # noqa: E402
                                        RECALL_THRESHOLDS)
from pipeline.manifest import probe_frames, read_manifest, write_manifest  # noqa: E402
from pipeline.outputs import written  # noqa: E402
from pipeline.report import assembly, report  # noqa: E402


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


def timings_log() -> Path:
    return config.paths().folder("work") / "timings.jsonl"


@luigi.Task.event_handler(luigi.Event.PROCESSING_TIME)
def record_processing_time(task: luigi.Task, seconds: float) -> None:
    """Every finished task's wall time, when it ran, on which host and device (the GPU it held,
    or "cpu"), for the report's time per stage and per device. Triggered in the task's process,
    where its lease is known."""
    end = time.time()
    report.append_timing(timings_log(), task.task_family, task.task_id, seconds,
                         start=end - seconds, end=end, host=socket.gethostname(),
                         device=getattr(task, "device", devices.CPU))


class DeviceTask(luigi.Task):
    """A task that runs TensorFlow: it holds one device for its run, leased in its own process
    by pipeline.devices.TaskLease ([worker] task_process_context in luigi.cfg), which sets
    ``device`` to the GPU it holds."""

    device = devices.CPU

    def deps(self):
        """Luigi asks a pending task for its dependencies in the scheduling process, after every
        setting and parameter is checked (their one-line errors come without TensorFlow's
        start-up lines) and before any task process forks: the moment to import TensorFlow
        once for all of them. Not in an event handler, where Luigi swallows Ctrl-C."""
        if self.uses_device():
            devices.import_tensorflow_before_tasks()
        return super().deps()

    def uses_device(self) -> bool:
        return True

    def process_resources(self) -> dict[str, int]:
        """One of the local scheduler's [resources] gpu (this machine's GPUs), so that no worker
        takes a device task while every GPU is leased. A central scheduler counts resources
        over all its machines, so under luigid the per-machine leases alone decide."""
        import luigi.interface
        if self.uses_device() and config.run().gpus() and luigi.interface.core().local_scheduler:
            return {"gpu": 1}
        return {}


class DatasetTask(luigi.Task):
    """A task of one dataset (default: [run] dataset)."""

    dataset = Choice("dataset", choices=config.DATASETS, default=config.run().dataset)

    def report_progress(self, percent: float, message: str) -> None:
        self.set_progress_percentage(percent)
        self.set_status_message(message)


class GenerateSynthetic(luigi.Task):
    """The embedded synthetic dataset, in UCF101's layout with THUMOS13-format boxes."""

    def output(self):
        return luigi.LocalTarget(str(descriptions.synthetic_root() / "synthetic.json"))

    def run(self):
        from pipeline.datasets import synthetic
        synthetic.generated(descriptions.synthetic_root(), descriptions.synthetic_spec())


class Manifest(DatasetTask):
    """One table of every video of a split: id, path, label, split, frame count, GT tubes."""

    split = luigi.IntParameter(default=1)

    def requires(self):
        config.dataset_folders(self.dataset)
        return GenerateSynthetic() if self.dataset == "synthetic" else []

    def output(self):
        return luigi.LocalTarget(str(descriptions.manifest_path(self.dataset, self.split)))

    @locking.single_writer
    def run(self):
        table = probe_frames(descriptions.listing(self.dataset, self.split)
                             .drop(columns="fingerprint"), strict=config.run().strict)
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
        fingerprints = descriptions.all_videos(self.dataset).set_index("video_id")["fingerprint"]
        return rows.assign(fingerprint=[fingerprints[video] for video in rows["video_id"]])

    def held(self, rows: pd.DataFrame, expected: dict) -> dict:
        """Videos of ``rows`` that complete shards beside this task's output already hold (of
        another sharding): copied rather than computed again."""
        return cache.held_videos(Path(self.output().path).parent, expected,
                                 dict(zip(rows["video_id"], rows["fingerprint"])),
                                 exclude=self.output().path)


class ComputeFlow(VideosTask, DeviceTask):
    """TV-L1 flow of one shard of videos, quantized to uint8, into one HDF5 shard  [5.2]."""

    shard = luigi.IntParameter()

    def uses_device(self) -> bool:
        return config.flow().backend == "tensorflow"

    def requires(self):
        return self.manifests()

    def output(self):
        return luigi.LocalTarget(str(descriptions.flow_shard(self.dataset, self.shard)))

    @locking.single_writer
    def run(self):
        from pipeline.flow import batches, tvl1
        from pipeline.progress import Progress
        videos = self.shard_rows(self.shard)
        params = descriptions.flow_params()
        with written(self.output()) as tmp, \
                batches.flow_runner(params, config.flow().worker_count(), config.video().size(),
                                    config.flow().batch_pairs) as pool, \
                Progress(len(videos), f"flow shard {self.shard}", self.report_progress) as bar:
            description = descriptions.flow_description(self.dataset, self.shard)
            tvl1.write_flow_shard(tmp, description, videos, params, pool, config.run().strict,
                                  bar, self.held(videos, description))


class FinetuneConvNet(VideosTask, DeviceTask):
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
        return luigi.LocalTarget(str(descriptions.convnet_folder(self.dataset, self.stream)))

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
            flow = {} if self.stream == "rgb" else {
                video: (str(descriptions.flow_shard(self.dataset, s)),
                        descriptions.flow_description(self.dataset, s))
                for s in range(config.run().shards) for video in self.shard_rows(s)["video_id"]}
            images, labels, skipped = features.training_frames(
                train, features.frames_at(self.stream, config.video().size(), flow),
                section.finetune_frames, section.image_size, config.run().strict)
            losses = features.finetune(
                model, images, labels, self.stream, section.image_size, section.finetune_from,
                section.finetune_epochs, section.learning_rate, section.batch_size,
                config.run().seed)
        with written(self.output()) as tmp:
            Path(tmp).mkdir(parents=True)
            model.save(Path(tmp) / "model.keras")
            report.write_json(Path(tmp) / "convnet.json", {
                "description": descriptions.convnet_description(self.dataset, self.stream),
                "weights_sha256": cache.array_checksum(model.get_weights()),
                "losses": losses, "skipped": skipped})


class ExtractFeatures(VideosTask, DeviceTask):
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
        return luigi.LocalTarget(str(descriptions.features_shard(self.dataset, self.stream,
                                                                 self.shard)))

    @locking.single_writer
    def run(self):
        from models import vgg16
        from pipeline import features
        from pipeline.progress import Progress
        from pipeline.video import iter_frames
        section = config.convnet().validate()
        description = descriptions.stored_features_description(self.dataset, self.stream,
                                                               self.shard)
        videos = self.shard_rows(self.shard)
        extractor = vgg16.load_extractor(
            str(Path(self.input()["convnet"].path) / "model.keras"), section.precision)
        with written(self.output()) as tmp, \
                (contextlib.nullcontext() if self.stream == "rgb" else cache.Shard(
                    self.input()["flow"].path,
                    descriptions.flow_description(self.dataset, self.shard))) as flow, \
                Progress(len(videos), f"{self.stream} features shard {self.shard}",
                         self.report_progress) as bar:
            features.write_feature_shard(
                tmp, description, videos,
                (lambda row: iter_frames(row.path, config.video().size()))
                if self.stream == "rgb" else lambda row: flow.iter_frames(row.video_id, "flow"),
                extractor, self.stream, section.image_size, section.batch_size, section.dtype,
                config.run().strict, bar, self.held(videos, description))


class ModelTask(DatasetTask):
    """A task about one trained model: dataset split, stream, architecture and attention."""

    split = luigi.IntParameter(default=1)
    stream = Choice("stream", choices=STREAMS, default="rgb")
    arch = Choice("arch", choices=ARCHITECTURES, default="videolstm")
    attention = Choice("attention", choices=("appearance", "motion"), default="appearance")
    replicate = luigi.IntParameter(default=0)
    """Which of the [run] replicates training runs of the model: its training seed."""

    def model(self) -> tuple:
        """(dataset, split, stream, arch, attention, replicate): what a model's descriptions
        take."""
        return self.dataset, self.split, self.stream, self.arch, self.attention, self.replicate

    def same_model(self, task_class, **changes):
        """``task_class`` (TrainModel, Evaluate, Localize) of this model, or of one that differs
        by ``changes``."""
        fields = dict(dataset=self.dataset, split=self.split, stream=self.stream, arch=self.arch,
                      attention=self.attention, replicate=self.replicate)
        return task_class(**{**fields, **changes})

    def inputs(self):
        return descriptions.model_inputs(self.arch, self.stream, self.attention)

    def model_name(self) -> str:
        return descriptions.model_name(self.split, self.stream, self.arch, self.attention,
                                       self.replicate)

    def streams(self) -> list[str]:
        return descriptions.model_streams(self.arch, self.stream, self.attention)

    def source(self):
        from pipeline.training.source import FeatureSource
        return FeatureSource({s: descriptions.feature_shards(self.dataset, s)
                              for s in self.streams()}, self.inputs())

    def manifest(self):
        return read_manifest(Manifest(dataset=self.dataset, split=self.split).output().path)

    def pretraining(self) -> "TrainModel | None":
        """The model this one starts from (HMDB51's from UCF101's, paper 5.2), or None."""
        start = descriptions.pretrained_from(self.dataset)
        if start is None:
            return None
        return self.same_model(TrainModel, dataset=start[0], split=start[1])

    def model_target(self, folder: str, description: dict, suffix: str = ""):
        """work/<dataset>/<folder>/<model name>-<hash><suffix>."""
        return luigi.LocalTarget(str(descriptions.model_output(folder, *self.model(),
                                                               description, suffix)))


class TrainModel(ModelTask, DeviceTask):
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
        return self.model_target("models", descriptions.model_description(*self.model()))

    @locking.single_writer
    def run(self):
        from pipeline import model_files
        from pipeline.training import loop
        section = config.train().validate()
        manifest = self.manifest()
        record = descriptions.model_record(self.dataset, self.stream, self.arch, self.attention,
                                           manifest)
        checkpoints = loop.Checkpoints(self.output().path + ".checkpoints")
        with self.source() as source, written(self.output()) as tmp:
            Path(tmp).mkdir(parents=True)
            trained = loop.train_model(
                Path(tmp), source, manifest, self.arch, record.attention, config.model().sizes(),
                section, config.run().training_seed(self.replicate), checkpoints,
                None if self.pretraining() is None else self.input()[-1].path,
                lambda epoch, row: self.report_progress(100.0 * (epoch + 1) / section.epochs,
                                                        f"epoch {epoch + 1}: {row}"),
                curves=self.replicate == scoring.CURVES_REPLICATE)
            model_files.seal(Path(tmp), record.as_json(), {
                "description": descriptions.model_description(*self.model()), **trained})
        checkpoints.remove()


class Evaluate(ModelTask, DeviceTask):
    """Per-video class scores of the test videos (25 segments of 30 frames) and accuracy  [5.2]."""

    def requires(self):
        return self.same_model(TrainModel)

    def output(self):
        return self.model_target("evaluation",
                                 descriptions.evaluation_description(*self.model()))

    @locking.single_writer
    def run(self):
        from pipeline.training import loop
        section = config.evaluate().validate()
        with self.source() as source:
            scores, metrics = loop.evaluate_model(Path(self.input().path), source,
                                                  self.manifest(), section.segments,
                                                  section.length)
        with written(self.output()) as tmp:
            Path(tmp).mkdir(parents=True)
            scoring.write_scores_frame(scores, Path(tmp) / "scores.csv")
            report.write_json(Path(tmp) / "metrics.json", metrics)


class Fuse(DatasetTask):
    """Product fusion of VideoLSTM's rgb and flow scores (Table 3) and, when score files are
    given in [fusion], the weighted product with iDT and object scores (Table 4)."""

    split = luigi.IntParameter(default=1)
    replicate = luigi.IntParameter(default=0)

    def requires(self):
        return {stream: Evaluate(dataset=self.dataset, split=self.split, stream=stream,
                                 arch="videolstm", attention="motion", replicate=self.replicate)
                for stream in STREAMS}

    def output(self):
        description = descriptions.fusion_description(self.dataset, self.split, STREAMS,
                                                      self.replicate)
        folder = config.paths().folder("work") / self.dataset / "fusion"
        return luigi.LocalTarget(str(folder / (f"split{self.split}"
                                               f"{descriptions.replicate_suffix(self.replicate)}-"
                                               f"{cache.short_hash(description)}")))

    @locking.single_writer
    def run(self):
        from pipeline import fusion
        section = config.fusion()
        fused, results = fusion.fuse_evaluations(
            *(Path(self.input()[stream].path) / "scores.csv" for stream in ("rgb", "flow")),
            descriptions.fusion_scores(self.dataset, self.split), section.videolstm_weight,
            section.idt_weight, section.objects_weight)
        with written(self.output()) as tmp:
            Path(tmp).mkdir(parents=True)
            scoring.write_scores_frame(fused, Path(tmp) / "scores.csv")
            report.write_json(Path(tmp) / "metrics.json", {"accuracy": results})


class LocalizationTask(ModelTask):
    """Localization settings: saliency threshold (Eq. 16), Gaussian sigma, LOWESS span."""

    theta = luigi.FloatParameter(default=100.0)
    sigma = luigi.FloatParameter(default=8.0)
    frac = luigi.FloatParameter(default=0.3)


class Localize(LocalizationTask, DeviceTask):
    """One tube per test video from the model's attention maps: upsample, Gaussian, threshold,
    8-connected boxes, IoU chaining, LOWESS; the tube's class scores are the frame scores
    averaged  [4]."""

    def requires(self):
        return self.same_model(TrainModel)

    def output(self):
        return self.model_target("localization", self.description(), ".h5")

    def description(self) -> dict:
        return descriptions.tubes_description(*self.model(), self.theta, self.sigma, self.frac)

    @locking.single_writer
    def run(self):
        import keras
        from pipeline import localization
        from pipeline.progress import Progress
        from pipeline.training import loop
        from pipeline.video import iter_frames
        manifest = self.manifest()
        model = keras.models.load_model(Path(self.input().path) / "model.keras")
        with self.source() as source, written(self.output()) as tmp:
            test = manifest[(manifest["split"] == "test") & (manifest["tubes"] != "")]
            test = test[[v in source.videos_cached() for v in test["video_id"]]]
            with Progress(len(test), f"localize {self.model_name()}",
                          self.report_progress) as bar:
                localization.write_tube_shard(
                    tmp, self.description(), test,
                    lambda video: loop.whole_video(model, source, video),
                    lambda row: next(iter_frames(row.path)).shape[:2],
                    self.theta, self.sigma, self.frac, bar)


class MotionSaliencyTubes(DatasetTask):
    """The non-learned baseline beside Fig. 4: one tube per test video from the flow stream's
    pool5 energy (pipeline.saliency) through the same box procedure as Localize, with
    VideoLSTM's tube class scores, so only the map that boxes are drawn from differs."""

    split = luigi.IntParameter(default=1)
    replicate = luigi.IntParameter(default=0)
    theta = luigi.FloatParameter(default=100.0)
    sigma = luigi.FloatParameter(default=8.0)
    frac = luigi.FloatParameter(default=0.3)

    def requires(self):
        return {"scores": Localize(dataset=self.dataset, split=self.split, stream="rgb",
                                   arch="videolstm", attention="motion",
                                   replicate=self.replicate, theta=self.theta,
                                   sigma=self.sigma, frac=self.frac),
                "flow": [ExtractFeatures(dataset=self.dataset, stream="flow", shard=s)
                         for s in range(config.run().shards)]}

    def description(self) -> dict:
        return descriptions.saliency_tubes_description(self.dataset, self.split, self.replicate,
                                                       self.theta, self.sigma, self.frac)

    def output(self):
        name = (f"motion-saliency-split{self.split}{descriptions.replicate_suffix(self.replicate)}"
                f"-{cache.short_hash(self.description())}.h5")
        return luigi.LocalTarget(str(config.paths().folder("work") / self.dataset
                                     / "localization" / name))

    @locking.single_writer
    def run(self):
        from pipeline import localization, saliency
        from pipeline.progress import Progress
        from pipeline.training.source import FeatureSource, ModelInputs
        from pipeline.video import iter_frames
        source = FeatureSource({"flow": descriptions.feature_shards(self.dataset, "flow")},
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


class EvaluateLocalization(LocalizationTask):
    """Video mAP at IoU thresholds and recall vs IoU, with and without smoothing, for VideoLSTM
    and ALSTM (Fig. 4)  [5.4]."""

    def requires(self):
        tubes = {name: Localize(dataset=self.dataset, split=self.split, stream="rgb", arch=arch,
                                attention=attention, replicate=self.replicate, theta=self.theta,
                                sigma=self.sigma, frac=self.frac)
                 for name, (arch, attention) in LOCALIZED.items()}
        tubes[BASELINE] = MotionSaliencyTubes(dataset=self.dataset, split=self.split,
                                              replicate=self.replicate, theta=self.theta,
                                              sigma=self.sigma, frac=self.frac)
        return tubes

    def output(self):
        description = descriptions.localization_evaluation_description(
            self.dataset, self.split, self.replicate, self.theta, self.sigma, self.frac)
        folder = config.paths().folder("work") / self.dataset / "localization"
        return luigi.LocalTarget(str(folder / (f"evaluation-split{self.split}"
                                               f"{descriptions.replicate_suffix(self.replicate)}-"
                                               f"{cache.short_hash(description)}")))

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


class ReproducePaper(DeviceTask):
    """Everything for the configured datasets: Tables 1-4 and Fig. 4 (our numbers beside the
    paper's), Fig. 3-style attention strips, training curves, time per stage and device,
    skipped videos. A device task: its streaming check (C5) runs VideoLSTM."""

    datasets = luigi.ListParameter(default=[config.run().dataset])

    def evaluations(self, dataset: str) -> dict:
        """(replicate, split, table, row, column) -> the Evaluate of that table cell."""
        return {(replicate, split, *cell): Evaluate(
                    dataset=dataset, split=split, stream=stream, arch=arch, attention=attention,
                    replicate=replicate)
                for replicate in range(config.run().replicates) for split in SPLITS[dataset]
                for cell, (arch, stream, attention) in assembly.CELLS.items()}

    def requires(self):
        needs = {}
        replicates = range(config.run().replicates)
        for dataset in self.datasets:
            config.dataset_folders(dataset)
            if dataset in assembly.CLASSIFICATION:
                needs[("evaluate", dataset)] = self.evaluations(dataset)
                needs[("fuse", dataset)] = [Fuse(dataset=dataset, split=s, replicate=r)
                                            for r in replicates for s in SPLITS[dataset]]
            if dataset in assembly.LOCALIZATION:
                needs[("localize", dataset)] = [EvaluateLocalization(
                    dataset=dataset, split=1, stream="rgb", replicate=r) for r in replicates]
        return needs

    def output(self):
        folder = config.paths().folder("reports") / config.run().profile
        return luigi.LocalTarget(str(folder / "report.md"))

    def inputs_identity(self) -> str:
        return assembly.inputs_identity(target.path for target in luigi.task.flatten(self.input()))

    def complete(self):
        """The report exists and was made from this graph's outputs: the folder is named by the
        profile alone, so a report of other settings there is made again, never taken as done."""
        path = Path(self.output().path)
        return path.exists() and assembly.stamp(path.read_text()) == self.inputs_identity()

    def outputs(self, dataset: str) -> assembly.DatasetOutputs:
        """Where the report's inputs of one dataset are."""
        def path(task):
            return Path(task.output().path)
        needs, shards = self.requires(), range(config.run().shards)
        evaluations = needs.get(("evaluate", dataset), {})
        stages = {"ComputeFlow": [descriptions.flow_shard(dataset, s) for s in shards]}
        stages.update({f"ExtractFeatures {stream}": [
            descriptions.features_shard(dataset, stream, s) for s in shards] for stream in STREAMS})
        return assembly.DatasetOutputs(
            name=dataset, splits=SPLITS[dataset], shards=stages,
            manifests=tuple(descriptions.manifest_path(dataset, s) for s in SPLITS[dataset]),
            evaluations={cell: path(task) for cell, task in evaluations.items()},
            models={task.model_name(): path(task.requires()) for task in evaluations.values()
                    if task.replicate == scoring.CURVES_REPLICATE},
            fused={(task.replicate, task.split): path(task)
                   for task in needs.get(("fuse", dataset), [])},
            localized=[assembly.Localized(
                path(task), descriptions.manifest_path(dataset, task.split),
                {name: path(tubes) for name, tubes in task.requires().items()}, task.sigma)
                for task in needs.get(("localize", dataset), [])])

    def streaming_difference(self) -> float:
        """C5 on the first dataset's first split: VideoLSTM (rgb) streamed and whole."""
        dataset = self.datasets[0]
        task = Evaluate(dataset=dataset, split=SPLITS[dataset][0], stream="rgb",
                        arch="videolstm", attention="motion")
        return assembly.streaming_difference(Path(task.input().path), task.source(),
                                             descriptions.manifest_path(dataset, task.split))

    @locking.single_writer
    def run(self):
        text = assembly.paper_report(Path(self.output().path).parent, config.run().profile,
                                     [self.outputs(d) for d in self.datasets], timings_log(),
                                     self.streaming_difference())
        with written(self.output()) as tmp:
            Path(tmp).write_text(assembly.stamped(text, self.inputs_identity()))


config.check_task_sections()
