"""Intervals and paired tests against hand-worked cases."""

import numpy as np
import pytest

from pipeline.report.stats import (bootstrap_interval, mcnemar_test, paired_bootstrap,
                                   replicate_mean_interval, sign_flip_test,
                                   wilson_interval)

Z2 = 1.959963984540054 ** 2  # z for 95%, squared: 3.841459


def test_wilson_hand_case():
    # 8 of 10: centre (0.8 + z²/20) / (1 + z²/10) = 0.99207 / 1.38415 = 0.71674,
    # half width z * sqrt(0.8 * 0.2 / 10 + z² / 400) / 1.38415 = 1.96 * 0.16001 / 1.38415 = 0.22657
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=5e-5)
    assert high == pytest.approx(0.9433, abs=5e-5)


def test_wilson_edges():
    # 0 of n: [0, z² / (n + z²)]; n of n: [n / (n + z²), 1]
    assert wilson_interval(0, 10) == pytest.approx((0.0, Z2 / (10 + Z2)))
    assert wilson_interval(10, 10) == pytest.approx((10 / (10 + Z2), 1.0))
    with pytest.raises(ValueError, match="n >= 1"):
        wilson_interval(0, 0)


def test_wilson_narrows_with_lower_confidence():
    low95, high95 = wilson_interval(8, 10)
    low50, high50 = wilson_interval(8, 10, confidence=0.5)
    assert low95 < low50 < 0.8 < high50 < high95


def test_replicate_mean_interval_rounds_the_mean_count():
    # replicates with 8, 9 and 9 of 10 right: mean count 8.67 -> Wilson of 9 / 10
    hits = np.array([[1] * 8 + [0] * 2, [1] * 9 + [0], [0] + [1] * 9])
    assert replicate_mean_interval(hits) == pytest.approx(wilson_interval(9, 10))
    assert replicate_mean_interval(hits[:1]) == pytest.approx(wilson_interval(8, 10))
    with pytest.raises(ValueError, match="replicates, items"):
        replicate_mean_interval(hits[0])


def flags(a_only, b_only, both, neither):
    a = [True] * a_only + [False] * b_only + [True] * both + [False] * neither
    b = [False] * a_only + [True] * b_only + [True] * both + [False] * neither
    return np.array(a), np.array(b)


def test_mcnemar_exact_binomial():
    # 9 vs 1 discordant: p = 2 * (C(10,0) + C(10,1)) / 2^10 = 2 * 11 / 1024 = 0.021484375;
    # concordant videos do not count
    result = mcnemar_test(*flags(9, 1, both=30, neither=7))
    assert (result.a_only, result.b_only) == (9, 1)
    assert result.p_value == pytest.approx(0.021484375)


def test_mcnemar_symmetric_and_empty():
    # 3 vs 3: the two tails cover every outcome, p = 1; swapping A and B swaps the counts
    assert mcnemar_test(*flags(3, 3, both=4, neither=0)).p_value == pytest.approx(1.0)
    a, b = flags(9, 1, both=2, neither=0)
    swapped = mcnemar_test(b, a)
    assert (swapped.a_only, swapped.b_only) == (1, 9)
    assert swapped.p_value == pytest.approx(0.021484375)
    assert tuple(mcnemar_test(*flags(0, 0, both=5, neither=5))) == (0, 0, 1.0)


def test_mcnemar_lengths_must_match():
    with pytest.raises(ValueError, match="lengths 3 and 4"):
        mcnemar_test([True] * 3, [True] * 4)


def test_bootstrap_is_deterministic_for_a_seed_and_contains_the_estimate():
    values = np.random.default_rng(1).normal(5.0, 2.0, size=50)
    interval = bootstrap_interval(values, np.mean, resamples=500, seed=3)
    assert bootstrap_interval(values, np.mean, resamples=500, seed=3) == interval
    assert bootstrap_interval(values, np.mean, resamples=500, seed=4) != interval
    assert interval[0] < values.mean() < interval[1]
    # se of the mean is about 2 / sqrt(50) = 0.28, so the 95% interval spans about 1.1
    assert 0.7 < interval[1] - interval[0] < 1.6


def test_bootstrap_resamples_a_tuple_jointly():
    # y == 2 x on every video, so any joint resample has mean(y) / mean(x) == 2 exactly;
    # resampling the two arrays independently would not
    x = np.arange(1.0, 21.0)
    y = np.stack([2 * x, -x], axis=1)  # (V, 2): trailing axes travel with their video
    low, high = bootstrap_interval((x, y), lambda a, b: b[:, 0].mean() / a.mean(), resamples=200)
    assert low == pytest.approx(2.0) and high == pytest.approx(2.0)


def test_bootstrap_resamples_keep_the_videos_order():
    # Every resample lists its videos in their order (here 0 .. 29), so a ranked statistic
    # breaks ties in test-list order as on all videos; unordered draws would not be sorted.
    def in_order(videos):
        return float(np.all(np.diff(videos) >= 0))
    assert bootstrap_interval(np.arange(30), in_order, resamples=50) == (1.0, 1.0)


def test_bootstrap_rejects_arrays_of_different_lengths():
    with pytest.raises(ValueError, match="first"):
        bootstrap_interval((np.zeros(3), np.zeros(4)), lambda a, b: 0.0)


