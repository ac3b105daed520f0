"""Video decoding and writing through OpenCV on real AVI files."""

import struct

import cv2
import numpy as np
import pytest

from pipeline.video import (VideoError, count_frames, format_frame_size, header_frames,
                            iter_frames, parse_frame_size, probe_frame_count, read_frames,
                            resize_frame, shortfall, write_video)


def claim_frames(path, count: int) -> None:
    """Rewrite an AVI's header to claim ``count`` frames (the main header's dwTotalFrames and
    the stream header's dwLength), as containers that store an estimate do."""
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, data.find(b"avih") + 8 + 16, count)
    struct.pack_into("<I", data, data.find(b"strh") + 8 + 32, count)
    path.write_bytes(bytes(data))


def damage_frame(path, index: int) -> None:
    """Flip the bytes of the Huffman tables of frame ``index`` of an MJPG AVI (its JPEG's
    DHT segments), as a bad sector or a broken download may: that frame no longer decodes,
    the others still do."""
    data = bytearray(path.read_bytes())
    start = -1
    for _ in range(index + 1):
        start = data.index(b"\xff\xd8\xff", start + 1)
    scan = data.index(b"\xff\xda", start)
    table = data.find(b"\xff\xc4", start)
    while 0 <= table < scan:
        length = int.from_bytes(data[table + 2:table + 4], "big")
        for offset in range(table + 5, table + 2 + length):
            data[offset] ^= 0xFF
        table = data.find(b"\xff\xc4", table + 2 + length)
    path.write_bytes(bytes(data))


def test_a_damaged_frame_cuts_decoding_short_and_says_so(tmp_path):
    path = tmp_path / "clip.avi"
    write_video(path, _smooth_frames(8))
    damage_frame(path, 3)
    assert len(read_frames(path)) == count_frames(path) == 3
    assert header_frames(path) == probe_frame_count(path) == 8
    assert shortfall(header_frames(path), 3) == (
        "decoded 3 of the 8 frames its header counts (decoding stops at a damaged frame)")
    assert shortfall(8, 8) == shortfall(0, 3) == shortfall(8, 12) == ""
    assert header_frames(tmp_path / "absent.avi") == 0


def _smooth_frames(n=6, h=48, w=64):
    """Frames with smooth gradients (MJPG-friendly) whose colour order and time order are known."""
    yy, xx = np.mgrid[:h, :w]
    frames = np.zeros((n, h, w, 3), dtype=np.uint8)
    for t in range(n):
        frames[t, ..., 0] = 200
        frames[t, ..., 1] = (xx * 2 + 10 * t).clip(0, 255)
        frames[t, ..., 2] = 30 + yy
    return frames


def test_written_avi_decodes_to_the_same_rgb_frames(tmp_path):
    frames = _smooth_frames()
    path = tmp_path / "clip.avi"
    write_video(path, frames, fps=25)
    decoded = read_frames(path)
    assert decoded.shape == frames.shape and decoded.dtype == np.uint8
    assert np.abs(decoded.astype(int) - frames).mean() < 4
    # channel order is RGB: red was constant 200, blue grows down the rows
    assert abs(decoded[..., 0].mean() - 200) < 4
    assert decoded[:, -1, :, 2].mean() > decoded[:, 0, :, 2].mean() + 30
    # time order is kept: green grows with t
    assert np.all(np.diff(decoded[..., 1].mean(axis=(1, 2))) > 5)


def test_iter_frames_streams_one_frame_at_a_time(tmp_path):
    path = tmp_path / "clip.avi"
    write_video(path, _smooth_frames(n=4))
    frames = iter_frames(path)
    first = next(frames)
    assert first.shape == (48, 64, 3) and first.dtype == np.uint8
    assert sum(1 for _ in frames) == 3


def test_probe_frame_count_reads_the_header(tmp_path):
    path = tmp_path / "clip.avi"
    write_video(path, _smooth_frames(n=7))
    assert probe_frame_count(path) == 7


