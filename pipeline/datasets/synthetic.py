"""Deterministic synthetic action dataset, written in UCF101's own on-disk layout.

Each video shows one ACTOR among 2-4 look-alike DISTRACTORS on a textured background that
pans slowly. The class is the actor's motion pattern (trajectory shape and direction), faster
and more coherent than the distractors' slow drift; a single frame cannot tell the actor apart.
With probability `context` the background uses the class's own palette and stripes, otherwise
another class's, so appearance is partly informative and motion is needed to do well.

Layout under `root`: `UCF-101/<Class>/v_<Class>_gGG_cCC.avi`, `ucfTrainTestlist/classInd.txt`,
`trainlist0N.txt` and `testlist0N.txt` (N = 1..3, rotating which groups are test, as UCF101
does), `annotations/pyannot.pkl` (the THUMOS13 reader's format: one tube per video over the
frames where the actor is visible) and `synthetic.json` (the spec).
"""

from __future__ import annotations

import colorsys
import dataclasses
import json
import math
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pipeline.datasets.thumos13 import write_annotations
from pipeline.video import write_video

CLASS_NAMES = (
    "MoveRight", "MoveLeft", "MoveUp", "MoveDown", "CircleClockwise", "CircleCounter",
    "ZigZag", "Bounce", "DiagonalDown", "DiagonalUp", "Shake", "Swing",
)
VIDEOS_DIR = "UCF-101"
SPLITS_DIR = "ucfTrainTestlist"
ANNOTATIONS_FILE = "annotations/pyannot.pkl"
SPEC_FILE = "synthetic.json"
GENERATOR_VERSION = 1
N_SPLITS = 3
_LINEAR = {"MoveRight", "MoveLeft", "MoveUp", "MoveDown", "DiagonalDown", "DiagonalUp"}
_VISIBLE_FRACTION = 0.25


@dataclass(frozen=True)
class SyntheticSpec:
    """Settings of a synthetic dataset; every field changes the generated content."""

    classes: int = 8
    train_per_class: int = 12
    test_per_class: int = 6
    frames: int = 32
    width: int = 160
    height: int = 120
    seed: int = 0
    context: float = 0.5

    def __post_init__(self):
        minimum = {"classes": 2, "train_per_class": 1, "test_per_class": 1, "frames": 2,
                   "width": 32, "height": 24, "seed": 0}
        for name, low in minimum.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"SyntheticSpec.{name} must be an integer >= {low}, got {value!r}")
        if self.classes > len(CLASS_NAMES):
            raise ValueError(
                f"SyntheticSpec.classes must be at most {len(CLASS_NAMES)}, got {self.classes}")
        for name in ("width", "height"):
            if getattr(self, name) % 2:
                raise ValueError(
                    f"SyntheticSpec.{name} must be even (MJPG), got {getattr(self, name)}")
        if not isinstance(self.context, (int, float)) or not 0.0 <= self.context <= 1.0:
            raise ValueError(f"SyntheticSpec.context must lie in [0, 1], got {self.context!r}")
        if self.groups > 99:
            raise ValueError(
                f"SyntheticSpec.train_per_class + test_per_class = "
                f"{self.train_per_class + self.test_per_class} needs {self.groups} groups; "
                "at most 99 fit UCF101's gGG names"
            )

    @property
    def clips_per_group(self) -> int:
        """Largest clip count <= 4 that divides both the train and the test videos per class."""
        return max(c for c in range(1, 5)
                   if self.train_per_class % c == 0 and self.test_per_class % c == 0)

    @property
    def groups(self) -> int:
        return (self.train_per_class + self.test_per_class) // self.clips_per_group

    def test_groups(self, split: int) -> set[int]:
        """0-based groups held out for testing in split 1..3: consecutive blocks, rotating."""
        n_test = self.test_per_class // self.clips_per_group
        return {((split - 1) * n_test + j) % self.groups for j in range(n_test)}


def video_stem(class_name: str, group: int, clip: int) -> str:
    """UCF101 file stem for 0-based group and clip numbers, e.g. v_MoveLeft_g01_c02."""
    return f"v_{class_name}_g{group + 1:02d}_c{clip + 1:02d}"


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return 255.0 * np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float32)


