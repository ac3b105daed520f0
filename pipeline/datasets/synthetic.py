"""Deterministic synthetic action dataset, written in UCF101's own on-disk layout.

Built on the paper's premise: an actor in clutter, where motion tells *where* the action is
and appearance and motion together tell *what* it is. A class is a pair (look, motion): the
actor wears one of four looks (a colour and a texture that moves with it: horizontal or
vertical stripes, a checkerboard, dots) and performs one of three motions (a horizontal
swing, a vertical bounce, a circle). Each video also shows two static or slowly drifting
distractors wearing the looks of other classes, all three objects of one size and shape, on a
textured background that pans slowly; so a single frame cannot tell which object acts, flow
alone cannot tell the actor's look, and RGB must know where to look. The actor spans about
two fifths of the frame's width and height, at least 2 x 2 cells of a 5 x 5 attention grid.
With probability `context` the background uses the class's own palette (a scene cue).

Classes are numbered motion-major: class k is motion k // 4 with look k % 4, so the default
8 classes are the 4 looks x 2 motions.

Layout under `root`: `UCF-101/<Class>/v_<Class>_gGG_cCC.avi`, `ucfTrainTestlist/classInd.txt`,
`trainlist0N.txt` and `testlist0N.txt` (N = 1..3, rotating which groups are test, as UCF101
does), `annotations/pyannot.pkl` (the UCF101-24 format: one tube per video, every frame) and
`synthetic.json` (the spec and the generator version).
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

LOOKS = {"Red": 0.0, "Yellow": 0.15, "Green": 0.35, "Blue": 0.62}
"""The actor's looks and their hues."""
PATTERNS = {"Red": "stripes across", "Yellow": "stripes down", "Green": "checkerboard",
            "Blue": "dots"}
"""Each look's texture, painted in a darker shade of its colour."""
PERIOD = 0.0625
"""The textures' period as a fraction of the frame width (10 px at 160)."""
MOTIONS = ("Swing", "Bounce", "Circle")
CLASS_NAMES = tuple(f"{look}{motion}" for motion in MOTIONS for look in LOOKS)
VIDEOS_DIR = "UCF-101"
SPLITS_DIR = "ucfTrainTestlist"
ANNOTATIONS_FILE = "annotations/pyannot.pkl"
SPEC_FILE = "synthetic.json"
GENERATOR_VERSION = 3
"""Bumped whenever the same spec would render other videos: it is part of the dataset's
identity, so caches made from an older generator are never reused."""
N_SPLITS = 3
DISTRACTORS = 2
SIZE = 0.2
"""Half-size of every object as a fraction of the frame's width and height."""


READING_THE_CLAIMS = """\
How this data bears on each claim (from its design; README, "Reading the embedded benchmark",
analyses the reference run):
- Every frame shows three looks and only the actor moves, so an RGB model without motion
  attention can only guess which object acts: RGB ConvNet, LSTM, ConvLSTM, ALSTM and ConvALSTM
  with appearance attention all sit near the floor of guessing among the visible looks, and
  C1's RGB comparisons are between models that cannot use their architecture's advantage here.
- Flow shows the motion but not the look (one shape, textures move coherently), so a flow
  model's ceiling is about the motion classes; fusion (C3) helps where RGB misses the motion.
- With 256 training videos and [train] epochs of 32 updates, models whose held-out curve still
  rises at the last epoch (training plot) are under-trained: a difference between them is a
  statement about this budget, not about the architecture.
- The actor spans at least 2 x 2 attention cells, so a tube that follows the attention scores
  well before smoothing: LOWESS has little to add where the raw tube is already right (C4)."""
"""Read beside the Claims of a run on this dataset (ReproducePaper prints it)."""


