"""Uncertainty and paired tests over the test videos: Wilson and bootstrap intervals, McNemar.

Every measurement is per video, and two methods are compared on the same videos, so the
comparisons are paired: McNemar on per-video correctness, and a bootstrap that resamples the
same video indices for both methods. With several training replicates of each method, the
videos stay the unit that is resampled (the replicates of one video are not independent): the
tests below pool the replicates by averaging within each video or within each resample. The resampling is written here rather than taken from
scipy.stats.bootstrap, which moves the resampled axis last and so does not suit statistics
written over (V, ...) arrays such as scores (V, C).
"""

from typing import Callable, NamedTuple

import numpy as np
from scipy.stats import binomtest


class McNemar(NamedTuple):
    """Exact McNemar test: videos only A got right, only B got right, two-sided p-value."""

    a_only: int
    b_only: int
    p_value: float


class SignFlip(NamedTuple):
    """Replicate-pooled paired test of successes: the mean difference in success rate over
    replicates and the exact two-sided p-value."""

    difference: float
    p_value: float


class PairedDifference(NamedTuple):
    """statistic(A) - statistic(B) on all videos, its percentile interval and two-sided p."""

    difference: float
    low: float
    high: float
    p_value: float


def wilson_interval(successes: int, n: int, confidence=0.95) -> tuple[float, float]:
    """Wilson score interval of the proportion successes / n (sensible also at 0 and n)."""
    if n < 1:
        raise ValueError(f"need n >= 1 trials, got {n}")
    interval = binomtest(int(successes), int(n)).proportion_ci(confidence, method="wilson")
    return float(interval.low), float(interval.high)


def replicate_mean_interval(hits, confidence=0.95) -> tuple[float, float]:
    """Wilson interval of the mean success rate of K replicates over the same n items, hits
    (K, n) of 0/1: the replicates' mean count, rounded, out of n (one replicate: plain Wilson)."""
    hits = np.asarray(hits, dtype=np.float64)
    if hits.ndim != 2:
        raise ValueError(f"hits must be (replicates, items), got shape {hits.shape}")
    return wilson_interval(round(hits.mean() * hits.shape[1]), hits.shape[1], confidence)


def mcnemar_test(correct_a, correct_b) -> McNemar:
    """Exact two-sided McNemar test of two classifiers' per-video correctness (same videos).

    Only discordant videos count: a binomial test of a_only against b_only at p = 0.5;
    p = 1 when there is none.
    """
    correct_a = np.asarray(correct_a, dtype=bool)
    correct_b = np.asarray(correct_b, dtype=bool)
    if correct_a.shape != correct_b.shape or correct_a.ndim != 1:
        raise ValueError(f"need two flag vectors of one length, got lengths {correct_a.size} "
                         f"and {correct_b.size}")
    a_only = int(np.sum(correct_a & ~correct_b))
    b_only = int(np.sum(correct_b & ~correct_a))
    if a_only + b_only == 0:
        return McNemar(0, 0, 1.0)
    return McNemar(a_only, b_only, float(binomtest(a_only, a_only + b_only, 0.5).pvalue))


def sign_flip_test(successes_a, successes_b) -> SignFlip:
    """Exact paired randomisation test of two methods' per-video successes over K replicates.

    successes_a, successes_b: bool (K, V) (or (V,) for one replicate), replicate k of each
    method on the same V videos. Each video's difference d_v = mean_k(a_kv - b_kv) is a
    multiple of 1/K; under the null every d_v is as likely positive as negative, independently
    over videos. p = P(|sum of randomly signed |d_v|| >= |sum d_v|), counted exactly over the
    integer sums K d_v. With K = 1 this is the exact McNemar test.
    """
    a = np.atleast_2d(np.asarray(successes_a, dtype=bool)).astype(int)
    b = np.atleast_2d(np.asarray(successes_b, dtype=bool)).astype(int)
    if a.shape != b.shape:
        raise ValueError(f"need successes of one shape (K, V), got {a.shape} and {b.shape}")
    steps = (a - b).sum(axis=0)
    observed = int(steps.sum())
    sizes = np.abs(steps[steps != 0])
    total = int(sizes.sum())
    counts = np.zeros(2 * total + 1)
    counts[total] = 1.0
    for size in sizes:  # the distribution of the signed sum, one video at a time
        counts = 0.5 * (np.roll(counts, size) + np.roll(counts, -size))
    tail = np.abs(np.arange(-total, total + 1)) >= abs(observed)
    p_value = float(counts[tail].sum()) if total else 1.0
    return SignFlip(observed / a.size, min(1.0, p_value))