def _background(spec: SyntheticSpec, palette: int, pad: int,
                rng: np.random.Generator) -> np.ndarray:
    """(H + 2 pad, W + 2 pad, 3) float32 texture: smooth noise mixed with the palette's stripes."""
    th, tw = spec.height + 2 * pad, spec.width + 2 * pad
    hue = palette * 0.618034 + rng.uniform(-0.03, 0.03)
    angle = palette * math.pi / len(CLASS_NAMES)
    period = min(spec.width, spec.height) * (0.12 + 0.05 * (palette % 4))
    coarse = rng.random((th // 12 + 2, tw // 12 + 2)).astype(np.float32)
    noise = np.clip(cv2.resize(coarse, (tw, th), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)
    yy, xx = np.mgrid[:th, :tw].astype(np.float32)
    phase = rng.uniform(0, 2 * math.pi)
    along = xx * math.cos(angle) + yy * math.sin(angle)
    stripes = 0.5 + 0.5 * np.sin(2 * math.pi * along / period + phase)
    weight = (0.5 * noise + 0.5 * stripes)[..., None]
    return _hsv(hue, 0.45, 0.75) * (1 - weight) + _hsv(hue + 0.1, 0.7, 0.35) * weight


def _cycles(rng: np.random.Generator, low: float, high: float, frames: int) -> float:
    """Periods over the video, capped so one frame never advances more than 1/6 period."""
    return min(rng.uniform(low, high), (frames - 1) / 6)


def _actor_path(name: str, spec: SyntheticSpec, rng: np.random.Generator) -> np.ndarray:
    """(T, 2) actor centre offsets in pixels, before placement, for class `name`."""
    w, h, t = spec.width, spec.height, spec.frames
    u = np.linspace(0.0, 1.0, t)
    s = rng.uniform(0.8, 1.2)
    phase = rng.uniform(0, 2 * math.pi)
    if name in _LINEAR:
        dx, dy = {"MoveRight": (0.6 * w, 0), "MoveLeft": (-0.6 * w, 0), "MoveUp": (0, -0.6 * h),
                  "MoveDown": (0, 0.6 * h), "DiagonalDown": (0.5 * w, 0.5 * h),
                  "DiagonalUp": (0.5 * w, -0.5 * h)}[name]
        return np.stack([s * dx * u, s * dy * u], axis=1)
    if name in ("CircleClockwise", "CircleCounter"):
        sign = 1 if name == "CircleClockwise" else -1
        theta = phase + sign * 2 * math.pi * _cycles(rng, 1.0, 1.5, t) * u
        radius = s * 0.28 * min(w, h)
        return np.stack([radius * np.cos(theta), radius * np.sin(theta)], axis=1)
    if name == "ZigZag":
        x = rng.uniform(-0.5, 0.5) + _cycles(rng, 2.0, 3.0, t) * u
        triangle = 4 * np.abs(x - np.floor(x + 0.5)) - 1
        return np.stack([rng.choice([-1, 1]) * s * 0.5 * w * u, 0.25 * h * triangle], axis=1)
    if name == "Bounce":
        bounces = 2 * _cycles(rng, 1.0, 1.5, t)
        y = -s * 0.45 * h * np.abs(np.sin(math.pi * bounces * u + phase))
        return np.stack([rng.uniform(-0.1, 0.1) * w * u, y], axis=1)
    if name == "Shake":
        x = s * 0.1 * w * np.sin(2 * math.pi * _cycles(rng, 4.0, 6.0, t) * u + phase)
        return np.stack([x, np.zeros_like(u)], axis=1)
    # Swing: a pendulum arc below a pivot
    alpha = 0.7 * np.sin(2 * math.pi * _cycles(rng, 1.5, 2.5, t) * u + phase)
    length = s * 0.5 * h
    return np.stack([length * np.sin(alpha), length * np.cos(alpha)], axis=1)


def _drift_path(spec: SyntheticSpec, rng: np.random.Generator) -> np.ndarray:
    """(T, 2) distractor offsets: a slow straight drift plus a small slow wobble."""
    u = np.linspace(0.0, 1.0, spec.frames)[:, None]
    scale = min(spec.width, spec.height)
    direction = rng.uniform(0, 2 * math.pi, size=2)
    heading = np.array([math.cos(direction[0]), math.sin(direction[0])])
    drift = rng.uniform(0, 0.12) * scale * heading
    wobble = rng.uniform(0.5, 1.5) * 0.01 * scale * np.stack(
        [np.cos(2 * math.pi * rng.uniform(0.5, 1.5) * u[:, 0] + direction[1]),
         np.sin(2 * math.pi * rng.uniform(0.5, 1.5) * u[:, 0] + direction[1])], axis=1)
    return drift * u + wobble


def _place(path: np.ndarray, margin: float, keep: float, at_end: bool, spec: SyntheticSpec,
           rng: np.random.Generator) -> np.ndarray:
    """Scale and shift `path` so a `keep` fraction of it, its first frames or (`at_end`) its last,
    stays `margin` inside the frame; the rest may leave it."""
    k = max(1, math.ceil(keep * len(path)))
    window = slice(len(path) - k, None) if at_end else slice(0, k)
    size = np.array([spec.width, spec.height])
    span = path[window].max(0) - path[window].min(0)
    path = path * min(1.0, float(np.min((size - 2 * margin) / np.maximum(span, 1e-9))))
    low, high = margin - path[window].min(0), size - margin - path[window].max(0)
    return path + rng.uniform(low, np.maximum(low, high))


_ANGLES = np.linspace(0, 2 * math.pi, 24, endpoint=False)
_UNIT_SHAPES = {
    "ellipse": np.stack([np.cos(_ANGLES), np.sin(_ANGLES)], axis=1),
    "box": np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64),
    "diamond": np.array([[0, -1], [1, 0], [0, 1], [-1, 0]], dtype=np.float64),
}


def _blob(spec: SyntheticSpec, rng: np.random.Generator) -> dict:
    """A blob's look: shape, half-sizes, rotation and colour, one distribution for all blobs."""
    radius = min(spec.width, spec.height) * rng.uniform(0.07, 0.1)
    angle = rng.uniform(0, math.pi)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    outline = _UNIT_SHAPES[rng.choice(list(_UNIT_SHAPES))] * radius * rng.uniform(0.8, 1.25, size=2)
    color = _hsv(rng.uniform(), rng.uniform(0.8, 1.0), rng.uniform(0.85, 1.0))
    return {"outline": outline @ rotation.T, "color": color, "inner": 0.45 * color}


def _fill(img: np.ndarray, points: np.ndarray, color: np.ndarray):
    fixed = np.round(points * 16).astype(np.int32)
    cv2.fillPoly(img, [fixed], color.tolist(), lineType=cv2.LINE_AA, shift=4)


def _area(boxes: np.ndarray) -> np.ndarray:
    return np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)


def render_video(spec: SyntheticSpec, class_index: int, rng: np.random.Generator):
    """Frames (T, H, W, 3) uint8 RGB and the actor's (T, 4) x1, y1, x2, y2 boxes clipped to the
    frame, with a (T,) flag marking frames where at least a quarter of its box is in view."""
    name = CLASS_NAMES[class_index]
    others = [k for k in range(spec.classes) if k != class_index]
    palette = class_index if rng.random() < spec.context else int(rng.choice(others))
    pan_speed = rng.uniform(0.002, 0.005) * spec.width
    pad = math.ceil(0.005 * spec.width * (spec.frames - 1)) + 1
    texture = _background(spec, palette, pad, rng)
    pan_angle = rng.uniform(0, 2 * math.pi)
    heading = np.array([math.cos(pan_angle), math.sin(pan_angle)])
    pan = pan_speed * np.arange(spec.frames)[:, None] * heading

    blobs = [_blob(spec, rng) for _ in range(1 + rng.integers(2, 5))]
    for i, blob in enumerate(blobs):
        margin = float(np.abs(blob["outline"]).max()) + 1
        if i == 0:
            # only straight movers may leave the frame: their visible frames stay contiguous
            linear = name in _LINEAR
            keep = rng.uniform(0.5, 1.0) if linear else 1.0
            at_end = linear and bool(rng.integers(2))
            blob["centres"] = _place(_actor_path(name, spec, rng), margin, keep, at_end, spec, rng)
        else:
            blob["centres"] = _place(_drift_path(spec, rng), margin, 1.0, False, spec, rng)
    order = rng.permutation(len(blobs))

    frames = np.empty((spec.frames, spec.height, spec.width, 3), dtype=np.uint8)
    centre = ((texture.shape[1] - 1) / 2, (texture.shape[0] - 1) / 2)
    for t in range(spec.frames):
        view = cv2.getRectSubPix(texture, (spec.width, spec.height),
                                 (centre[0] + pan[t, 0], centre[1] + pan[t, 1]))
        img = np.clip(view, 0, 255).astype(np.uint8)
        for i in order:
            points = blobs[i]["outline"] + blobs[i]["centres"][t]
            _fill(img, points, blobs[i]["color"])
            _fill(img, 0.5 * blobs[i]["outline"] + blobs[i]["centres"][t], blobs[i]["inner"])
        frames[t] = img

    actor = blobs[0]["outline"][None] + blobs[0]["centres"][:, None]
    full = np.concatenate([np.floor(actor.min(1)), np.ceil(actor.max(1))], axis=1)
    limit = np.array([spec.width, spec.height] * 2, dtype=np.float64)
    boxes = np.clip(full, 0, limit)
    visible = _area(boxes) >= _VISIBLE_FRACTION * _area(full)
    return frames, boxes.astype(np.float32), visible


def _write_dataset(root: Path, spec: SyntheticSpec):
    names = CLASS_NAMES[: spec.classes]
    videos, splits = root / VIDEOS_DIR, root / SPLITS_DIR
    splits.mkdir(parents=True)
    (root / ANNOTATIONS_FILE).parent.mkdir(parents=True)
    tubes, labels, numf = {}, {}, {}
    for k, name in enumerate(names):
        (videos / name).mkdir(parents=True)
        for group in range(spec.groups):
            for clip in range(spec.clips_per_group):
                rng = np.random.default_rng([spec.seed, k, group, clip])
                frames, boxes, visible = render_video(spec, k, rng)
                stem = video_stem(name, group, clip)
                write_video(videos / name / f"{stem}.avi", frames)
                shown = np.flatnonzero(visible)  # contiguous: only straight movers leave
                start, end = int(shown[0]), int(shown[-1]) + 1
                key = f"{name}/{stem}"
                tubes[key] = [{"start": start, "boxes": boxes[start:end]}]
                labels[key], numf[key] = k, spec.frames
    write_annotations(root / ANNOTATIONS_FILE, tubes, labels, numf)

    (splits / "classInd.txt").write_text("".join(f"{k + 1} {n}\n" for k, n in enumerate(names)))
    for split in range(1, N_SPLITS + 1):
        held_out = spec.test_groups(split)
        train, test = [], []
        for k, name in enumerate(names):
            for group in range(spec.groups):
                for clip in range(spec.clips_per_group):
                    rel = f"{name}/{video_stem(name, group, clip)}.avi"
                    if group in held_out:
                        test.append(rel)
                    else:
                        train.append(f"{rel} {k + 1}")
        (splits / f"trainlist{split:02d}.txt").write_text("".join(f"{line}\n" for line in train))
        (splits / f"testlist{split:02d}.txt").write_text("".join(f"{line}\n" for line in test))
    (root / SPEC_FILE).write_text(json.dumps(
        {"generator_version": GENERATOR_VERSION, "spec": dataclasses.asdict(spec)}, indent=2))


def _check_existing(root: Path, spec: SyntheticSpec):
    spec_file = root / SPEC_FILE
    if not spec_file.is_file():
        raise FileExistsError(f"{root}: exists but is not a synthetic dataset (no {SPEC_FILE})")
    try:
        stored = json.loads(spec_file.read_text())
    except ValueError as err:
        raise ValueError(f"{spec_file}: not valid JSON ({err})") from err
    wanted = {"generator_version": GENERATOR_VERSION, **dataclasses.asdict(spec)}
    found = {"generator_version": stored.get("generator_version"), **stored.get("spec", {})}
    differ = [f"{k}={found.get(k)!r} there, {v!r} requested"
              for k, v in wanted.items() if found.get(k) != v]
    if differ:
        raise ValueError(
            f"{spec_file}: synthetic dataset was generated with other settings: "
            + "; ".join(differ))


def generate(root: str | os.PathLike, spec: SyntheticSpec = SyntheticSpec()) -> Path:
    """Generate the dataset at `root` unless it is already there with the same spec.

    Written into a temporary sibling folder renamed into place when complete, so an
    interrupted run never leaves a dataset that looks finished.
    """
    root = Path(root)
    if root.exists():
        _check_existing(root, spec)
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.parent / f".{root.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()  # not mkdtemp: its 0700 mode would hide the dataset from other users
    try:
        _write_dataset(tmp, spec)
        try:
            tmp.rename(root)
        except OSError:
            if not root.exists():
                raise
            _check_existing(root, spec)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root
