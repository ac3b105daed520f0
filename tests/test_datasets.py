"""Dataset readers against fixtures in the real formats, and the manifest table."""

import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.datasets import hmdb51, thumos13, ucf101
from pipeline.manifest import (
    MANIFEST_COLUMNS,
    SPLIT_COLUMNS,
    check_split,
    check_trainable,
    decode_tubes,
    encode_tubes,
    probe_frames,
    read_manifest,
    write_manifest,
)
from pipeline.video import write_video
from test_video import claim_frames

FIXTURES = Path(__file__).parent / "fixtures" / "datasets"


def _touch_videos(videos_root: Path, rel_paths):
    for rel in rel_paths:
        (videos_root / rel).parent.mkdir(parents=True, exist_ok=True)
        (videos_root / rel).write_bytes(b"")


@pytest.fixture
def ucf(tmp_path):
    """A copy of the UCF101 split fixtures with placeholder videos for every listed file."""
    splits = tmp_path / "ucfTrainTestlist"
    shutil.copytree(FIXTURES / "ucf101", splits)
    videos = tmp_path / "UCF-101"
    for name in ("trainlist01.txt", "testlist01.txt"):
        lines = (splits / name).read_text().splitlines()
        _touch_videos(videos, [line.split()[0] for line in lines])
    return splits, videos


def _rewrite(path: Path, old: str, new: str):
    text = path.read_bytes().decode()
    assert old in text
    path.write_bytes(text.replace(old, new).encode())


# --- UCF101 -----------------------------------------------------------------------------------


def test_ucf101_reads_train_and_test_lists(ucf):
    splits, videos = ucf
    df = ucf101.read_split(splits, videos, 1)
    assert tuple(df.columns) == SPLIT_COLUMNS
    assert len(df) == 8 and df["video_id"].is_unique
    train = df[df["split"] == "train"].set_index("video_id")
    test = df[df["split"] == "test"].set_index("video_id")
    assert len(train) == 5 and len(test) == 3
    assert train.loc["v_BasketballDunk_g11_c04", "label"] == "BasketballDunk"
    assert train.loc["v_BasketballDunk_g11_c04", "label_index"] == 8  # classInd id 9, 0-based
    # test lines carry no label: the class comes from the folder
    assert test.loc["v_Basketball_g01_c02", "label"] == "Basketball"
    assert test.loc["v_Basketball_g01_c02", "label_index"] == 7
    path = Path(test.loc["v_Basketball_g01_c02", "path"])
    assert path.is_absolute()
    assert path == (videos / "Basketball" / "v_Basketball_g01_c02.avi").resolve()
    assert (df["tubes"] == "").all() and (df["annotated_frames"] == 0).all()


def test_ucf101_accepts_unix_line_endings(ucf):
    splits, videos = ucf
    for name in ("classInd.txt", "trainlist01.txt", "testlist01.txt"):
        _rewrite(splits / name, "\r\n", "\n")
    assert len(ucf101.read_split(splits, videos, 1)) == 8


def test_ucf101_class_subset_is_reindexed_in_classind_order(ucf):
    splits, videos = ucf
    df = ucf101.read_split(splits, videos, 1, classes=["BasketballDunk", "Basketball"])
    assert set(df["label"]) == {"Basketball", "BasketballDunk"}
    assert dict(zip(df["label"], df["label_index"])) == {"Basketball": 0, "BasketballDunk": 1}
    assert len(df) == 5


def test_ucf101_unknown_subset_class_is_refused(ucf):
    splits, videos = ucf
    with pytest.raises(ValueError, match="classInd.txt.*Juggling"):
        ucf101.read_split(splits, videos, 1, classes=["Juggling"])


def test_ucf101_malformed_line_names_file_and_line(ucf):
    splits, videos = ucf
    _rewrite(splits / "trainlist01.txt", "v_Basketball_g08_c03.avi 8", "v_Basketball_g08_c03.avi")
    with pytest.raises(ValueError, match=r"trainlist01.txt, line 3"):
        ucf101.read_split(splits, videos, 1)


def test_ucf101_malformed_classind_line(ucf):
    splits, videos = ucf
    _rewrite(splits / "classInd.txt", "3 Archery", "Archery 3")
    with pytest.raises(ValueError, match=r"classInd.txt, line 3"):
        ucf101.read_split(splits, videos, 1)