def bootstrap_interval(values, statistic: Callable[..., float], *, resamples=2000, seed=0,
                       confidence=0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of statistic(*values) over videos resampled with replacement.

    `values` is an array (V, ...) or a tuple of arrays sharing the first axis V; all arrays are
    resampled with the same video indices. A list of such values (one per replicate, on the
    same videos) gives the interval of the statistic's mean over the replicates.
    """
    replicates = _replicates(values)
    draws = [_mean_over(replicates, statistic, i)
             for i in _indices(len(replicates[0][0]), resamples, seed)]
    return _percentile_interval(draws, confidence)


def paired_bootstrap(values_a, values_b, statistic: Callable[..., float], *, resamples=2000,
                     seed=0, confidence=0.95) -> PairedDifference:
    """Bootstrap of statistic(A) - statistic(B), resampling the same videos for A and B.

    values_a / values_b are as in `bootstrap_interval`, on the same V videos; lists of them
    (replicates) compare the statistic's means over replicates, each resample drawing the same
    videos in every replicate. The p-value is 2 * min(fraction of resampled differences <= 0,
    fraction >= 0), capped at 1.
    """
    replicates_a, replicates_b = _replicates(values_a), _replicates(values_b)
    n_a, n_b = len(replicates_a[0][0]), len(replicates_b[0][0])
    if n_a != n_b:
        raise ValueError(f"A has {n_a} videos but B has {n_b}")
    everything = slice(None)
    difference = float(_mean_over(replicates_a, statistic, everything)
                       - _mean_over(replicates_b, statistic, everything))
    draws = np.array([_mean_over(replicates_a, statistic, i) - _mean_over(replicates_b, statistic, i)
                      for i in _indices(n_a, resamples, seed)])
    low, high = _percentile_interval(draws, confidence)
    p_value = min(1.0, 2 * min(np.mean(draws <= 0), np.mean(draws >= 0)))
    return PairedDifference(difference, low, high, float(p_value))


def _replicates(values) -> list[tuple[np.ndarray, ...]]:
    """One replicate's values, or a list of replicates' values on the same videos, as a list
    of checked array tuples."""
    replicates = [_videos(v) for v in (values if isinstance(values, list) else [values])]
    if len({len(r[0]) for r in replicates}) != 1:
        raise ValueError(f"replicates must share their videos, got lengths "
                         f"{[len(r[0]) for r in replicates]}")
    return replicates


def _mean_over(replicates, statistic: Callable[..., float], videos) -> float:
    """The statistic's mean over replicates, each on the same ``videos`` (indices or a slice)."""
    return float(np.mean([statistic(*(a[videos] for a in arrays)) for arrays in replicates]))


def _videos(values) -> tuple[np.ndarray, ...]:
    """The arrays of `values` (one array or a tuple of them), checked to share the video axis."""
    arrays = tuple(np.asarray(v) for v in (values if isinstance(values, tuple) else (values,)))
    lengths = [a.shape[0] if a.ndim else None for a in arrays]
    if not arrays or None in lengths or len(set(lengths)) != 1 or lengths[0] < 1:
        raise ValueError(f"need arrays sharing a first (video) axis of length >= 1, got "
                         f"shapes {[a.shape for a in arrays]}")
    return arrays


def _indices(n: int, resamples: int, seed: int):
    """`resamples` draws of n video indices with replacement, fixed by the seed, in ascending
    order: a resample keeps the videos' order, in which ranked statistics (video mAP) break
    score ties as the evaluator does (test-list order)."""
    rng = np.random.default_rng(seed)
    for _ in range(resamples):
        yield np.sort(rng.integers(0, n, n))


def _percentile_interval(draws, confidence: float) -> tuple[float, float]:
    """The central `confidence` range of the bootstrap draws."""
    low, high = np.quantile(draws, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(low), float(high)
