import numpy as np
import pytest

from pipeline.sampling import aligned_length, random_snippet, segment_indices


def test_random_snippet_is_contiguous_in_range_and_reaches_both_ends():
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(300):
        snippet = random_snippet(35, 30, rng)
        assert snippet.shape == (30,)
        assert np.all(np.diff(snippet) == 1)
        assert snippet[0] >= 0 and snippet[-1] <= 34
        starts.add(int(snippet[0]))
    assert starts == {0, 1, 2, 3, 4, 5}


def test_random_snippet_is_reproducible_for_a_seed():
    a = [random_snippet(500, 30, np.random.default_rng(7)) for _ in range(2)]
    np.testing.assert_array_equal(a[0], a[1])


def test_random_snippet_of_exact_length_video_is_the_whole_video():
    np.testing.assert_array_equal(random_snippet(30, 30, np.random.default_rng(1)), np.arange(30))


def test_random_snippet_pads_short_video_with_its_last_frame():
    snippet = random_snippet(4, 6, np.random.default_rng(3))
    np.testing.assert_array_equal(snippet, [0, 1, 2, 3, 3, 3])


@pytest.mark.parametrize("n_frames, length", [(0, 30), (-2, 30), (10, 0)])
def test_random_snippet_rejects_empty_video_or_length(n_frames, length):
    with pytest.raises(ValueError):
        random_snippet(n_frames, length, np.random.default_rng(0))


def test_segments_of_100_frame_video():
    segments = segment_indices(100, 25, 30)
    # floor(i * 70 / 24) for i = 0..24, worked by hand
    expected_starts = [0, 2, 5, 8, 11, 14, 17, 20, 23, 26, 29, 32, 35,
                       37, 40, 43, 46, 49, 52, 55, 58, 61, 64, 67, 70]
    assert segments.shape == (25, 30)
    np.testing.assert_array_equal(segments[:, 0], expected_starts)
    assert np.all(np.diff(segments, axis=1) == 1)
    assert segments[-1, -1] == 99


def test_segments_of_exact_length_video_share_one_position():
    segments = segment_indices(30, 25, 30)
    np.testing.assert_array_equal(segments, np.tile(np.arange(30), (25, 1)))


def test_segments_of_short_video_repeat_the_last_frame():
    segments = segment_indices(10, 3, 30)
    expected = np.concatenate([np.arange(10), np.full(20, 9)])
    np.testing.assert_array_equal(segments, np.tile(expected, (3, 1)))


def test_single_segment_is_centred():
    np.testing.assert_array_equal(segment_indices(40, 1, 30), [np.arange(5, 35)])


@pytest.mark.parametrize("args", [(0, 25, 30), (100, 0, 30), (100, 25, 0)])
def test_segments_reject_bad_counts(args):
    with pytest.raises(ValueError):
        segment_indices(*args)


def test_aligned_length_is_the_shorter_stream():
    assert aligned_length(31, 30) == 30
    assert aligned_length(20, 25) == 20


def test_aligned_length_rejects_an_empty_stream():
    with pytest.raises(ValueError, match="n_flow=0"):
        aligned_length(1, 0)
