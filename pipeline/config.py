"""The pipeline's settings: one Luigi config section per concern, read from luigi.cfg (the
embedded CPU default) or the file that LUIGI_CONFIG_PATH names (e.g. configs/paper.cfg).

Each section validates its values when first used, so a bad setting stops the run with a
one-line message naming it before any long work starts; `preflight` and `check_task_sections`
check every file, section, key and value in force (pipeline/config_files.py) and every setting
at import, before any work.
"""

from __future__ import annotations

import os
import string
from pathlib import Path

import luigi

from pipeline import config_files as files
from pipeline.config_files import ConfigError

DATASETS = ("synthetic", "ucf101", "hmdb51", "thumos13")
VGG16_LAYERS = ("block1_conv1", "block1_conv2", "block1_pool", "block2_conv1", "block2_conv2",
                "block2_pool", "block3_conv1", "block3_conv2", "block3_conv3", "block3_pool",
                "block4_conv1", "block4_conv2", "block4_conv3", "block4_pool", "block5_conv1",
                "block5_conv2", "block5_conv3", "block5_pool", "flatten", "fc1", "fc2",
                "predictions")
"""The layers of Keras' VGG-16 after its input, in order, known without Keras so that
[convnet] finetune_from is checked before any work."""
FUSION_PLACEHOLDERS = ("dataset", "split")
MAX_REPLICATES = 20
"""Each replicate trains, evaluates and localizes every recurrent model once more."""
REPLICATE_SEED_STRIDE = 1000


def require(condition: bool, setting: str, message: str) -> None:
    """Raise `setting_error` for ``[section] key`` unless ``condition`` holds."""
    if not condition:
        raise setting_error(setting, message)


def setting_error(setting: str, message: str) -> ConfigError:
    """A ConfigError about ``[section] key`` naming the file that sets it (or the one to set it
    in)."""
    section, key = setting[1:].split("] ", 1)
    source = files.source_of(section, key)
    return ConfigError(f"{setting} {message} "
                       f"({f'set in {source}' if source else f'set it in {config_files()}'})")


def config_files() -> str:
    """The config file(s) in force, for error messages."""
    return os.environ.get("LUIGI_CONFIG_PATH") or "luigi.cfg"


class run(luigi.Config):
    """What to run: dataset, profile name (names the reports folder), sharding, strictness,
    the seed, how many times every recurrent model is trained (``replicates``, each with its
    own training seed, on the same cached features) so that a result is not one seed's, and
    the GPUs the device tasks lease (pipeline/devices.py): devices = auto (every GPU this
    machine shows), none (CPU only) or a list of GPU indices such as 0,1,3; and TensorFlow's
    threads in a device task on the CPU (0: TensorFlow's default, one per core)."""

    dataset = luigi.ChoiceParameter(choices=DATASETS, default="synthetic")
    profile = luigi.Parameter(default="cpu")
    shards = luigi.IntParameter(default=4)
    strict = luigi.BoolParameter(default=False, parsing=luigi.BoolParameter.EXPLICIT_PARSING)
    seed = luigi.IntParameter(default=0)
    replicates = luigi.IntParameter(default=1)
    devices = luigi.Parameter(default="auto")
    threads = luigi.IntParameter(default=0)

    def validate(self) -> "run":
        require(self.shards > 0, "[run] shards", f"must be > 0, got {self.shards}")
        require(self.seed >= 0, "[run] seed", f"must be >= 0, got {self.seed}")
        require(0 < self.replicates <= MAX_REPLICATES, "[run] replicates",
                f"must be in [1, {MAX_REPLICATES}], got {self.replicates}")
        require(self.threads >= 0, "[run] threads", f"must be >= 0, got {self.threads}")
        self.gpus()
        return self

    def training_seed(self, replicate: int) -> int:
        """The seed of a model's replicate: [run] seed for replicate 0 (the convnets' seed too),
        seed + REPLICATE_SEED_STRIDE * replicate for the others."""
        if isinstance(replicate, bool) or not isinstance(replicate, int) or replicate < 0:
            raise ValueError(f"a replicate is an integer >= 0, got {replicate!r}")
        return self.seed + REPLICATE_SEED_STRIDE * replicate

    def gpus(self) -> tuple[str, ...]:
        """The GPUs device tasks lease on this machine (none: they run on the CPU)."""
        from pipeline import devices
        try:
            return devices.gpus(self.devices)
        except ValueError as error:
            raise setting_error("[run] devices", f"{error}") from None


class paths(luigi.Config):
    """Where things live. ``cache`` may be a folder shared between users and machines."""

    data = luigi.Parameter(default="data")
    cache = luigi.Parameter(default="cache")
    work = luigi.Parameter(default="work")
    reports = luigi.Parameter(default="reports")

    def folder(self, name: str) -> Path:
        return Path(getattr(self, name)).expanduser()


