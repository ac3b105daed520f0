"""Every stage's cache description, and what they are made from: a split's listed videos with
their fingerprints, the split's identity and each shard's videos. The paths one stage's
description needs of another's output (the convnet folder, the feature shards) are computed
here from the config too, so the tasks' outputs and the descriptions agree.

Functions take plain values (dataset, split, stream, arch, attention); settings come from the
config sections at call time.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd

from pipeline import cache, config, sharding
from pipeline.datasets import SPLITS, read_split, synthetic_locations
from pipeline.identity.fingerprint import FingerprintCache, content_hash
from pipeline.localization_eval import BASELINE, IOU_THRESHOLDS, LOCALIZED, RECALL_THRESHOLDS
from pipeline.manifest import check_split
from pipeline.report import report


def synthetic_spec():
    """The embedded synthetic dataset's spec, from [synthetic]."""
    from pipeline.datasets.synthetic import SyntheticSpec
    section = config.synthetic()
    return SyntheticSpec(classes=section.classes, train_per_class=section.train_per_class,
                         test_per_class=section.test_per_class, frames=section.frames,
                         width=section.width, height=section.height, seed=section.seed,
                         context=section.context)


def synthetic_root() -> Path:
    """Where the synthetic dataset is generated: a hash of what the videos depend on, the spec
    and the generator's version."""
    from pipeline.datasets.synthetic import GENERATOR_VERSION
    identity = {**synthetic_spec().__dict__, "generator_version": GENERATOR_VERSION}
    spec_hash = cache.short_hash(cache.describe("synthetic", identity))
    return config.paths().folder("data") / f"synthetic-{spec_hash}"


