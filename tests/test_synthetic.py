"""The synthetic dataset: written in the real formats, deterministic, atomic, and the actor's
boxes and motion are what its class says."""

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.datasets import synthetic, thumos13, ucf101
from pipeline.datasets.synthetic import SyntheticSpec, generate, render_video
from pipeline.manifest import decode_tubes, probe_frames
from pipeline.video import read_frames

TINY = SyntheticSpec(classes=4, train_per_class=2, test_per_class=1, frames=8, width=64, height=48,
                     seed=3)


def _paths(root: Path):
    return (root / synthetic.SPLITS_DIR, root / synthetic.VIDEOS_DIR,
            root / synthetic.ANNOTATIONS_FILE)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("synthetic") / "tiny", TINY)


def test_ucf101_reader_parses_every_split(tiny):
    splits, videos, _ = _paths(tiny)
    test_sets = []
    for split in (1, 2, 3):
        df = probe_frames(ucf101.read_split(splits, videos, split))
        assert len(df) == 12 and (df["split"] == "train").sum() == 8
        assert list(df.drop_duplicates("label")["label"]) == list(synthetic.CLASS_NAMES[:4])
        assert (df["n_frames"] == TINY.frames).all()
        test_sets.append(set(df.loc[df["split"] == "test", "video_id"]))
    # each split holds out a different group, as UCF101's three splits do
    assert len(set.union(*test_sets)) == sum(len(s) for s in test_sets) == 12
    frames = read_frames(df["path"].iloc[0])
    assert frames.shape == (TINY.frames, TINY.height, TINY.width, 3)


def _centres(boxes):
    return (boxes[:, :2] + boxes[:, 2:]) / 2


def test_thumos13_reader_gives_one_tube_per_video_that_moves_with_its_class(tiny):
    """Swings move the actor's box along x only, bounces along y only; every frame has a box."""
    df = thumos13.read_split(*_paths(tiny))
    assert len(df) == 12
    for row in df.itertuples():
        (tube,) = decode_tubes(row.tubes)
        boxes = tube["boxes"]
        assert tube["start"] == 0 and len(boxes) == TINY.frames
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= TINY.width).all()
        assert (boxes[:, 3] <= TINY.height).all()
        spread = np.ptp(_centres(boxes), axis=0)
        along, across = (0, 1) if row.label.endswith("Swing") else (1, 0)
        assert spread[along] > 5 and spread[across] < 0.25 * spread[along], row.video_id


def test_classes_pair_four_looks_with_motions():
    assert synthetic.CLASS_NAMES[:8] == (
        "RedSwing", "YellowSwing", "GreenSwing", "BlueSwing",
        "RedBounce", "YellowBounce", "GreenBounce", "BlueBounce")
    assert synthetic.class_look_motion(9) == ("Yellow", "Circle")


def test_the_actor_is_large_and_distractors_wear_other_looks():
    """The actor spans at least 2 x 2 cells of a 5 x 5 grid; the frame also holds two other
    objects of the same size, in the colours of two other looks (and not the actor's)."""
    spec = dataclasses.replace(TINY, width=160, height=120, frames=4)
    frames, boxes = render_video(spec, 0, np.random.default_rng(1))
    width, height = (boxes[:, 2:] - boxes[:, :2]).min(axis=0)
    assert width >= 2 * 160 / 5 * 0.85 and height >= 2 * 120 / 5 * 0.85
    hsv = cv2.cvtColor(frames[0], cv2.COLOR_RGB2HSV_FULL)
    vivid = (hsv[..., 1] > 200) & (hsv[..., 2] > 200)
    hues = hsv[..., 0][vivid].astype(float) / 256
    found = {name for name, hue in synthetic.LOOKS.items()
             if (np.abs((hues - hue + 0.5) % 1 - 0.5) < 0.04).mean() > 0.08}
    assert len(found) == 3 and "Red" in found


def test_boxes_hold_the_moving_actor(tiny):
    """Frame-to-frame change in the decoded video concentrates inside the actor's boxes."""
    df = thumos13.read_split(*_paths(tiny))
    for row in df.itertuples():
        frames = read_frames(row.path).astype(np.float32)
        (tube,) = decode_tubes(row.tubes)
        inside, outside = [], []
        for i in range(len(tube["boxes"]) - 1):
            t = tube["start"] + i
            change = np.abs(frames[t + 1] - frames[t]).mean(axis=-1)
            mask = np.zeros(change.shape, dtype=bool)
            for x1, y1, x2, y2 in tube["boxes"][i:i + 2].astype(int):
                mask[y1:y2, x1:x2] = True
            inside.append(change[mask].mean())
            outside.append(change[~mask].mean())
        assert np.mean(inside) > 2 * np.mean(outside), row.video_id


def test_circles_turn_clockwise():
    """Clockwise on screen (y down) is a positive cross product of successive offsets."""
    spec = dataclasses.replace(TINY, classes=12, frames=16)
    for seed in range(3):
        _, boxes = render_video(spec, synthetic.CLASS_NAMES.index("RedCircle"),
                                np.random.default_rng(seed))
        offsets = _centres(boxes) - _centres(boxes).mean(axis=0)
        cross = offsets[:-1, 0] * offsets[1:, 1] - offsets[:-1, 1] * offsets[1:, 0]
        assert cross.sum() > 0