def class_look_motion(class_index: int) -> tuple[str, str]:
    """The (look, motion) pair of a class."""
    return list(LOOKS)[class_index % len(LOOKS)], MOTIONS[class_index // len(LOOKS)]


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
    context: float = 0.0

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
    """UCF101 file stem for 0-based group and clip numbers, e.g. v_RedSwing_g01_c02."""
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
    return _hsv(hue, 0.3, 0.7) * (1 - weight) + _hsv(hue + 0.1, 0.5, 0.35) * weight


def _cycles(rng: np.random.Generator, low: float, high: float, frames: int) -> float:
    """Periods over the video, capped so one frame never advances more than 1/6 period."""
    return min(rng.uniform(low, high), (frames - 1) / 6)


def _actor_path(motion: str, spec: SyntheticSpec, rng: np.random.Generator) -> np.ndarray:
    """(T, 2) actor centre offsets in pixels, before placement: a horizontal swing, a vertical
    bounce, or a clockwise circle (on screen, y down), with random amplitude, period and phase."""
    u = np.linspace(0.0, 1.0, spec.frames)
    s = rng.uniform(0.8, 1.2)
    angle = rng.uniform(0, 2 * math.pi) + 2 * math.pi * _cycles(rng, 1.0, 1.5, spec.frames) * u
    if motion == "Swing":
        return np.stack([s * 0.2 * spec.width * np.sin(angle), np.zeros_like(u)], axis=1)
    if motion == "Bounce":
        return np.stack([np.zeros_like(u), s * 0.2 * spec.height * np.sin(angle)], axis=1)
    radius = s * 0.18 * min(spec.width, spec.height)
    return np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)


def _drift_path(spec: SyntheticSpec, rng: np.random.Generator) -> np.ndarray:
    """(T, 2) distractor offsets: static or a slow straight drift, plus a small slow wobble."""
    u = np.linspace(0.0, 1.0, spec.frames)[:, None]
    scale = min(spec.width, spec.height)
    direction = rng.uniform(0, 2 * math.pi, size=2)
    heading = np.array([math.cos(direction[0]), math.sin(direction[0])])
    drift = rng.choice([0.0, rng.uniform(0.05, 0.12)]) * scale * heading
    wobble = rng.uniform(0.5, 1.5) * 0.01 * scale * np.stack(
        [np.cos(2 * math.pi * rng.uniform(0.5, 1.5) * u[:, 0] + direction[1]),
         np.sin(2 * math.pi * rng.uniform(0.5, 1.5) * u[:, 0] + direction[1])], axis=1)
    return drift * u + wobble


def _place(path: np.ndarray, half: np.ndarray, spec: SyntheticSpec,
           rng: np.random.Generator) -> np.ndarray:
    """Shift (and, if it cannot fit, shrink) ``path`` so an object of half-sizes ``half``
    stays inside the frame in every frame."""
    size = np.array([spec.width, spec.height], dtype=np.float64)
    room = size - 2 * half
    span = path.max(0) - path.min(0)
    path = path * min(1.0, float(np.min(room / np.maximum(span, 1e-9))))
    low, high = half - path.min(0), size - half - path.max(0)
    return path + rng.uniform(low, np.maximum(low, high))


_ANGLES = np.linspace(0, 2 * math.pi, 32, endpoint=False)
_CIRCLE = np.stack([np.cos(_ANGLES), np.sin(_ANGLES)], axis=1)


def _blob(look: str, spec: SyntheticSpec, rng: np.random.Generator) -> dict:
    """An object: an ellipse of the common size in the look's colour and texture."""
    half = SIZE * np.array([spec.width, spec.height]) * rng.uniform(0.9, 1.1, size=2)
    color = _hsv(LOOKS[look] + rng.uniform(-0.02, 0.02), rng.uniform(0.85, 1.0),
                 rng.uniform(0.85, 1.0))
    return {"half": half, "outline": _CIRCLE * half, "color": color, "dark": 0.35 * color,
            "pattern": PATTERNS[look], "phase": rng.uniform(0, 1, size=2)}


def _texture(pattern: str, u: np.ndarray, v: np.ndarray, period: float) -> np.ndarray:
    """Where a pattern is dark, at offsets (u, v) in pixels from the object's centre (so the
    texture moves with the object)."""
    su, sv = np.floor(2 * u / period), np.floor(2 * v / period)
    if pattern == "stripes across":
        return sv % 2 == 0
    if pattern == "stripes down":
        return su % 2 == 0
    if pattern == "checkerboard":
        return (su + sv) % 2 == 0
    du, dv = u / period - np.round(u / period), v / period - np.round(v / period)
    return du ** 2 + dv ** 2 < 0.1


