"""Uncertainty and paired tests over the test videos: Wilson and bootstrap intervals, McNemar.

Every measurement is per video, and two methods are compared on the same videos, so the
comparisons are paired: McNemar on per-video correctness, and a bootstrap that resamples the
same video indices for both methods. The resampling is written here rather than taken from
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


def bootstrap_interval(values, statistic: Callable[..., float], *, resamples=2000, seed=0,
                       confidence=0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of statistic(*values) over videos resampled with replacement.

    `values` is an array (V, ...) or a tuple of arrays sharing the first axis V; all arrays are
    resampled with the same video indices.
    """
    arrays = _videos(values)
    draws = [statistic(*(a[i] for a in arrays)) for i in _indices(len(arrays[0]), resamples, seed)]
    return _percentile_interval(draws, confidence)


def paired_bootstrap(values_a, values_b, statistic: Callable[..., float], *, resamples=2000,
                     seed=0, confidence=0.95) -> PairedDifference:
    """Bootstrap of statistic(A) - statistic(B), resampling the same videos for A and B.

    values_a / values_b are as in `bootstrap_interval`, on the same V videos. The p-value is
    2 * min(fraction of resampled differences <= 0, fraction >= 0), capped at 1.
    """
    arrays_a, arrays_b = _videos(values_a), _videos(values_b)
    n_a, n_b = len(arrays_a[0]), len(arrays_b[0])
    if n_a != n_b:
        raise ValueError(f"A has {n_a} videos but B has {n_b}")
    difference = float(statistic(*arrays_a) - statistic(*arrays_b))
    draws = np.array([statistic(*(a[i] for a in arrays_a)) - statistic(*(b[i] for b in arrays_b))
                      for i in _indices(n_a, resamples, seed)])
    low, high = _percentile_interval(draws, confidence)
    p_value = min(1.0, 2 * min(np.mean(draws <= 0), np.mean(draws >= 0)))
    return PairedDifference(difference, low, high, float(p_value))


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