class synthetic(luigi.Config):
    """Size of the embedded synthetic dataset (generated on first use under [paths] data)."""

    classes = luigi.IntParameter(default=8)
    train_per_class = luigi.IntParameter(default=12)
    test_per_class = luigi.IntParameter(default=6)
    frames = luigi.IntParameter(default=32)
    width = luigi.IntParameter(default=160)
    height = luigi.IntParameter(default=120)
    seed = luigi.IntParameter(default=0)
    context = luigi.FloatParameter(default=0.0)


class ucf101(luigi.Config):
    """UCF101 on disk: the UCF-101 video folder and the ucfTrainTestlist folder."""

    videos = luigi.Parameter(default="")
    splits = luigi.Parameter(default="")
    split = luigi.IntParameter(default=1)


class hmdb51(luigi.Config):
    """HMDB51 on disk: class folders of videos and testTrainMulti_7030_splits."""

    videos = luigi.Parameter(default="")
    splits = luigi.Parameter(default="")


class thumos13(luigi.Config):
    """THUMOS13 localization (UCF101-24): UCF101's videos and splits plus pyannot.pkl boxes."""

    videos = luigi.Parameter(default="")
    splits = luigi.Parameter(default="")
    annotations = luigi.Parameter(default="")


class video(luigi.Config):
    """frame_size = WIDTHxHEIGHT: every frame is stretched to this size (whatever its own size
    and aspect ratio) before TV-L1 flow and before the rgb stream's VGG preprocessing (which
    then resizes to [convnet] image_size), in ComputeFlow, ExtractFeatures, FinetuneConvNet and
    predict alike. The authors' 340x256 (with flow bound 20 at that size) is the default and
    configs/paper.cfg's; the embedded CPU profile uses the synthetic frames' 160x120. Boxes
    (localization, predict) stay in the original video's pixels."""

    frame_size = luigi.Parameter(default="340x256")

    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        from pipeline.video import parse_frame_size
        try:
            return parse_frame_size(self.frame_size)
        except ValueError as error:
            raise setting_error("[video] frame_size", f"{error}") from None


class flow(luigi.Config):
    """TV-L1 parameters (OpenCV's defaults), the clip bound, the solver (backend) and how one
    shard task runs it: processes (OpenCV's solver, or decoding for TensorFlow's) and the
    pairs per TensorFlow batch."""

    tau = luigi.FloatParameter(default=0.25)
    lambda_ = luigi.FloatParameter(default=0.15)
    theta = luigi.FloatParameter(default=0.3)
    nscales = luigi.IntParameter(default=5)
    warps = luigi.IntParameter(default=5)
    epsilon = luigi.FloatParameter(default=0.01)
    inner_iterations = luigi.IntParameter(default=30)
    outer_iterations = luigi.IntParameter(default=10)
    scale_step = luigi.FloatParameter(default=0.8)
    gamma = luigi.FloatParameter(default=0.0)
    median_filtering = luigi.IntParameter(default=5)
    bound = luigi.FloatParameter(default=20.0)
    backend = luigi.ChoiceParameter(choices=("opencv", "tensorflow"), default="opencv")
    processes = luigi.IntParameter(default=0)
    batch_pairs = luigi.IntParameter(default=32)

    def params(self):
        """The TV-L1 settings (pipeline.flow.tvl1.TVL1Params, which checks them)."""
        from pipeline.flow.tvl1 import TVL1Params
        return TVL1Params(**{key: getattr(self, key) for key in (
            "tau", "lambda_", "theta", "nscales", "warps", "epsilon", "inner_iterations",
            "outer_iterations", "scale_step", "gamma", "median_filtering", "bound", "backend")})

    def worker_count(self) -> int:
        """Processes computing flow in one shard task; 0 means one per core."""
        require(self.processes >= 0, "[flow] processes", f"must be >= 0, got {self.processes}")
        require(self.batch_pairs >= 1, "[flow] batch_pairs",
                f"must be >= 1, got {self.batch_pairs}")
        return self.processes or os.cpu_count() or 1