def dataset_locations(dataset: str) -> dict[str, str]:
    """Where a dataset's videos, split files and boxes are, from its config section (the
    synthetic one is generated here on first use: its content decides every path below)."""
    if dataset == "synthetic":
        from pipeline.datasets import synthetic
        return synthetic_locations(synthetic.generated(synthetic_root(), synthetic_spec()))
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
        fingerprints = FingerprintCache(
            config.paths().folder("work") / dataset / "fingerprints.json")
        table["fingerprint"] = [fingerprints.get(path) for path in table["path"]]
        fingerprints.save()
        _LISTINGS[key] = table, content_hash(
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
    return content_hash(videos[videos["split"] == "train"],
                        ("video_id", "label_index", "fingerprint"))


@functools.lru_cache(maxsize=None)
def _shard_hashes(dataset: str, splits: tuple[str, ...], shards: int) -> tuple[str, ...]:
    """Each shard's hash of its videos' ids and fingerprints (``splits`` is the key)."""
    return tuple(content_hash(members, ("video_id", "fingerprint"))
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


def cache_folder(dataset: str, stage: str, description: dict) -> Path:
    """cache/<dataset>/<stage>-<hash of the description>."""
    return (config.paths().folder("cache") / dataset
            / f"{stage}-{cache.short_hash(description)}")


def manifest_path(dataset: str, split: int) -> Path:
    """Manifest's table of a split: work/<dataset>/manifest-split<N>-<hash>.parquet."""
    from pipeline.manifest import MANIFEST_COLUMNS
    description = cache.describe("manifest", {"columns": list(MANIFEST_COLUMNS)},
                                 {"split": split_identity(dataset, split)})
    name = f"manifest-split{split}-{cache.short_hash(description)}.parquet"
    return config.paths().folder("work") / dataset / name


def flow_params():
    return config.flow().params()


def flow_description(dataset: str, shard: int | None = None) -> dict:
    """ComputeFlow's settings (its folder's hash); a shard's description also names its videos."""
    from pipeline.video import format_frame_size
    return cache.describe("flow", {"tvl1": flow_params().as_dict(),
                                   "frame_size": format_frame_size(config.video().size())},
                          {} if shard is None else shard_videos(dataset, shard))


def flow_shard(dataset: str, shard: int) -> Path:
    """ComputeFlow's shard file."""
    return shard_file(cache_folder(dataset, "flow", flow_description(dataset)), dataset, shard)


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


def convnet_folder(dataset: str, stream: str) -> Path:
    """FinetuneConvNet's folder of a stream."""
    return cache_folder(dataset, f"convnet-{stream}", convnet_description(dataset, stream))


def convnet_record(dataset: str, stream: str) -> dict:
    """The saved convnet's record (weights checksum, losses); raises if it was not made."""
    return report.read_json(convnet_folder(dataset, stream) / "convnet.json")


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


def features_shard(dataset: str, stream: str, shard: int) -> Path:
    """ExtractFeatures' shard file of a stream."""
    folder = cache_folder(dataset, f"features-{stream}", features_description(dataset, stream))
    return shard_file(folder, dataset, shard)


def feature_shards(dataset: str, stream: str) -> dict[str, dict]:
    """Every feature shard of a stream and what a reader expects of it."""
    weights = convnet_record(dataset, stream)["weights_sha256"]
    return {str(features_shard(dataset, stream, s)):
            features_description(dataset, stream, s, weights)
            for s in range(config.run().shards)}


def stored_features_description(dataset: str, stream: str, shard: int) -> dict:
    """What a reader expects of a feature shard: its videos and the convnet's weights."""
    return features_description(dataset, stream, shard,
                                convnet_record(dataset, stream)["weights_sha256"])


def model_inputs(arch: str, stream: str, attention: str):
    """The cached arrays that feed a model (pipeline.training.source.ModelInputs)."""
    from pipeline.training.source import ModelInputs
    return ModelInputs.of(arch, stream, attention, config.model().sizes().alstm_motion_input)


def model_streams(arch: str, stream: str, attention: str) -> list[str]:
    """The streams whose features a model reads: its own, and flow for motion attention."""
    return sorted({stream} | ({"flow"} if model_inputs(arch, stream, attention).motion
                              else set()))


def model_name(split: int, stream: str, arch: str, attention: str, replicate: int = 0) -> str:
    """<arch>-<attention>-<stream>-split<N>, then -rep<K> for replicates after the first (the
    first keeps the name models had before replicates existed)."""
    attention = "motion" if model_inputs(arch, stream, attention).motion else "appearance"
    return f"{arch}-{attention}-{stream}-split{split}{replicate_suffix(replicate)}"


def replicate_suffix(replicate: int) -> str:
    """What an output's name carries of its replicate: nothing for the first."""
    return f"-rep{replicate}" if replicate else ""


def pretrained_from(dataset: str) -> tuple[str, int] | None:
    """The dataset and split whose model a model starts from: an HMDB51 model starts from the
    UCF101 model of the same architecture, stream and attention (paper 5.2); others from
    scratch."""
    return ("ucf101", 1) if dataset == "hmdb51" else None


def model_description(dataset: str, split: int, stream: str, arch: str,
                      attention: str, replicate: int = 0) -> dict:
    """TrainModel's settings, training seed (its replicate's) and inputs."""
    sizes = config.model().sizes()
    section = config.train().validate()
    params = {"arch": arch, "stream": stream,
              "motion": model_inputs(arch, stream, attention).motion,
              "split": split, "seed": config.run().training_seed(replicate),
              "sizes": sizes.__dict__,
              "train": {key: getattr(section, key) for key in
                        ("epochs", "batch_size", "snippet", "learning_rate", "rho")}}
    upstream = {s: cache.short_hash(features_description(dataset, s))
                for s in model_streams(arch, stream, attention)}
    upstream["split"] = split_identity(dataset, split)
    if pretrained_from(dataset) is not None:
        upstream["init"] = cache.short_hash(model_description(*pretrained_from(dataset), stream,
                                                              arch, attention, replicate))
    return cache.describe("model", params, upstream)


def model_record(dataset: str, stream: str, arch: str, attention: str, manifest: pd.DataFrame):
    """What predict needs to compute a model's inputs from a video (its model.json): the classes
    in the manifest's order, the frame size, TV-L1 settings, convnets and their weights."""
    from pipeline.predict import ConvnetRef, ModelRecord
    extraction = config.convnet().validate()
    streams = model_streams(arch, stream, attention)
    return ModelRecord(
        arch=arch, attention="motion" if model_inputs(arch, stream, attention).motion
        else "appearance", stream=stream,
        classes=list(manifest.drop_duplicates("label_index").sort_values("label_index")["label"]),
        inputs=model_inputs(arch, stream, attention), image_size=extraction.image_size,
        frame_size=config.video().size(), flow=flow_params() if "flow" in streams else None,
        convnets={s: ConvnetRef(str(convnet_folder(dataset, s).resolve()),
                                convnet_record(dataset, s)["weights_sha256"]) for s in streams},
        precision=extraction.precision, dtype=extraction.dtype)


def model_output(folder: str, dataset: str, split: int, stream: str, arch: str,
                 attention: str, replicate: int, description: dict, suffix: str = "") -> Path:
    """work/<dataset>/<folder>/<model name>-<hash><suffix>."""
    name = (f"{model_name(split, stream, arch, attention, replicate)}-"
            f"{cache.short_hash(description)}{suffix}")
    return config.paths().folder("work") / dataset / folder / name


def evaluation_description(dataset: str, split: int, stream: str, arch: str,
                           attention: str, replicate: int = 0) -> dict:
    section = config.evaluate().validate()
    return cache.describe("evaluation", {"segments": section.segments, "length": section.length},
                          {"model": cache.short_hash(model_description(
                              dataset, split, stream, arch, attention, replicate))})


def evaluation_folder(dataset: str, split: int, stream: str, arch: str, attention: str,
                      replicate: int = 0) -> Path:
    """Evaluate's folder of a model."""
    return model_output("evaluation", dataset, split, stream, arch, attention, replicate,
                        evaluation_description(dataset, split, stream, arch, attention,
                                               replicate))


def fusion_scores(dataset: str, split: int) -> dict[str, str]:
    """The user's iDT / object score files for this dataset and split ({dataset} and
    {split} in a [fusion] path are filled in, so one config serves several datasets)."""
    section = config.fusion()
    return {name: getattr(section, name).format(dataset=dataset, split=split)
            for name in ("idt", "objects") if getattr(section, name)}


def fusion_description(dataset: str, split: int, streams: tuple[str, ...],
                       replicate: int = 0) -> dict:
    """Fuse's settings and the evaluations of VideoLSTM's ``streams`` it fuses."""
    section = config.fusion()
    return cache.describe("fusion", {**{key: getattr(section, key) for key in (
        "videolstm_weight", "idt_weight", "objects_weight")}, **fusion_scores(dataset, split)},
        {stream: evaluation_folder(dataset, split, stream, "videolstm", "motion", replicate).name
         for stream in streams})


def tubes_description(dataset: str, split: int, stream: str, arch: str, attention: str,
                      replicate: int, theta: float, sigma: float, frac: float) -> dict:
    """Localize's settings and model."""
    return cache.describe("tubes", {"theta": theta, "sigma": sigma,
                                    "frac": frac, "boxes": "clipped to the frame"},
                          {"model": cache.short_hash(model_description(
                              dataset, split, stream, arch, attention, replicate))})


def saliency_tubes_description(dataset: str, split: int, replicate: int, theta: float,
                               sigma: float, frac: float) -> dict:
    """MotionSaliencyTubes' settings, its flow features and VideoLSTM's tubes (their scores)."""
    return cache.describe("tubes", {"theta": theta, "sigma": sigma,
                                    "frac": frac, "boxes": "clipped to the frame",
                                    "attention": "flow pool5 energy above the frame's lowest"},
                          {"flow": cache.short_hash(features_description(dataset, "flow")),
                           "scores": cache.short_hash(tubes_description(
                               dataset, split, "rgb", "videolstm", "motion", replicate, theta,
                               sigma, frac))})


def localization_evaluation_description(dataset: str, split: int, replicate: int, theta: float,
                                        sigma: float, frac: float) -> dict:
    """EvaluateLocalization's thresholds and the tubes it evaluates (LOCALIZED, BASELINE)."""
    tubes = {name: tubes_description(dataset, split, "rgb", arch, attention, replicate, theta,
                                     sigma, frac)
             for name, (arch, attention) in LOCALIZED.items()}
    tubes[BASELINE] = saliency_tubes_description(dataset, split, replicate, theta, sigma, frac)
    return cache.describe("localization-evaluation", {"ap": "voc-all-point",
        "iou": list(IOU_THRESHOLDS), "recall": list(RECALL_THRESHOLDS)},
        {name: cache.short_hash(description) for name, description in tubes.items()})