def test_count_frames_decodes_where_the_header_is_an_estimate(tmp_path):
    path = tmp_path / "clip.avi"
    write_video(path, _smooth_frames(n=8))
    claim_frames(path, 12)
    assert probe_frame_count(path) == 12
    assert count_frames(path) == len(read_frames(path)) == 8


def test_missing_file_is_a_video_error_naming_it(tmp_path):
    path = tmp_path / "absent.avi"
    for call in (iter_frames, read_frames, probe_frame_count, count_frames):
        with pytest.raises(VideoError, match="absent.avi"):
            call(path)


def test_garbage_file_cannot_be_opened(tmp_path):
    path = tmp_path / "garbage.avi"
    path.write_bytes(b"not a video at all" * 20)
    with pytest.raises(VideoError, match="garbage.avi.*cannot open"):
        iter_frames(path)
    with pytest.raises(VideoError, match="garbage.avi"):
        probe_frame_count(path)


def test_video_without_frames_is_refused(tmp_path):
    path = tmp_path / "empty.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (64, 48))
    assert writer.isOpened()
    writer.release()
    with pytest.raises(VideoError, match="empty.avi.*no frames"):
        read_frames(path)


@pytest.mark.parametrize(
    "frames, problem",
    [
        (np.zeros((2, 48, 64, 3), dtype=np.float32), "uint8"),
        (np.zeros((48, 64, 3), dtype=np.uint8), "shape"),
        (np.zeros((0, 48, 64, 3), dtype=np.uint8), "no frames"),
        (np.zeros((2, 47, 64, 3), dtype=np.uint8), "even"),
    ],
)
def test_write_video_refuses_bad_frames(tmp_path, frames, problem):
    with pytest.raises(VideoError, match=f"bad.avi.*{problem}"):
        write_video(tmp_path / "bad.avi", frames)


def test_write_video_refuses_a_missing_folder(tmp_path):
    with pytest.raises(VideoError, match="nowhere"):
        write_video(tmp_path / "nowhere" / "clip.avi", _smooth_frames(n=2))


def test_frame_size_reads_width_by_height():
    assert parse_frame_size("340x256") == (340, 256)
    assert parse_frame_size(" 160 X 120 ") == (160, 120)
    assert format_frame_size((340, 256)) == "340x256"
    for bad in ("340", "340x", "340*256", "-340x256", "340x256x3", "0x0", "8x256", ""):
        with pytest.raises(ValueError, match="WIDTHxHEIGHT|at least 16x16"):
            parse_frame_size(bad)


def test_resize_stretches_to_the_frame_size_and_keeps_a_frame_of_that_size():
    frame = np.random.default_rng(0).integers(0, 255, (72, 128, 3), dtype=np.uint8)
    assert resize_frame(frame, (32, 24)).shape == (24, 32, 3)  # 16:9 stretched to 4:3
    assert resize_frame(frame, (256, 144)).shape == (144, 256, 3)
    assert resize_frame(frame[..., 0], (32, 24)).shape == (24, 32)
    assert resize_frame(frame, (128, 72)) is frame and resize_frame(frame, None) is frame
    flat = np.full((48, 64, 3), 77, np.uint8)
    assert np.all(resize_frame(flat, (20, 30)) == 77)


def test_frames_are_read_at_a_frame_size(tmp_path):
    path = tmp_path / "clip.avi"
    write_video(path, _smooth_frames(n=3))
    resized = read_frames(path, (32, 24))
    assert resized.shape == (3, 24, 32, 3)
    np.testing.assert_array_equal(resized, [resize_frame(f, (32, 24)) for f in read_frames(path)])
    assert next(iter_frames(path, (32, 24))).shape == (24, 32, 3)
    with pytest.raises(VideoError, match="does not exist"):
        iter_frames(tmp_path / "missing.avi", (32, 24))
