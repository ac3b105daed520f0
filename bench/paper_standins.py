"""Stand-ins of UCF101 (split 1: 9,537 training and 3,783 test videos of 101 classes), HMDB51
(6,766 videos of 51 classes; per class and split 70 training and 30 test videos, each split
another window of the class's videos, the rest unused) and THUMOS13 (UCF101-24: a pyannot.pkl
with one tube per video for 24 of the UCF101 stand-in's classes, 3,167 videos; the real file
has 3,207) in their real on-disk formats, every video a link to one of three 320x240 MJPG
videos of 121, 186 and 251 frames (UCF101's mean is ~186), and configs/paper.cfg pointed at them (weights = none, since ImageNet's file is not
here; the same cost), so that videolstm-plan can be run at paper scale on a machine without
the datasets:

    .venv/bin/python bench/paper_standins.py FOLDER
    LUIGI_CONFIG_PATH=FOLDER/paper-standins.cfg .venv/bin/videolstm-plan --workers 2
"""

from __future__ import annotations

import argparse
import configparser
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.datasets.thumos13 import write_annotations  # noqa: E402
from pipeline.video import write_video  # noqa: E402

LENGTHS = (121, 186, 251)
UCF101 = {"classes": 101, "train": 9537, "test": 3783}
HMDB51 = {"classes": 51, "videos": 6766, "train": 70, "test": 30}


def base_videos(folder: Path) -> list[Path]:
    """Three 320x240 videos of a moving gradient, of LENGTHS frames."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    ramp = np.linspace(0, 255, 320, dtype=np.float32)[None, :, None]
    for length in LENGTHS:
        path = folder / f"base-{length}.avi"
        frames = np.stack([np.broadcast_to(np.roll(ramp, 4 * t, axis=1), (240, 320, 3))
                           for t in range(length)]).astype(np.uint8)
        write_video(path, frames)
        paths.append(path)
    return paths


def ucf101(root: Path, bases: list[Path]) -> dict[str, str]:
    """UCF-101/<Class>/v_<Class>_gGG_cCC.avi and ucfTrainTestlist (split 1: groups 1-7 test)."""
    videos, splits = root / "UCF-101", root / "ucfTrainTestlist"
    splits.mkdir(parents=True)
    names = [f"Class{k:03d}" for k in range(UCF101["classes"])]
    (splits / "classInd.txt").write_text("".join(f"{k + 1} {n}\n" for k, n in enumerate(names)))
    lists = {"train": [], "test": []}
    clips: dict[tuple, int] = {}
    for i in range(UCF101["train"] + UCF101["test"]):
        k, role = i % len(names), "test" if i < UCF101["test"] else "train"
        group = 1 + (i // len(names)) % 7 if role == "test" else 8 + (i // len(names)) % 18
        clip = clips[(k, group)] = clips.get((k, group), 0) + 1
        name = f"{names[k]}/v_{names[k]}_g{group:02d}_c{clip:02d}.avi"
        (videos / names[k]).mkdir(parents=True, exist_ok=True)
        (videos / name).symlink_to(bases[i % len(bases)])
        lists[role].append(name if role == "test" else f"{name} {k + 1}")
    for role, lines in lists.items():
        (splits / f"{role}list01.txt").write_text("".join(f"{line}\n" for line in lines))
    return {"videos": str(videos), "splits": str(splits)}


def hmdb51(root: Path, bases: list[Path]) -> dict[str, str]:
    """<class>/<video>.avi and testTrainMulti_7030_splits/<class>_test_split{1,2,3}.txt."""
    videos, splits = root / "videos", root / "testTrainMulti_7030_splits"
    splits.mkdir(parents=True)
    per_class = [HMDB51["videos"] // HMDB51["classes"]
                 + (k < HMDB51["videos"] % HMDB51["classes"]) for k in range(HMDB51["classes"])]
    for k, count in enumerate(per_class):
        name = f"class{k:02d}"
        (videos / name).mkdir(parents=True)
        stems = [f"{name}_video{i:03d}" for i in range(count)]
        for i, stem in enumerate(stems):
            (videos / name / f"{stem}.avi").symlink_to(bases[(k + i) % len(bases)])
        used = HMDB51["train"] + HMDB51["test"]
        for split in (1, 2, 3):
            tags = []
            for i in range(count):  # each split uses another window of the class's videos
                place = (i - (split - 1) * (count // 3)) % count
                tags.append("2" if place < HMDB51["test"] else "1" if place < used else "0")
            (splits / f"{name}_test_split{split}.txt").write_text(
                "".join(f"{stem}.avi {tag} \n" for stem, tag in zip(stems, tags)))
    return {"videos": str(videos), "splits": str(splits)}


def thumos13(root: Path, ucf: dict[str, str]) -> dict[str, str]:
    """UCF101-24's pyannot.pkl over the UCF101 stand-in: every fourth class (24 of them), one
    tube per video over all its frames (a fixed box), labels in classInd order."""
    videos = Path(ucf["videos"])
    classes = sorted(p.name for p in videos.iterdir())[::4][:24]
    tubes, labels, numf = {}, {}, {}
    for label, name in enumerate(classes):
        for video in sorted((videos / name).glob("*.avi")):
            frames = int(video.resolve().stem.split("-")[1])  # linked to base-<frames>.avi
            key = f"{name}/{video.stem}"
            tubes[key] = [{"start": 0, "boxes": np.tile([80.0, 40.0, 240.0, 200.0], (frames, 1))}]
            labels[key], numf[key] = label, frames
    root.mkdir(parents=True)
    write_annotations(root / "pyannot.pkl", tubes, labels, numf)
    return {**ucf, "annotations": str(root / "pyannot.pkl")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    folder = parser.parse_args().folder.resolve()
    bases = base_videos(folder / "base")
    parser = configparser.ConfigParser()
    parser.optionxform = str
    parser.read(REPO / "configs" / "paper.cfg")
    parser["ucf101"] = ucf101(folder / "ucf101", bases)
    parser["hmdb51"] = hmdb51(folder / "hmdb51", bases)
    parser["thumos13"] = thumos13(folder / "thumos13", dict(parser["ucf101"]))
    parser["convnet"]["weights"] = "none"
    parser["paths"] = {key: str(folder / key) for key in ("data", "cache", "work", "reports")}
    with open(folder / "paper-standins.cfg", "w") as handle:
        parser.write(handle)
    print(f"wrote {folder / 'paper-standins.cfg'}")


if __name__ == "__main__":
    main()
