"""Luigi entry points of the VideoLSTM pipeline: thin tasks whose run() calls pipeline/ and models/.

    luigi --module tasks ReproducePaper --local-scheduler
    luigi --module tasks ExtractFeatures --stream flow --shard 0 --local-scheduler

Settings come from luigi.cfg (or LUIGI_CONFIG_PATH); outputs are written to a temporary name
and renamed when complete; cache paths carry a hash of what changes their content.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import luigi  # noqa: E402
import luigi.configuration  # noqa: E402

EMBEDDED_CONFIG = Path(__file__).with_name("luigi.cfg")
if EMBEDDED_CONFIG.is_file():
    # The embedded default is read first, so ./luigi.cfg and LUIGI_CONFIG_PATH override it
    # and `luigi --module tasks` runs the same from any folder.
    luigi.configuration.LuigiConfigParser._config_paths.insert(0, str(EMBEDDED_CONFIG))
    luigi.configuration.LuigiConfigParser.reload()

from pipeline import cache, config, report, sharding  # noqa: E402
from pipeline.datasets import SPLITS, read_split, synthetic_locations  # noqa: E402
from pipeline.manifest import probe_frames, read_manifest, write_manifest  # noqa: E402

STREAMS = ("rgb", "flow")


def dataset_locations(dataset: str) -> dict[str, str]:
    """Where a dataset's videos, split files and boxes are, from its config section."""
    if dataset == "synthetic":
        return synthetic_locations(GenerateSynthetic().root())
    section = {"ucf101": config.ucf101, "hmdb51": config.hmdb51,
               "thumos13": config.thumos13}[dataset]()
    return {key: getattr(section, key) for key in ("videos", "splits", "annotations")
            if hasattr(section, key)}


def dataset_identity(dataset: str) -> str:
    """What defines a dataset's content: its name, the splits used and the synthetic spec. Its
    folders are left out, so machines mounting one dataset at other paths share a cache."""
    params = {"name": dataset, "splits": list(SPLITS[dataset])}
    if dataset == "synthetic":
        params["spec"] = GenerateSynthetic().spec().__dict__
    return cache.short_hash(cache.describe("dataset", params))


class DatasetTask(luigi.Task):
    """A task of one dataset (default: [run] dataset)."""

    dataset = luigi.ChoiceParameter(choices=config.DATASETS,
                                    default=config.run().dataset)

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

    def root(self) -> Path:
        spec_hash = cache.short_hash(cache.describe("synthetic", self.spec().__dict__))
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
        return GenerateSynthetic() if self.dataset == "synthetic" else []

    def output(self):
        name = f"manifest-split{self.split}-{dataset_identity(self.dataset)}.parquet"
        return luigi.LocalTarget(str(config.paths().folder("work") / self.dataset / name))

    def run(self):
        table = probe_frames(read_split(self.dataset, self.split,
                                        dataset_locations(self.dataset)))
        self.output().makedirs()
        with self.output().temporary_path() as tmp:
            write_manifest(table, tmp)


class VideosTask(DatasetTask):
    """A task over the videos of a dataset (all its splits: flow and features ignore splits)."""

    def manifests(self):
        return [Manifest(dataset=self.dataset, split=s) for s in SPLITS[self.dataset]]

    def videos(self):
        return sharding.union([read_manifest(m.output().path) for m in self.manifests()])


def flow_params():
    from pipeline.flow import TVL1Params
    section = config.flow()
    return TVL1Params(tau=section.tau, lambda_=section.lambda_, theta=section.theta,
                      nscales=section.nscales, warps=section.warps, epsilon=section.epsilon,
                      inner_iterations=section.inner_iterations,
                      outer_iterations=section.outer_iterations,
                      scale_step=section.scale_step, gamma=section.gamma,
                      median_filtering=section.median_filtering, bound=section.bound)


def flow_description(dataset: str) -> dict:
    return cache.describe("flow", {"tvl1": flow_params().as_dict(),
                                   "shards": config.run().validate().shards},
                          {"dataset": dataset_identity(dataset)})


def shard_name(shard: int) -> str:
    return f"shard-{shard:03d}-of-{config.run().shards:03d}.h5"


class ComputeFlow(VideosTask):
    """TV-L1 flow of one shard of videos, quantized to uint8, into one HDF5 shard  [5.2]."""

    shard = luigi.IntParameter()

    def requires(self):
        return self.manifests()

    def output(self):
        path = self.cache_dir("flow", flow_description(self.dataset)) / shard_name(self.shard)
        return luigi.LocalTarget(str(path))

    def run(self):
        from pipeline import flow
        from pipeline.progress import Progress
        videos = sharding.shard_of(self.videos(), self.shard, config.run().shards)
        self.output().makedirs()
        with self.output().temporary_path() as tmp, \
                flow.FlowPool(config.flow().worker_count()) as pool, \
                Progress(len(videos), f"flow shard {self.shard}", self.report_progress) as bar:
            flow.write_flow_shard(tmp, flow_description(self.dataset), videos, flow_params(),
                                  pool, config.run().strict, bar)


def convnet_description(dataset: str, stream: str) -> dict:
    section = config.convnet().validate()
    params = {key: getattr(section, key) for key in (
        "weights", "image_size", "finetune_from", "finetune_epochs", "finetune_frames",
        "learning_rate", "batch_size")}
    params.update(stream=stream, seed=config.run().seed)
    upstream = {"dataset": dataset_identity(dataset)}
    if stream == "flow":
        upstream["flow"] = cache.short_hash(flow_description(dataset))
    return cache.describe("convnet", params, upstream)