def test_paired_bootstrap_constant_shift():
    # A = B + 1 on every video: every resampled difference is 1, so the interval is [1, 1]
    # and no resample is <= 0: p = 2 * min(0, 1) = 0
    b = np.random.default_rng(2).normal(0.0, 10.0, size=40)
    result = paired_bootstrap(b + 1, b, np.mean, resamples=300)
    assert result.difference == pytest.approx(1.0)
    assert result.low == pytest.approx(1.0) and result.high == pytest.approx(1.0)
    assert result.p_value == 0.0


def test_paired_bootstrap_no_difference_has_p_one():
    b = np.random.default_rng(2).normal(size=30)
    assert paired_bootstrap(b, b.copy(), np.mean, resamples=100) == (0.0, 0.0, 0.0, 1.0)


def test_pairing_narrows_the_interval():
    # videos vary a lot (sd 10) but A is B + 0.5 on 20 of 200 videos: the paired differences
    # are 0.5 or 0 (sd 0.15, se 0.011) while an unpaired difference carries each side's own
    # spread (se about 10 / sqrt(200) = 0.71 each), wider than either side's interval alone
    b = np.random.default_rng(5).normal(0.0, 10.0, size=200)
    a = b.copy()
    a[::10] += 0.5
    paired = paired_bootstrap(a, b, np.mean, resamples=1000)
    assert paired.difference == pytest.approx(0.05)
    assert 0 < paired.low < 0.05 < paired.high
    assert paired.p_value < 0.05
    unpaired_low, unpaired_high = bootstrap_interval(b, np.mean, resamples=1000)
    assert paired.high - paired.low < 0.05 * (unpaired_high - unpaired_low)


def test_paired_bootstrap_tuples_and_lengths():
    # statistic over (overlaps, labels); A's overlaps exceed B's by 0.25 on every video
    overlaps = np.linspace(0.0, 0.5, 12)
    labels = np.arange(12) % 3
    result = paired_bootstrap((overlaps + 0.25, labels), (overlaps, labels),
                              lambda o, y: float(np.mean(o)), resamples=100)
    assert result.difference == pytest.approx(0.25) and result.p_value == 0.0
    with pytest.raises(ValueError, match="12 videos but B has 11"):
        paired_bootstrap(overlaps, overlaps[:11], np.mean)


def test_sign_flip_with_one_replicate_is_exact_mcnemar():
    rng = np.random.default_rng(3)
    for _ in range(50):
        a, b = rng.random(40) < 0.6, rng.random(40) < 0.45
        assert sign_flip_test(a, b).p_value == pytest.approx(mcnemar_test(a, b).p_value,
                                                             abs=1e-12)


def test_sign_flip_hand_cases():
    # 5 videos every replicate of A gets right and of B wrong: 2 of the 2^5 sign patterns
    # reach |sum| = 5, p = 1/16; a sixth such video halves it
    assert sign_flip_test(np.ones((3, 5)), np.zeros((3, 5))) == (1.0, 0.0625)
    assert sign_flip_test(np.ones((3, 6)), np.zeros((3, 6))).p_value == pytest.approx(1 / 32)
    # K = 2: per-video sums K*d = [2, 1, 0]; signed sums +-2 +-1 = 3, 1, -1, -3 equally likely,
    # |S| >= 3 has probability 1/2; the mean difference is 3 successes over 2 x 3 trials
    a = np.array([[1, 1, 0], [1, 0, 0]], bool)
    assert sign_flip_test(a, np.zeros((2, 3), bool)) == (0.5, 0.5)
    # a video right in one replicate and wrong in the other cancels (d = 0) and does not count
    assert sign_flip_test(np.array([[1], [0]]), np.array([[0], [1]])) == (0.0, 1.0)


def test_sign_flip_keeps_the_video_as_the_unit():
    # the same 4 discordant videos in 3 replicates are 4 videos, not 12 independent pairs:
    # p = 2/16, where pooling the 12 pairs as one McNemar test would give 2/4096
    a, b = np.tile(np.arange(8) < 4, (3, 1)), np.zeros((3, 8), bool)
    assert sign_flip_test(a, b).p_value == pytest.approx(2 / 16)
    with pytest.raises(ValueError, match="one shape"):
        sign_flip_test(a, b[:2])


def test_pooled_bootstrap_averages_replicates_on_the_same_resamples():
    one = np.arange(10.0)
    pooled = paired_bootstrap([one + 1, one + 3], [one, one], np.mean, resamples=200, seed=4)
    assert pooled.difference == pytest.approx(2.0)
    assert pooled.low == pytest.approx(2.0) and pooled.high == pytest.approx(2.0)
    single = paired_bootstrap(one + 1, one, np.mean, resamples=200, seed=4)
    assert paired_bootstrap([one + 1], [one], np.mean, resamples=200, seed=4) == single
    assert bootstrap_interval([one, one + 10], np.mean, resamples=300, seed=1) == pytest.approx(
        np.add(bootstrap_interval(one, np.mean, resamples=300, seed=1), 5))
    with pytest.raises(ValueError, match="share their videos"):
        bootstrap_interval([one, one[:5]], np.mean)
