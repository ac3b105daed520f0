"""Bytes each task writes, from each format's bytes per item at the configured shapes and
dtypes. Uncompressed sizes are exact; a codec's size is the uncompressed size times the ratio
calibration measured on synthetic frames (an estimate: real content compresses by its own
entropy); small outputs (tables, reports) are rough constants."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.plan.counts import model_kind
from pipeline.plan.graph import Node
from pipeline.plan.settings import Settings

VGG16_CONV = {"rgb": 14_714_688, "flow": 14_714_688 - 3 * 3 * 64}
"""Parameters of VGG-16's 13 convolutions (flow: 2 input channels instead of 3)."""
SMALL = {"Manifest": 200, "Evaluate": 1024, "Fuse": 1024}
"""Rough bytes per video of the tables these write (estimates)."""
SMALL_TASK = {"EvaluateLocalization": 100_000, "ReproducePaper": 2_000_000}
"""Rough bytes of what these write once per task (CSV tables; the report and its PNGs)."""


@dataclass(frozen=True)
class Size:
    """One task's bytes and how they were found."""

    bytes: int | None
    basis: str
    estimate: bool


def vgg16_parameters(stream: str, image_size: int, classes: int) -> int:
    """Parameters of a stream's VGG-16 at ``image_size`` (fc6 reads the (size/32)^2 x 512
    pool5) with a ``classes``-way classifier."""
    grid = image_size // 32
    return (VGG16_CONV[stream] + grid * grid * 512 * 4096 + 4096 + 4096 * 4096 + 4096
            + 4096 * classes + classes)


def feature_frame_bytes(settings: Settings) -> int:
    """Uncompressed bytes of one frame's pool5 (NxNx512) and fc7 (4096) at the feature dtype."""
    return (settings.grid ** 2 * 512 + 4096) * settings.dtype_bytes


def flow_pair_bytes(settings: Settings) -> int:
    """Uncompressed bytes of one pair's quantized flow: uint8, 2 channels at frame_size."""
    width, height = settings.frame_size
    return width * height * 2


def size(node: Node, items: dict, settings: Settings, ratios: dict[str, float],
         parameters: dict[str, int], log_bytes: dict[str, int], classes: int) -> Size:
    """Bytes ``node`` writes. ``ratios``: measured compressed/uncompressed ratios ("flow",
    "features", "video"); without one the uncompressed size is given as the upper bound.
    ``parameters``: weights per model kind; ``log_bytes``: its TensorBoard bytes per epoch."""
    family = node.family
    if family == "ComputeFlow":
        raw = items["pairs"] * flow_pair_bytes(settings)
        return _coded(raw, ratios.get("flow"), "gzip")
    if family == "ExtractFeatures":
        raw = items["frames"] * feature_frame_bytes(settings)
        return _coded(raw, ratios.get("features"), "lzf")
    if family == "GenerateSynthetic":
        width, height = settings.synthetic_size
        return _coded(items["frames"] * 3 * width * height, ratios.get("video"), "MJPG")
    if family == "FinetuneConvNet":
        weights = vgg16_parameters(node.params["stream"], settings.image_size, classes)
        return Size(4 * weights, "float32 weights of VGG-16", False)
    if family == "TrainModel":
        kind = model_kind(node.params["arch"], node.params["attention"])
        if kind not in parameters:
            return Size(None, "unknown without calibration (the model is not built)", True)
        return Size(2 * 4 * parameters[kind] + settings.epochs * log_bytes.get(kind, 0),
                    "float32 weights, RMSprop's slot per weight and the TensorBoard log "
                    "calibration wrote per epoch", False)
    if family == "Localize":
        per_frame = settings.grid ** 2 * 2 + 2 * 4 * 8
        return Size(items["frames"] * per_frame, "float16 attention maps and boxes per frame",
                    False)
    if family in SMALL:
        return Size(items.get("videos", 0) * SMALL[family], "tables (rough)", True)
    return Size(SMALL_TASK.get(family, 0), "tables and figures (rough)", True)


def _coded(raw: int, ratio: float | None, codec: str) -> Size:
    if ratio is None:
        return Size(raw, f"uncompressed ({codec} makes it smaller; calibrate to measure)", True)
    return Size(int(raw * ratio), f"{codec} at the ratio measured on synthetic frames "
                f"({ratio:.2f})", True)