def test_ucf101_label_disagreeing_with_classind(ucf):
    splits, videos = ucf
    _rewrite(splits / "trainlist01.txt", "g11_c04.avi 9", "g11_c04.avi 8")
    with pytest.raises(ValueError, match=r"trainlist01.txt, line 5.*disagrees"):
        ucf101.read_split(splits, videos, 1)


def test_ucf101_class_missing_from_classind(ucf):
    splits, videos = ucf
    _rewrite(splits / "testlist01.txt", "Basketball/v_Basketball_g01_c02.avi",
             "Bowling/v_Bowling_g01_c02.avi")
    with pytest.raises(ValueError, match=r"testlist01.txt, line 2.*Bowling"):
        ucf101.read_split(splits, videos, 1)


def test_ucf101_missing_video_names_split_file_and_video(ucf):
    splits, videos = ucf
    (videos / "Basketball" / "v_Basketball_g01_c02.avi").unlink()
    with pytest.raises(FileNotFoundError, match=r"testlist01.txt.*v_Basketball_g01_c02.avi"):
        ucf101.read_split(splits, videos, 1)


def test_ucf101_split_without_files(ucf):
    splits, videos = ucf
    with pytest.raises(FileNotFoundError, match=r"split 2.*trainlist02.txt"):
        ucf101.read_split(splits, videos, 2)


def test_ucf101_video_listed_twice(ucf):
    splits, videos = ucf
    with open(splits / "testlist01.txt", "a") as f:
        f.write("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi\n")
    with pytest.raises(ValueError, match=r"testlist01.txt.*_g08_c01.*trainlist01.txt"):
        ucf101.read_split(splits, videos, 1)


def test_ucf101_path_leaving_its_class_folder_is_refused(ucf):
    # the video lies in Basketball/ but the line would label it ApplyEyeMakeup
    splits, videos = ucf
    _touch_videos(videos, ["Basketball/v_Basketball_g20_c01.avi"])
    with open(splits / "trainlist01.txt", "a") as f:
        f.write("ApplyEyeMakeup/../Basketball/v_Basketball_g20_c01.avi 1\n")
    with pytest.raises(ValueError, match=r"trainlist01.txt: .*\.\./Basketball.* leaves its class "
                                         r"folder ApplyEyeMakeup/"):
        ucf101.read_split(splits, videos, 1)


def test_ucf101_accepts_a_byte_order_mark(ucf):
    splits, videos = ucf
    for name in ("classInd.txt", "trainlist01.txt", "testlist01.txt"):
        (splits / name).write_bytes(b"\xef\xbb\xbf" + (splits / name).read_bytes())
    df = ucf101.read_split(splits, videos, 1)
    assert len(df) == 8 and df.attrs["classes"][0] == "ApplyEyeMakeup"