def _paint(img: np.ndarray, blob: dict, centre: np.ndarray, period: float) -> None:
    """Draw an object at ``centre``: its ellipse in its colour, then its texture inside."""
    _fill(img, blob["outline"] + centre, blob["color"])
    height, width = img.shape[:2]
    x1, y1 = np.maximum(np.floor(centre - blob["half"]).astype(int), 0)
    x2, y2 = np.minimum(np.ceil(centre + blob["half"]).astype(int) + 1, [width, height])
    yy, xx = np.mgrid[y1:y2, x1:x2].astype(np.float64)
    u, v = xx - centre[0], yy - centre[1]
    inside = (u / blob["half"][0]) ** 2 + (v / blob["half"][1]) ** 2 <= 0.9
    shifted = (u + blob["phase"][0] * period, v + blob["phase"][1] * period)
    mask = inside & _texture(blob["pattern"], *shifted, period)
    img[y1:y2, x1:x2][mask] = blob["dark"].astype(np.uint8)


_PLACEMENT_TRIES = 8


def _overlap(centres: np.ndarray, blob: dict, placed: list[dict]) -> float:
    """Mean over frames of the area a blob at ``centres`` shares with blobs already placed:
    distractors are placed where they hide the others least (they still touch them often)."""
    total = 0.0
    for other in placed:
        reach = blob["half"] + other["half"] - np.abs(centres - other["centres"])
        total += float(np.clip(reach, 0, None).prod(axis=1).mean())
    return total


def _fill(img: np.ndarray, points: np.ndarray, color: np.ndarray):
    fixed = np.round(points * 16).astype(np.int32)
    cv2.fillPoly(img, [fixed], color.tolist(), lineType=cv2.LINE_AA, shift=4)


def render_video(spec: SyntheticSpec, class_index: int, rng: np.random.Generator):
    """Frames (T, H, W, 3) uint8 RGB and the actor's (T, 4) x1, y1, x2, y2 boxes (the actor
    stays wholly inside the frame)."""
    look, motion = class_look_motion(class_index)
    others = [k for k in range(spec.classes) if k != class_index]
    palette = class_index if rng.random() < spec.context else int(rng.choice(others))
    pan_speed = rng.uniform(0.002, 0.005) * spec.width
    pad = math.ceil(0.005 * spec.width * (spec.frames - 1)) + 1
    texture = _background(spec, palette, pad, rng)
    pan_angle = rng.uniform(0, 2 * math.pi)
    heading = np.array([math.cos(pan_angle), math.sin(pan_angle)])
    pan = pan_speed * np.arange(spec.frames)[:, None] * heading

    other_looks = [name for name in LOOKS if name != look]
    looks = [look, *rng.choice(other_looks, size=DISTRACTORS, replace=False)]
    blobs = [_blob(str(name), spec, rng) for name in looks]
    blobs[0]["centres"] = _place(_actor_path(motion, spec, rng), blobs[0]["half"] + 1, spec, rng)
    for i, blob in enumerate(blobs[1:], start=1):
        path = _drift_path(spec, rng)
        tries = [_place(path, blob["half"] + 1, spec, rng) for _ in range(_PLACEMENT_TRIES)]
        blob["centres"] = min(tries, key=lambda centres: _overlap(centres, blob, blobs[:i]))
    order = rng.permutation(len(blobs))

    frames = np.empty((spec.frames, spec.height, spec.width, 3), dtype=np.uint8)
    centre = ((texture.shape[1] - 1) / 2, (texture.shape[0] - 1) / 2)
    for t in range(spec.frames):
        view = cv2.getRectSubPix(texture, (spec.width, spec.height),
                                 (centre[0] + pan[t, 0], centre[1] + pan[t, 1]))
        img = np.clip(view, 0, 255).astype(np.uint8)
        for i in order:
            _paint(img, blobs[i], blobs[i]["centres"][t], PERIOD * spec.width)
        frames[t] = img

    actor = blobs[0]["centres"]
    boxes = np.concatenate([np.floor(actor - blobs[0]["half"]),
                            np.ceil(actor + blobs[0]["half"])], axis=1)
    limit = np.array([spec.width, spec.height] * 2, dtype=np.float64)
    return frames, np.clip(boxes, 0, limit).astype(np.float32)


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
                frames, boxes = render_video(spec, k, rng)
                stem = video_stem(name, group, clip)
                write_video(videos / name / f"{stem}.avi", frames)
                key = f"{name}/{stem}"
                tubes[key] = [{"start": 0, "boxes": boxes}]
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


def generated(root: str | os.PathLike, spec: SyntheticSpec) -> Path:
    """The dataset at `root`, generated first unless its spec file is there: on first use,
    by GenerateSynthetic or by whatever needs the videos before it ran."""
    root = Path(root)
    if not (root / SPEC_FILE).exists():
        generate(root, spec)
    return root