class convnet(luigi.Config):
    """The VGG-16 stream networks: weights, input size, fine-tuning and extraction."""

    weights = luigi.Parameter(default="none")
    image_size = luigi.IntParameter(default=224)
    finetune_from = luigi.Parameter(default="fc1")
    finetune_epochs = luigi.IntParameter(default=0)
    finetune_frames = luigi.IntParameter(default=4)
    learning_rate = luigi.FloatParameter(default=1e-4)
    batch_size = luigi.IntParameter(default=16)
    precision = luigi.ChoiceParameter(choices=("float32", "mixed_bfloat16"), default="float32")
    dtype = luigi.ChoiceParameter(choices=("float16", "float32"), default="float16")

    def validate(self) -> "convnet":
        require(self.image_size >= 32 and self.image_size % 32 == 0, "[convnet] image_size",
                f"must be a multiple of 32 >= 32, got {self.image_size}")
        require(self.weights == "none" or self.image_size == 224, "[convnet] image_size",
                f"must be 224 with ImageNet weights, got {self.image_size}")
        require(self.finetune_epochs >= 0, "[convnet] finetune_epochs",
                f"must be >= 0, got {self.finetune_epochs}")
        require(self.finetune_frames > 0, "[convnet] finetune_frames",
                f"must be > 0, got {self.finetune_frames}")
        require(self.batch_size > 0, "[convnet] batch_size", f"must be > 0, got {self.batch_size}")
        require(self.learning_rate > 0, "[convnet] learning_rate",
                f"must be > 0, got {self.learning_rate}")
        require(self.finetune_from in VGG16_LAYERS, "[convnet] finetune_from",
                f"= {self.finetune_from} is not a VGG-16 layer; choose one of "
                f"{', '.join(VGG16_LAYERS)}")
        return self


class model(luigi.Config):
    """Recurrent model sizes (paper: 512 hidden and attention channels, 3x3 kernels, 1x1
    attention, 1024 dense, dropout 0.7); the embedded default is a CPU-sized profile.

    Where the paper is silent (models/sizes.py ModelSizes says more):
    initial_state: "zero" (default) or "mean", the attending models' initial states from the
        input's mean over time, as in the authors' code; "zero" keeps streaming prediction
        exact frame by frame.
    dense_activation: "relu" (default) or "tanh" (the authors') on the 1,024-unit layer.
    alstm_motion_input: "pool5" (default) or "fc7" (the authors'), the flow feature the ALSTM's
        motion layer reads per frame.
    """

    hidden = luigi.IntParameter(default=512)
    attention = luigi.IntParameter(default=512)
    kernel = luigi.IntParameter(default=3)
    attention_kernel = luigi.IntParameter(default=1)
    dense = luigi.IntParameter(default=1024)
    dropout = luigi.FloatParameter(default=0.7)
    initial_state = luigi.Parameter(default="zero")
    dense_activation = luigi.Parameter(default="relu")
    alstm_motion_input = luigi.Parameter(default="pool5")

    def sizes(self):
        from models.sizes import ModelSizes
        try:
            return ModelSizes(hidden=self.hidden, attention=self.attention, kernel=self.kernel,
                              attention_kernel=self.attention_kernel, dense=self.dense,
                              dropout=self.dropout, initial_state=self.initial_state,
                              dense_activation=self.dense_activation,
                              alstm_motion_input=self.alstm_motion_input)
        except ValueError as error:
            raise ConfigError(f"[model] {error} (set it in {config_files()})") from error


class train(luigi.Config):
    """Training on cached features: snippet length, batch, epochs, RMSprop (paper 5.2)."""

    epochs = luigi.IntParameter(default=30)
    batch_size = luigi.IntParameter(default=128)
    snippet = luigi.IntParameter(default=30)
    learning_rate = luigi.FloatParameter(default=0.001)
    rho = luigi.FloatParameter(default=0.9)
    readers = luigi.IntParameter(default=0)

    def validate(self) -> "train":
        for key in ("epochs", "batch_size", "snippet"):
            require(getattr(self, key) > 0, f"[train] {key}",
                    f"must be > 0, got {getattr(self, key)}")
        require(self.learning_rate > 0, "[train] learning_rate",
                f"must be > 0, got {self.learning_rate}")
        require(0 < self.rho < 1, "[train] rho", f"must be in (0, 1), got {self.rho}")
        require(self.readers >= 0, "[train] readers",
                f"must be >= 0 (0: one per core), got {self.readers}")
        return self


class evaluate(luigi.Config):
    """Test-time sampling: equally spaced segments per video and their length (paper 5.2)."""

    segments = luigi.IntParameter(default=25)
    length = luigi.IntParameter(default=30)

    def validate(self) -> "evaluate":
        require(self.segments > 0, "[evaluate] segments", f"must be > 0, got {self.segments}")
        require(self.length > 0, "[evaluate] length", f"must be > 0, got {self.length}")
        return self