def test_context_sets_the_background_palette():
    """With 2 classes, context=0 paints class 0 on class 1's palette and context=1 on its own."""
    def mean_colour(class_index, context):
        spec = dataclasses.replace(TINY, classes=2, context=context)
        videos = [render_video(spec, class_index, np.random.default_rng(s))[0] for s in range(4)]
        return np.mean([v.mean(axis=(0, 1, 2)) for v in videos], axis=0)

    own, borrowed, other = mean_colour(0, 1.0), mean_colour(0, 0.0), mean_colour(1, 1.0)
    assert np.linalg.norm(borrowed - other) < 0.5 * np.linalg.norm(own - other)


def test_generation_is_deterministic(tmp_path, tiny):
    again = generate(tmp_path / "again", TINY)
    for rel in sorted(p.relative_to(tiny) for p in tiny.rglob("*.avi")):
        np.testing.assert_array_equal(read_frames(again / rel), read_frames(tiny / rel),
                                      err_msg=str(rel))
    for name in ("classInd.txt", "trainlist02.txt", "testlist03.txt"):
        rel = Path(synthetic.SPLITS_DIR) / name
        assert (again / rel).read_text() == (tiny / rel).read_text()
    first, second = (thumos13.read_annotations(root / synthetic.ANNOTATIONS_FILE)
                     for root in (tiny, again))
    assert first.keys() == second.keys()
    for key in first:
        np.testing.assert_array_equal(first[key][0]["boxes"], second[key][0]["boxes"])


def test_another_seed_gives_other_videos(tmp_path, tiny):
    other = generate(tmp_path / "other", dataclasses.replace(TINY, seed=4))
    rel = Path(synthetic.VIDEOS_DIR) / "GreenSwing" / "v_GreenSwing_g01_c01.avi"
    assert not np.array_equal(read_frames(other / rel), read_frames(tiny / rel))


def test_existing_dataset_with_same_spec_is_reused(tiny, monkeypatch):
    def fail(*args):
        raise AssertionError("regenerated")

    monkeypatch.setattr(synthetic, "_write_dataset", fail)
    assert generate(tiny, TINY) == tiny


def test_existing_dataset_with_other_spec_is_refused(tiny):
    with pytest.raises(ValueError, match=r"synthetic.json.*frames=8 there, 10 requested"):
        generate(tiny, dataclasses.replace(TINY, frames=10))


def test_existing_foreign_folder_is_refused(tmp_path):
    (tmp_path / "data").mkdir()
    with pytest.raises(FileExistsError, match="data.*synthetic.json"):
        generate(tmp_path / "data", TINY)


def test_failed_generation_leaves_no_dataset(tmp_path, monkeypatch):
    def fail(*args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(synthetic, "write_annotations", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        generate(tmp_path / "data", TINY)
    assert list(tmp_path.iterdir()) == []


def test_killed_generation_never_looks_complete(tmp_path, monkeypatch):
    """A run killed mid-way (no cleanup) leaves only a partial folder; the next run completes."""
    def killed(*args):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(synthetic.shutil, "rmtree", lambda *args, **kwargs: None)
        patch.setattr(synthetic, "write_annotations", killed)
        with pytest.raises(KeyboardInterrupt):
            generate(tmp_path / "data", TINY)
    assert not (tmp_path / "data").exists()
    (partial,) = tmp_path.iterdir()
    assert partial.name.startswith(".data.partial-")
    assert not (partial / synthetic.SPEC_FILE).exists()
    root = generate(tmp_path / "data", TINY)
    assert len(ucf101.read_split(root / synthetic.SPLITS_DIR, root / synthetic.VIDEOS_DIR, 1)) == 12


@pytest.mark.parametrize(
    "setting, value",
    [("classes", 1), ("classes", 13), ("train_per_class", 0), ("test_per_class", 0),
     ("frames", 1), ("frames", 8.0), ("width", 30), ("width", 65), ("height", 47), ("seed", -1),
     ("context", 1.5), ("context", "high")],
)
def test_spec_validation_names_the_setting(setting, value):
    with pytest.raises(ValueError, match=f"SyntheticSpec.{setting}"):
        dataclasses.replace(TINY, **{setting: value})


def test_too_many_videos_per_class_is_refused():
    with pytest.raises(ValueError, match="train_per_class"):
        SyntheticSpec(train_per_class=97, test_per_class=5)


@pytest.mark.parametrize("class_name, across", [("RedSwing", True), ("YellowSwing", False)])
def test_a_look_carries_its_texture(class_name, across):
    """Stripes across change along y (vertical gradients dominate inside the actor's box);
    stripes down change along x."""
    spec = dataclasses.replace(TINY, width=160, height=120, frames=2)
    frames, boxes = render_video(spec, synthetic.CLASS_NAMES.index(class_name),
                                 np.random.default_rng(4))
    x1, y1, x2, y2 = boxes[0].astype(int)
    w, h = x2 - x1, y2 - y1
    core = cv2.cvtColor(frames[0], cv2.COLOR_RGB2GRAY).astype(float)[
        y1 + h // 3:y2 - h // 3, x1 + w // 3:x2 - w // 3]
    along_y, along_x = np.abs(np.diff(core, axis=0)).mean(), np.abs(np.diff(core, axis=1)).mean()
    assert (along_y > 3 * along_x) if across else (along_x > 3 * along_y)
