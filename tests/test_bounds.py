"""Bounds on settings that multiply memory: windows far longer than every video are refused,
a little longer are said once, and a batch must fit in a share of the machine's memory."""

import logging

import pytest

from pipeline import bounds


def test_a_window_more_than_twice_the_longest_video_is_refused(caplog):
    with pytest.raises(ValueError, match=r"\[evaluate\] length = 49: the longest test video has "
                                         r"24 frames.*set at most 48"):
        bounds.check_window("[evaluate] length", 49, 24, "test video")
    with caplog.at_level(logging.WARNING, logger="luigi-interface"):
        bounds.check_window("[train] snippet", 48, 24, "training video")
        bounds.check_window("[train] snippet", 24, 24, "training video")
    assert [r.getMessage() for r in caplog.records] == [
        "[train] snippet = 48 is longer than every training video (the longest has 24 frames): "
        "each window is padded with copies of its video's last frame"]


def test_more_segments_than_twice_the_longest_video_are_refused():
    bounds.check_segments("[evaluate] segments", 25, 24, "test video")
    with pytest.raises(ValueError, match=r"segments = 49: the longest test video has 24"):
        bounds.check_segments("[evaluate] segments", 49, 24, "test video")


def test_a_batch_must_fit_in_a_quarter_of_the_memory():
    # 128 snippets of 30 frames of two 7x7x512 float32 inputs: 770 MB (the paper profile)
    frame = bounds.frame_bytes({"features": (7, 7, 512), "motion": (7, 7, 512)})
    assert frame == 2 * 7 * 7 * 512 * 4
    bounds.check_batch("[train] batch_size x snippet", 128 * 30, frame, memory=4 << 30)
    with pytest.raises(ValueError, match=r"batch_size x snippet: one batch of inputs needs 0.7 "
                                         r"GiB, more than 25% of this machine's 2.0 GiB"):
        bounds.check_batch("[train] batch_size x snippet", 128 * 30, frame, memory=2 << 30)


def test_segments_per_call_keep_the_inputs_within_the_budget():
    assert bounds.per_call(30 * 200_704, budget=256 << 20) == 44
    assert bounds.per_call(100_000 * 200_704, budget=256 << 20) == 1