class FinetuneConvNet(VideosTask):
    """A stream's VGG-16 frame classifier (Table 1's ConvNet), fine-tuned on training frames
    when [convnet] finetune_epochs > 0; otherwise the initial network is kept as is."""

    stream = luigi.ChoiceParameter(choices=STREAMS)

    def requires(self):
        needs = list(self.manifests())
        if self.stream == "flow":
            needs += [ComputeFlow(dataset=self.dataset, shard=s)
                      for s in range(config.run().shards)]
        return needs

    def output(self):
        return luigi.LocalTarget(str(self.cache_dir(
            f"convnet-{self.stream}", convnet_description(self.dataset, self.stream))))

    def run(self):
        from models import vgg16
        from pipeline import features
        section = config.convnet().validate()
        videos = self.videos()
        model = vgg16.initialise(self.stream, videos["label_index"].max() + 1,
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
        with self.output().temporary_path() as tmp:
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
                frames = read_frames(row.path)
                return frames[features.sample_frame_indices(len(frames), count)]
            return rgb
        shards = sharding_of_flow(self.dataset, self.videos(), self.input()[-config.run().shards:])

        def flow(row, count):
            with cache.Shard(shards[row.video_id], flow_description(self.dataset)) as shard:
                n = shard.length(row.video_id, "flow")
                return shard.read(row.video_id, "flow", features.sample_frame_indices(n, count))
        return flow


def sharding_of_flow(dataset, videos, targets) -> dict[str, str]:
    """Which flow shard file holds each video."""
    shards = config.run().shards
    return {video: targets[s].path for s in range(shards)
            for video in sharding.shard_of(videos, s, shards)["video_id"]}


def convnet_record(dataset: str, stream: str) -> dict:
    """The saved convnet's record (weights checksum, losses); raises if it was not made."""
    path = Path(FinetuneConvNet(dataset=dataset, stream=stream).output().path) / "convnet.json"
    return report.read_json(path)


def features_description(dataset: str, stream: str, weights_sha256: str | None = None) -> dict:
    """The feature shards' description; the path hash leaves out the weights checksum (known
    only once the convnet exists), the stored description carries it."""
    section = config.convnet().validate()
    upstream = {"dataset": dataset_identity(dataset),
                "convnet": cache.short_hash(convnet_description(dataset, stream))}
    if weights_sha256:
        upstream["weights_sha256"] = weights_sha256
    return cache.describe("features", {"stream": stream, "image_size": section.image_size,
                                       "precision": section.precision, "dtype": section.dtype,
                                       "shards": config.run().shards,
                                       "layers": ["pool5", "fc7"]}, upstream)


class ExtractFeatures(VideosTask):
    """pool5 (NxNx512) and fc7 (4096) of every frame of one shard, for one stream  [5.2]."""

    stream = luigi.ChoiceParameter(choices=STREAMS)
    shard = luigi.IntParameter()

    def requires(self):
        needs = {"manifests": self.manifests(),
                 "convnet": FinetuneConvNet(dataset=self.dataset, stream=self.stream)}
        if self.stream == "flow":
            needs["flow"] = ComputeFlow(dataset=self.dataset, shard=self.shard)
        return needs

    def output(self):
        path = (self.cache_dir(f"features-{self.stream}",
                               features_description(self.dataset, self.stream))
                / shard_name(self.shard))
        return luigi.LocalTarget(str(path))

    def run(self):
        from models import vgg16
        from pipeline import features
        from pipeline.progress import Progress
        from pipeline.video import iter_frames
        section = config.convnet().validate()
        record = convnet_record(self.dataset, self.stream)
        description = features_description(self.dataset, self.stream, record["weights_sha256"])
        videos = sharding.shard_of(self.videos(), self.shard, config.run().shards)
        extractor = vgg16.load_extractor(
            str(Path(self.input()["convnet"].path) / "model.keras"), section.precision)
        self.output().makedirs()
        with self.output().temporary_path() as tmp, \
                Progress(len(videos), f"{self.stream} features shard {self.shard}",
                         self.report_progress) as bar:
            if self.stream == "rgb":
                features.write_feature_shard(
                    tmp, description, videos, lambda row: iter_frames(row.path), extractor,
                    self.stream, section.image_size, section.batch_size, section.dtype,
                    config.run().strict, bar)
                return
            with cache.Shard(self.input()["flow"].path, flow_description(self.dataset)) as flow:
                features.write_feature_shard(
                    tmp, description, videos, lambda row: flow.iter_frames(row.video_id, "flow"),
                    extractor, self.stream, section.image_size, section.batch_size,
                    section.dtype, config.run().strict, bar)


class ReproducePaper(luigi.Task):
    """Everything for the configured dataset, summarised in reports/<profile>/report.md."""

    dataset = luigi.ChoiceParameter(choices=config.DATASETS, default=config.run().dataset)

    def requires(self):
        shards = range(config.run().validate().shards)
        return {stream: [ExtractFeatures(dataset=self.dataset, stream=stream, shard=s)
                         for s in shards] for stream in STREAMS}

    def output(self):
        folder = config.paths().folder("reports") / f"{self.dataset}-{config.run().profile}"
        return luigi.LocalTarget(str(folder / "report.md"))

    def run(self):
        flows = [ComputeFlow(dataset=self.dataset, shard=s).output().path
                 for s in range(config.run().shards)]
        features = {stream: [t.path for t in targets] for stream, targets in self.input().items()}
        manifest = sharding.union([read_manifest(m.output().path) for m in
                                   VideosTask(dataset=self.dataset).manifests()])
        text = report.stage1_report(self.dataset, config.run().profile, manifest, flows, features,
                                    generated=time.strftime("%Y-%m-%d %H:%M:%S"))
        self.output().makedirs()
        with self.output().temporary_path() as tmp:
            Path(tmp).write_text(text)