class fusion(luigi.Config):
    """Table 4: external per-video score files (CSV, see pipeline/fusion.py) and the exponents
    of the weighted product; an empty path leaves that row of Table 4 out. A path may hold
    {dataset} and {split}, e.g. ``scores/idt_{dataset}_split{split}.csv``, for runs over
    several datasets or splits."""

    idt = luigi.Parameter(default="")
    objects = luigi.Parameter(default="")
    videolstm_weight = luigi.FloatParameter(default=1.0)
    idt_weight = luigi.FloatParameter(default=1.0)
    objects_weight = luigi.FloatParameter(default=1.0)

    def validate(self) -> "fusion":
        """A score file's path may hold only {dataset} and {split}; without them the file must
        exist, with them the folder before the first one (which datasets a run fuses is known
        only to its tasks; Fuse names a missing file)."""
        for key in ("idt", "objects"):
            path = getattr(self, key)
            try:
                fields = {field for _, field, _, _ in string.Formatter().parse(path) if field}
            except ValueError as error:
                raise setting_error(f"[fusion] {key}", f"= {path}: {error}") from None
            unknown = sorted(fields - set(FUSION_PLACEHOLDERS))
            require(not unknown, f"[fusion] {key}", f"= {path} holds {{{', '.join(unknown)}}}: "
                    "a path may hold only {dataset} and {split}")
            fixed = Path(path.split("{")[0]).expanduser()
            needed = fixed.parent if fields else fixed
            require(not path or needed.exists(), f"[fusion] {key}",
                    f"= {path}: {needed} does not exist")
        return self


def dataset_folders(dataset: str) -> None:
    """A real dataset's folders must be set and exist (the synthetic one is generated)."""
    if dataset == "synthetic":
        return
    section = {"ucf101": ucf101, "hmdb51": hmdb51, "thumos13": thumos13}[dataset]()
    for key in ("videos", "splits", "annotations"):
        value = getattr(section, key, None)
        if value is None:
            continue
        require(bool(value), f"[{dataset}] {key}", "is not set: point it at the dataset's "
                f"{key} folder or file")
        require(Path(value).expanduser().exists(), f"[{dataset}] {key}",
                f"= {value} does not exist: point it at the dataset's {key}")


def check_device_leasing() -> None:
    """With GPUs to lease, every task must run in a process of its own under the lease
    (pipeline.devices.TaskLease), and the local scheduler lets as many device tasks run as
    there are GPUs ([resources] gpu, unless set)."""
    import luigi.configuration
    import luigi.worker
    from pipeline import devices
    gpus = run().gpus()
    if not gpus:
        return
    worker = luigi.worker.worker()
    require(worker.force_multiprocessing, "[worker] force_multiprocessing",
            "must be true with GPUs to lease ([run] devices): a process keeps the first GPU "
            "its TensorFlow saw")
    require(worker.task_process_context == devices.TASK_PROCESS_CONTEXT,
            "[worker] task_process_context", f"must be {devices.TASK_PROCESS_CONTEXT} with GPUs "
            f"to lease ([run] devices), got {worker.task_process_context}")
    settings = luigi.configuration.get_config()
    if not settings.has_option("resources", "gpu"):
        if not settings.has_section("resources"):
            settings.add_section("resources")
        settings.set("resources", "gpu", str(len(gpus)))


def preflight(datasets: list[str] | None = None) -> None:
    """Check the config files and every setting before any work starts (default datasets: [run]
    dataset); a ConfigError names the first bad one. Call it before anything reads a setting;
    a task's section is checked by `check_task_sections` once the task classes exist."""
    from models.imagenet import WeightsNotFoundError, find_imagenet_weights
    from pipeline.datasets.synthetic import SyntheticSpec
    files.check_config(unknown_sections_allowed=True)
    datasets = [run().dataset] if datasets is None else datasets
    run().validate()
    video().size()
    flow().worker_count()
    convnet().validate()
    model().sizes()
    train().validate()
    evaluate().validate()
    fusion().validate()
    check_device_leasing()
    section = synthetic()
    checks = {"[synthetic]": lambda: SyntheticSpec(
        classes=section.classes, train_per_class=section.train_per_class,
        test_per_class=section.test_per_class, frames=section.frames, width=section.width,
        height=section.height, seed=section.seed, context=section.context),
        "[flow]": lambda: flow().params()}
    for name, check in checks.items():
        try:
            check()
        except ValueError as error:
            raise ConfigError(f"{name} {error} (set it in {config_files()})") from error
    if convnet().weights != "none":
        try:
            find_imagenet_weights(convnet().weights)
        except WeightsNotFoundError as error:
            raise ConfigError(f"[convnet] {error}") from error
    for dataset in datasets:
        require(dataset in DATASETS, "[run] dataset", f"must be one of {DATASETS}, got {dataset}")
        dataset_folders(dataset)


def check_task_sections() -> None:
    """Every config section must now name a registered class (a task's section may set its
    parameters): call it once the task classes are defined."""
    files.check_config(unknown_sections_allowed=False)