def test_ucf101_latin1_split_file_names_file_line_and_encoding(ucf):
    splits, videos = ucf
    _touch_videos(videos, ["Basketball/v_Basketball_caf\u00e9.avi"])
    with open(splits / "testlist01.txt", "ab") as f:
        f.write("Basketball/v_Basketball_caf\u00e9.avi\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"testlist01.txt, line 4: not UTF-8 text \(byte 0xe9\)"):
        ucf101.read_split(splits, videos, 1)


# --- a split no model can be trained and tested on (check_split) ------------------------------


def _subset(splits: Path, classes: list[str]):
    """Make classInd.txt list only ``classes`` (ids 1..K) and relabel the training lines."""
    (splits / "classInd.txt").write_text("".join(f"{i} {name}\n"
                                                  for i, name in enumerate(classes, start=1)))
    lines = []
    for line in (splits / "trainlist01.txt").read_text().splitlines():
        rel = line.split()[0]
        if rel.split("/")[0] in classes:
            lines.append(f"{rel} {classes.index(rel.split('/')[0]) + 1}")
    (splits / "trainlist01.txt").write_text("\n".join(lines) + "\n")


def test_check_split_accepts_a_split_with_every_class_trained_and_tested(ucf):
    splits, videos = ucf
    _subset(splits, ["ApplyEyeMakeup", "Basketball", "BasketballDunk"])
    check_split(ucf101.read_split(splits, videos, 1))


def test_check_split_names_a_class_without_training_videos_in_the_middle_of_classind(ucf):
    # a UCF101 subset that keeps Archery in classInd.txt but lists none of its videos: the
    # model would score a class it never saw, found only in Evaluate after all training
    splits, videos = ucf
    _subset(splits, ["ApplyEyeMakeup", "Archery", "Basketball", "BasketballDunk"])
    table = ucf101.read_split(splits, videos, 1)
    with pytest.raises(ValueError, match=r"trainlist01.txt: class Archery has no training videos, "
                                         r"but the model scores all 4 classes of .*classInd.txt"):
        check_split(table)


def test_check_split_names_an_empty_train_or_test_list(ucf):
    splits, videos = ucf
    _subset(splits, ["ApplyEyeMakeup", "Basketball", "BasketballDunk"])
    for name, part in (("testlist01.txt", "test"), ("trainlist01.txt", "train")):
        (splits / name).write_text("")
        with pytest.raises(ValueError, match=rf"{name}: no {part} videos"):
            check_split(ucf101.read_split(splits, videos, 1))


def test_check_split_names_the_hmdb51_file_of_a_class_without_training_videos(hmdb):
    splits, videos = hmdb
    text = (splits / "climb_stairs_test_split1.txt").read_text()
    (splits / "climb_stairs_test_split1.txt").write_text(text.replace(" 1", " 2"))
    with pytest.raises(ValueError, match=r"climb_stairs_test_split1.txt: class climb_stairs has "
                                         r"no training videos"):
        check_split(hmdb51.read_split(splits, videos, 1))


def test_check_trainable_names_a_class_whose_training_videos_were_all_skipped():
    manifest = pd.DataFrame({"video_id": ["a1", "a2", "b1", "b2"], "label": ["A", "A", "B", "B"],
                             "label_index": [0, 0, 1, 1],
                             "split": ["train", "test", "train", "test"]})
    check_trainable(manifest, {"a1", "b1"})
    with pytest.raises(ValueError, match=r"class B: all its 1 training videos were skipped "
                                         r"upstream \(e.g. b1"):
        check_trainable(manifest, {"a1", "a2", "b2"})


# --- HMDB51 -----------------------------------------------------------------------------------


@pytest.fixture
def hmdb(tmp_path):
    splits = tmp_path / "testTrainMulti_7030_splits"
    shutil.copytree(FIXTURES / "hmdb51" / "testTrainMulti_7030_splits", splits)
    videos = tmp_path / "hmdb51_org"
    for split_file in splits.iterdir():
        class_name = split_file.name[: -len("_test_split1.txt")]
        lines = split_file.read_text().splitlines()
        _touch_videos(videos, [f"{class_name}/{line.split()[0]}" for line in lines])
    return splits, videos


def test_hmdb51_reads_flags_and_drops_unused(hmdb):
    splits, videos = hmdb
    df = hmdb51.read_split(splits, videos, 1)
    assert tuple(df.columns) == SPLIT_COLUMNS
    assert len(df) == 5  # one flag-0 video dropped
    assert "morning_routine_brush_hair_f_nm_np1_le_bad_2" not in set(df["video_id"])
    rows = df.set_index("video_id")
    assert rows.loc["brushing_long_hair_brush_hair_u_cm_np1_fr_med_1", "split"] == "test"
    assert rows.loc["old_town_steps_climb_stairs_f_nm_np1_ri_bad_1", "split"] == "train"
    assert dict(zip(df["label"], df["label_index"])) == {"brush_hair": 0, "climb_stairs": 1}
    path = Path(rows.loc["old_town_steps_climb_stairs_f_nm_np1_ri_bad_1", "path"])
    assert path.is_absolute() and path.parent.name == "climb_stairs" and path.is_file()


def test_hmdb51_bad_flag_names_file_and_line(hmdb):
    splits, videos = hmdb
    _rewrite(splits / "climb_stairs_test_split1.txt", "goo_3.avi 1", "goo_3.avi 3")
    with pytest.raises(ValueError, match=r"climb_stairs_test_split1.txt, line 2"):
        hmdb51.read_split(splits, videos, 1)


def test_hmdb51_missing_video_names_split_file_and_video(hmdb):
    splits, videos = hmdb
    (videos / "brush_hair" / "brushing_long_hair_brush_hair_u_cm_np1_fr_med_1.avi").unlink()
    with pytest.raises(FileNotFoundError, match=r"brush_hair_test_split1.txt.*brushing_long_hair"):
        hmdb51.read_split(splits, videos, 1)


def test_hmdb51_split_without_files(hmdb):
    splits, videos = hmdb
    with pytest.raises(FileNotFoundError, match=r"testTrainMulti_7030_splits.*split 3"):
        hmdb51.read_split(splits, videos, 3)


def test_hmdb51_path_leaving_its_class_folder_is_refused(hmdb):
    splits, videos = hmdb
    _touch_videos(videos, ["climb_stairs/stairs_again.avi"])
    with open(splits / "brush_hair_test_split1.txt", "a") as f:
        f.write("../climb_stairs/stairs_again.avi 1\n")
    with pytest.raises(ValueError, match=r"brush_hair_test_split1.txt: .* leaves its class "
                                         r"folder brush_hair/"):
        hmdb51.read_split(splits, videos, 1)


def test_hmdb51_accepts_a_byte_order_mark_and_names_a_latin1_file(hmdb):
    splits, videos = hmdb
    path = splits / "brush_hair_test_split1.txt"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert len(hmdb51.read_split(splits, videos, 1)) == 5
    path.write_bytes(path.read_bytes()[3:] + "caf\u00e9.avi 0\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"brush_hair_test_split1.txt, line \d+: not UTF-8"):
        hmdb51.read_split(splits, videos, 1)


# --- THUMOS13 / UCF101-24 pyannot.pkl ---------------------------------------------------------


def _pyannot():
    """A pyannot.pkl dict in the public file's types: numpy.str_ keys, Python int labels, sf
    and ef, x, y, w, h boxes in 1-based pixels; numf and each tube's boxes uint8, or uint16
    where a value exceeds 255 (v_Basketball_g10_c01). One uint8 box has x + w = 251 + 30,
    which wraps to 25 if added in uint8."""
    return {
        np.str_("Basketball/v_Basketball_g01_c02"): {
            "label": 0, "numf": np.uint8(40),
            "annotations": [{"label": 0, "sf": 3, "ef": 6,
                             "boxes": np.array([[11, 21, 30, 40], [12, 21, 30, 41],
                                                [251, 22, 30, 41]], dtype=np.uint8)}],
        },
        np.str_("Basketball/v_Basketball_g10_c01"): {
            "label": 0, "numf": np.uint16(300),
            "annotations": [{"label": 0, "sf": 290, "ef": 291,
                             "boxes": np.array([[301, 11, 20, 30]], dtype=np.uint16)}],
        },
        np.str_("BasketballDunk/v_BasketballDunk_g11_c04"): {
            "label": 1, "numf": np.uint8(25),
            "annotations": [
                {"label": 1, "sf": 0, "ef": 2,
                 "boxes": np.array([[1, 1, 5, 6], [2, 1, 5, 6]], dtype=np.uint8)},
                {"label": 1, "sf": 10, "ef": 11,
                 "boxes": np.array([[50, 60, 7, 8]], dtype=np.uint8)},
            ],
        },
    }


def _dump(path: Path, obj, protocol=2):
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=protocol)
    return path


@pytest.mark.parametrize("protocol", [2, 5])
def test_read_annotations_converts_to_zero_based_corners(tmp_path, protocol):
    tubes = thumos13.read_annotations(_dump(tmp_path / "pyannot.pkl", _pyannot(), protocol))
    assert set(tubes) == {"v_Basketball_g01_c02", "v_Basketball_g10_c01",
                          "v_BasketballDunk_g11_c04"}
    (tube,) = tubes["v_Basketball_g01_c02"]
    assert tube["start"] == 3 and tube["boxes"].dtype == np.float32
    # x1 = x - 1, y1 = y - 1, x2 = x1 + w, y2 = y1 + h, widened before adding: 250 + 30 = 280
    np.testing.assert_array_equal(tube["boxes"][0], [10, 20, 40, 60])
    np.testing.assert_array_equal(tube["boxes"][2], [250, 21, 280, 62])
    (wide,) = tubes["v_Basketball_g10_c01"]
    assert wide["start"] == 290
    np.testing.assert_array_equal(wide["boxes"], [[300, 10, 320, 40]])
    dunk = tubes["v_BasketballDunk_g11_c04"]
    assert [t["start"] for t in dunk] == [0, 10]
    np.testing.assert_array_equal(dunk[1]["boxes"], [[49, 59, 56, 67]])


def test_read_annotations_accepts_numpy_1_module_names(tmp_path):
    """Files pickled under numpy 1.x name numpy.core.multiarray, as the public file does."""
    legacy = pickle.dumps(_pyannot(), protocol=2).replace(b"numpy._core.", b"numpy.core.")
    assert b"numpy.core.multiarray" in legacy
    path = tmp_path / "pyannot.pkl"
    path.write_bytes(legacy)
    (tube,) = thumos13.read_annotations(path)["v_Basketball_g01_c02"]
    np.testing.assert_array_equal(tube["boxes"][1], [11, 20, 41, 61])


def test_write_annotations_round_trips_through_the_public_format(tmp_path):
    path = tmp_path / "pyannot.pkl"
    boxes = np.array([[4.2, 5.0, 20.0, 30.6], [5.0, 5.0, 21.0, 31.0]], dtype=np.float32)
    wide = np.array([[249.0, 5.0, 281.0, 31.0]], dtype=np.float32)  # x + w = 250 + 32
    far = np.array([[299.0, 5.0, 310.0, 31.0]], dtype=np.float32)  # x = 300: uint16 boxes
    key, long_key = "Bounce/v_Bounce_g01_c01", "Bounce/v_Bounce_g01_c02"
    thumos13.write_annotations(
        path, {key: [{"start": 2, "boxes": boxes}, {"start": 0, "boxes": wide}],
               long_key: [{"start": 280, "boxes": far}]},
        labels={key: 3, long_key: 3}, numf={key: 9, long_key: 300})
    with open(path, "rb") as f:
        raw = pickle.load(f)
    assert all(type(k) is np.str_ for k in raw)
    entry = raw[key]
    assert entry["label"] == 3 and entry["numf"] == 9
    assert (type(entry["label"]), type(entry["numf"])) == (int, np.uint8)
    assert type(raw[long_key]["numf"]) is np.uint16 and raw[long_key]["numf"] == 300
    ann, ann_wide = entry["annotations"]
    assert (ann["sf"], ann["ef"], ann["label"]) == (2, 4, 3)
    assert {type(ann[k]) for k in ("sf", "ef", "label")} == {int}
    assert ann["boxes"].dtype == ann_wide["boxes"].dtype == np.uint8
    np.testing.assert_array_equal(ann["boxes"], [[5, 6, 16, 26], [6, 6, 16, 26]])
    np.testing.assert_array_equal(ann_wide["boxes"], [[250, 6, 32, 26]])
    (ann_far,) = raw[long_key]["annotations"]
    assert ann_far["boxes"].dtype == np.uint16
    tubes = thumos13.read_annotations(path)
    np.testing.assert_array_equal(tubes["v_Bounce_g01_c01"][0]["boxes"], np.rint(boxes))
    np.testing.assert_array_equal(tubes["v_Bounce_g01_c01"][1]["boxes"], wide)
    np.testing.assert_array_equal(tubes["v_Bounce_g01_c02"][0]["boxes"], far)


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_restricted_unpickler_refuses_code(tmp_path):
    path = _dump(tmp_path / "evil.pkl", {"A/v_A_g01_c01": _RunsCode()})
    with pytest.raises(thumos13.AnnotationError, match=r"evil.pkl.*system"):
        thumos13.read_annotations(path)


def test_annotations_with_wrong_box_count_are_refused(tmp_path):
    data = _pyannot()
    data["Basketball/v_Basketball_g01_c02"]["annotations"][0]["ef"] = 7
    with pytest.raises(thumos13.AnnotationError, match=r"pyannot.pkl.*v_Basketball_g01_c02"):
        thumos13.read_annotations(_dump(tmp_path / "pyannot.pkl", data))


def test_truncated_annotation_file_is_refused(tmp_path):
    path = tmp_path / "pyannot.pkl"
    path.write_bytes(pickle.dumps(_pyannot(), protocol=2)[:50])
    with pytest.raises(thumos13.AnnotationError, match="pyannot.pkl"):
        thumos13.read_annotations(path)


def test_thumos13_split_keeps_annotated_classes_and_attaches_tubes(ucf, tmp_path):
    splits, videos = ucf
    df = thumos13.read_split(splits, videos, _dump(tmp_path / "pyannot.pkl", _pyannot()))
    assert tuple(df.columns) == SPLIT_COLUMNS
    assert set(df["label"]) == {"Basketball", "BasketballDunk"} and len(df) == 5
    rows = df.set_index("video_id")
    (tube,) = decode_tubes(rows.loc["v_Basketball_g01_c02", "tubes"])
    assert tube["start"] == 3
    np.testing.assert_array_equal(tube["boxes"][0], [10, 20, 40, 60])
    assert len(decode_tubes(rows.loc["v_BasketballDunk_g11_c04", "tubes"])) == 2
    assert rows.loc["v_Basketball_g08_c03", "tubes"] == ""  # listed but not annotated
    # numf kept for the frame-count check; 0 for a video the file does not annotate
    assert rows["annotated_frames"].to_dict() == {
        "v_Basketball_g08_c03": 0, "v_Basketball_g10_c01": 300, "v_BasketballDunk_g11_c04": 25,
        "v_Basketball_g01_c02": 40, "v_BasketballDunk_g02_c01": 0}


def _write_frames(path: Path, n_frames: int):
    write_video(path, np.full((n_frames, 48, 64, 3), 90, dtype=np.uint8))


def test_thumos13_numf_disagreeing_with_the_video(ucf, tmp_path):
    # numf is 40 for v_Basketball_g01_c02 (its video has 40 frames: kept) and 25 for
    # v_BasketballDunk_g11_c04, whose video has 24: its boxes would sit on the wrong frames.
    splits, videos = ucf
    _write_frames(videos / "Basketball" / "v_Basketball_g01_c02.avi", 40)
    _write_frames(videos / "BasketballDunk" / "v_BasketballDunk_g11_c04.avi", 24)
    df = thumos13.read_split(splits, videos, _dump(tmp_path / "pyannot.pkl", _pyannot()))
    with pytest.raises(ValueError, match=r"v_BasketballDunk_g11_c04: .* 25 frames .* has 24"):
        probe_frames(df, strict=True)
    rows = probe_frames(df).set_index("video_id")
    assert rows.loc["v_BasketballDunk_g11_c04", "tubes"] == ""
    assert "25 frames (numf)" in rows.loc["v_BasketballDunk_g11_c04", "tubes_skipped"]
    assert rows.loc["v_BasketballDunk_g11_c04", "label"] == "BasketballDunk"  # still a video
    assert rows.loc["v_Basketball_g01_c02", "n_frames"] == 40
    assert rows.loc["v_Basketball_g01_c02", "tubes_skipped"] == ""
    assert len(decode_tubes(rows.loc["v_Basketball_g01_c02", "tubes"])) == 1


@pytest.mark.parametrize("header, decoded, numf, kept", [(12, 8, 8, True), (12, 8, 12, False)])
def test_probe_frames_judges_boxes_by_the_decoded_count_not_the_header(
        ucf, tmp_path, header, decoded, numf, kept):
    # The header's count is often an estimate: boxes annotated on the 8 decoded frames line up
    # although the header says 12; boxes annotated on 12 frames do not, whatever the header.
    splits, videos = ucf
    data = _pyannot()
    data["Basketball/v_Basketball_g01_c02"]["numf"] = np.uint8(numf)
    video = videos / "Basketball" / "v_Basketball_g01_c02.avi"
    _write_frames(video, decoded)
    claim_frames(video, header)
    df = thumos13.read_split(splits, videos, _dump(tmp_path / "pyannot.pkl", data))
    rows = probe_frames(df).set_index("video_id")
    assert rows.loc["v_Basketball_g01_c02", "n_frames"] == decoded
    assert (rows.loc["v_Basketball_g01_c02", "tubes_skipped"] == "") == kept
    assert (rows.loc["v_Basketball_g01_c02", "tubes"] != "") == kept


def test_thumos13_label_disagreeing_with_classind(ucf, tmp_path):
    splits, videos = ucf
    data = _pyannot()
    data["BasketballDunk/v_BasketballDunk_g11_c04"]["label"] = 0
    with pytest.raises(thumos13.AnnotationError, match=r"pyannot.pkl.*v_BasketballDunk_g11_c04"):
        thumos13.read_split(splits, videos, _dump(tmp_path / "pyannot.pkl", data))


# --- manifest ---------------------------------------------------------------------------------


def _table(tmp_path):
    good = tmp_path / "good.avi"
    write_video(good, np.full((5, 48, 64, 3), 90, dtype=np.uint8))
    broken = tmp_path / "broken.avi"
    broken.write_bytes(b"junk" * 10)
    return pd.DataFrame({
        "video_id": ["good", "broken"], "path": [str(good), str(broken)], "label": ["A", "B"],
        "label_index": [0, 1], "split": ["train", "test"], "tubes": [_tube(1, 2), _tube(0, 3)],
        "annotated_frames": [5, 40],
    })[list(SPLIT_COLUMNS)]


def _tube(start, n_boxes):
    return encode_tubes([{"start": start, "boxes": np.tile([0, 1, 10, 12.5], (n_boxes, 1))}])


def test_probe_frames_counts_and_zeroes_unopenable_videos(tmp_path):
    # "broken" claims 40 annotated frames, but its count is unknown (0): the later stages skip
    # the video itself, so its tubes are not judged here.
    df = probe_frames(_table(tmp_path), strict=True)
    assert tuple(df.columns) == MANIFEST_COLUMNS
    assert df["n_frames"].tolist() == [5, 0]
    assert df["tubes_skipped"].tolist() == ["", ""]
    assert (df["tubes"] == _table(tmp_path)["tubes"]).all()


def test_probe_frames_refuses_a_numf_other_than_the_frame_count(tmp_path):
    table = _table(tmp_path)
    table.loc[0, "annotated_frames"] = 6  # the video has 5
    with pytest.raises(ValueError, match=r"^good: the annotation counts 6 frames .*has 5"):
        probe_frames(table, strict=True)
    df = probe_frames(table)
    assert df["tubes"].tolist() == ["", _tube(0, 3)]
    assert df["tubes_skipped"][0].startswith("the annotation counts 6 frames (numf) but ")
    assert df["tubes_skipped"][0].endswith("good.avi has 5; its boxes would not line up with "
                                           "the frames")


@pytest.mark.parametrize("start, n_boxes, fits", [(3, 2, True), (4, 2, False), (0, 6, False)])
def test_probe_frames_refuses_a_tube_past_the_last_frame(tmp_path, start, n_boxes, fits):
    # 5 frames, 0..4; ef = start + n_boxes is exclusive, so a tube may end at 5 but not at 6
    table = _table(tmp_path)
    table.loc[0, "tubes"] = _tube(start, n_boxes)
    if fits:
        assert probe_frames(table, strict=True)["tubes"][0] == _tube(start, n_boxes)
        return
    with pytest.raises(ValueError, match=r"^good: an annotated tube ends at frame 6 .*has 5 fr"):
        probe_frames(table, strict=True)
    df = probe_frames(table)
    assert df["tubes"][0] == "" and "ends at frame 6 (exclusive, ef)" in df["tubes_skipped"][0]
    assert df["n_frames"].tolist() == [5, 0] and df["tubes"][1] == _tube(0, 3)


def test_manifest_round_trips_through_parquet(tmp_path):
    df = probe_frames(_table(tmp_path))
    path = tmp_path / "manifest.parquet"
    write_manifest(df, path)
    back = read_manifest(path)
    pd.testing.assert_frame_equal(back, df)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_read_manifest_refuses_other_columns(tmp_path):
    path = tmp_path / "other.parquet"
    probe_frames(_table(tmp_path)).drop(columns=["tubes"]).to_parquet(path)
    with pytest.raises(ValueError, match=r"other.parquet.*tubes"):
        read_manifest(path)


def test_write_manifest_refuses_a_reader_table(tmp_path):
    with pytest.raises(ValueError, match=r"m.parquet.*n_frames"):
        write_manifest(_table(tmp_path), tmp_path / "m.parquet")


def test_tubes_json_round_trip():
    tubes = [{"start": 4, "boxes": np.array([[1.5, 2, 3, 4], [2, 3, 4, 5]], dtype=np.float32)},
             {"start": 0, "boxes": np.zeros((0, 4), dtype=np.float32)}]
    back = decode_tubes(encode_tubes(tubes))
    assert [t["start"] for t in back] == [4, 0]
    np.testing.assert_array_equal(back[0]["boxes"], tubes[0]["boxes"])
    assert back[1]["boxes"].shape == (0, 4) and back[0]["boxes"].dtype == np.float32
    assert decode_tubes("") == []


def test_malformed_tubes_json_is_refused():
    with pytest.raises(ValueError, match="malformed tubes"):
        decode_tubes('[{"start": 0, "boxes": [[1, 2, 3]]}]')
