"""The paper's claims, written down as hypotheses before any numbers exist, and their verdicts.

Each claim is a set of comparisons between two per-video measurements on the same test videos,
named by keys such as "table1/rgb/convalstm". A comparison is decided by a paired test (exact
McNemar for per-video successes, paired bootstrap otherwise) at level ALPHA; a claim holds only
when every one of its comparisons is significantly in the claimed direction.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Callable, Mapping, NamedTuple

import numpy as np
import pandas as pd

from pipeline.report.stats import (bootstrap_interval, mcnemar_test, paired_bootstrap,
                            wilson_interval)

ALPHA = 0.05
RECALL_IOU = 0.2
STREAMING_TOLERANCE = 1e-4
STREAMING_CLAIM = "C5"
METRICS = ("accuracy", "recall", "map", "gain")


class Verdict(StrEnum):
    """A claim's verdict; compares equal to its text."""

    HOLDS = "holds"
    DOES_NOT_HOLD = "does not hold"
    INCONCLUSIVE = "inconclusive"
    NOT_MEASURED = "not measured"


class Outcome(StrEnum):
    """A comparison's outcome at level ALPHA; compares equal to its text."""

    BETTER = "better"
    WORSE = "worse"
    NO_DIFFERENCE = "no significant difference"


@dataclass(frozen=True)
class Comparison:
    """The claim that measurement `better` exceeds measurement `worse` on `metric`."""

    name: str
    better: str
    worse: str
    metric: str

    def __post_init__(self):
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {self.metric!r}")


@dataclass(frozen=True)
class Claim:
    """One of the paper's claims as measured here, with the comparisons that decide it."""

    key: str
    source: str
    hypothesis: str
    comparisons: tuple[Comparison, ...]


def _table1(stream: str) -> tuple[Comparison, ...]:
    return tuple(Comparison(f"ConvALSTM > {name}, {stream}", f"table1/{stream}/convalstm",
                            f"table1/{stream}/{arch}", "accuracy")
                 for arch, name in (("alstm", "ALSTM"), ("convlstm", "ConvLSTM")))


CLAIMS = (
    Claim("C1", "Table 1",
          "ConvALSTM is more accurate than ALSTM and than ConvLSTM, on RGB and on flow input.",
          _table1("rgb") + _table1("flow")),
    Claim("C2", "Table 2",
          "On RGB input, motion-based attention is more accurate than appearance-based "
          "attention, for ALSTM and for ConvALSTM.",
          (Comparison("motion > appearance attention, ALSTM", "table2/motion/alstm",
                      "table2/appearance/alstm", "accuracy"),
           Comparison("motion > appearance attention, ConvALSTM", "table2/motion/convalstm",
                      "table2/appearance/convalstm", "accuracy"))),
    Claim("C3", "Table 3",
          "Product fusion of VideoLSTM's RGB and flow scores is more accurate than either "
          "stream alone.",
          (Comparison("fused > rgb", "table3/fused", "table3/rgb", "accuracy"),
           Comparison("fused > flow", "table3/fused", "table3/flow", "accuracy"))),
    Claim("C4", "Fig. 4a",
          f"VideoLSTM's smoothed tubes beat ALSTM's in recall and video mAP at IoU {RECALL_IOU}, "
          "and LOWESS smoothing raises VideoLSTM's mean overlap more than ALSTM's.",
          (Comparison(f"VideoLSTM > ALSTM, recall@{RECALL_IOU}", "fig4/videolstm/smoothed",
                      "fig4/alstm/smoothed", "recall"),
           Comparison(f"VideoLSTM > ALSTM, mAP@{RECALL_IOU}", "fig4/videolstm/smoothed",
                      "fig4/alstm/smoothed", "map"),
           Comparison("VideoLSTM > ALSTM, smoothing gain", "fig4/videolstm", "fig4/alstm",
                      "gain"))),
    Claim("C5", "Sec. 4",
          "Predicting frame by frame as the video streams in gives the scores of the "
          f"whole-sequence run (max absolute difference <= {STREAMING_TOLERANCE:g}).",
          ()),
)
"""The paper's claims, fixed before any result is computed."""


class Estimate(NamedTuple):
    """A point estimate and its 95% interval."""

    value: float
    low: float
    high: float


class ComparisonResult(NamedTuple):
    """A comparison's two estimates, their difference, the paired test and its outcome."""

    comparison: Comparison
    better: Estimate
    worse: Estimate
    difference: float
    p_value: float
    test: str
    outcome: Outcome


class ClaimResult(NamedTuple):
    """A claim's verdict, its comparisons' results, the measurements it lacked and, for the
    streaming claim, the measured maximum score difference."""

    claim: Claim
    verdict: Verdict
    comparisons: tuple[ComparisonResult, ...] = ()
    missing: tuple[str, ...] = ()
    streaming_difference: float | None = None


def outcome(difference: float, p_value: float) -> Outcome:
    """Whether a paired difference is significantly positive, significantly negative, or neither."""
    if p_value < ALPHA and difference > 0:
        return Outcome.BETTER
    if p_value < ALPHA and difference < 0:
        return Outcome.WORSE
    return Outcome.NO_DIFFERENCE


def verdict(outcomes) -> Verdict:
    """Holds when every comparison is better, does not hold when any is worse, else inconclusive."""
    outcomes = list(outcomes)
    if Outcome.WORSE in outcomes:
        return Verdict.DOES_NOT_HOLD
    if outcomes and all(o == Outcome.BETTER for o in outcomes):
        return Verdict.HOLDS
    return Verdict.INCONCLUSIVE


def compare(comparison: Comparison, better, worse, map_at=None, *, resamples=2000,
            seed=0) -> ComparisonResult:
    """Estimates, paired test and outcome of one comparison from its two measurements.

    accuracy: bool (V,) correct per video. recall: overlaps (V, K) of each video's tube with
    its ground-truth tubes, NaN past a video's tubes (or the map tuple, whose first element
    they are); a success is a ground-truth tube overlapping > RECALL_IOU, counted per tube as
    recall.csv counts them, so McNemar pairs the two methods tube by tube. Both by Wilson
    interval and McNemar. map: (overlaps (V, K), scores (V, C), labels (V,)) scored by
    `map_at`; gain: (smoothed overlaps (V, K), not-smoothed overlaps (V, K)), the mean change
    per ground-truth tube; both by a bootstrap over videos, each with all its tubes.
    """
    if comparison.metric in ("accuracy", "recall"):
        flags = [_successes(comparison.metric, m) for m in (better, worse)]
        test = mcnemar_test(*flags)
        estimates = [Estimate(float(f.mean()), *wilson_interval(int(f.sum()), f.size))
                     for f in flags]
        difference = estimates[0].value - estimates[1].value
        return ComparisonResult(comparison, *estimates, difference, test.p_value, "McNemar",
                                outcome(difference, test.p_value))
    statistic = _statistic(comparison.metric, map_at)
    better, worse = (tuple(np.asarray(a) for a in m) for m in (better, worse))
    bootstrap = {"resamples": resamples, "seed": seed}
    estimates = [Estimate(float(statistic(*m)), *bootstrap_interval(m, statistic, **bootstrap))
                 for m in (better, worse)]
    paired = paired_bootstrap(better, worse, statistic, **bootstrap)
    return ComparisonResult(comparison, *estimates, paired.difference, paired.p_value,
                            "paired bootstrap", outcome(paired.difference, paired.p_value))


def evaluate_claims(measurements: Mapping[str, object],
                    map_at: Callable[..., float] | None = None,
                    streaming_difference: float | None = None, *, resamples=2000,
                    seed=0) -> list[ClaimResult]:
    """The verdict of every claim in CLAIMS from per-video measurements keyed as in CLAIMS.

    A claim whose measurements are absent is "not measured" (with the missing keys) rather
    than an error; the streaming claim is decided by `streaming_difference` against
    STREAMING_TOLERANCE.
    """
    results = []
    for claim in CLAIMS:
        if claim.key == STREAMING_CLAIM:
            results.append(_streaming(claim, streaming_difference))
            continue
        keys = dict.fromkeys(k for c in claim.comparisons for k in (c.better, c.worse))
        missing = tuple(k for k in keys if k not in measurements)
        if missing:
            results.append(ClaimResult(claim, Verdict.NOT_MEASURED, missing=missing))
            continue
        compared = tuple(compare(c, measurements[c.better], measurements[c.worse], map_at,
                                 resamples=resamples, seed=seed) for c in claim.comparisons)
        results.append(ClaimResult(claim, verdict(r.outcome for r in compared), compared))
    return results


def claims_table(results) -> pd.DataFrame:
    """One row per comparison (one for the streaming claim): estimates, test, p, verdicts."""
    rows = []
    for result in results:
        claim = result.claim
        base = {"claim": claim.key, "hypothesis": claim.hypothesis}
        verdict_text = str(result.verdict)
        if result.missing:
            verdict_text += f" (missing: {', '.join(result.missing)})"
        if claim.key == STREAMING_CLAIM:
            difference = result.streaming_difference
            ours = "" if difference is None else f"max abs difference {difference:.2g}"
            rows.append({**base, "comparison": "streaming = whole sequence", "ours": ours,
                         "test": f"max abs difference <= {STREAMING_TOLERANCE:g}", "p": np.nan,
                         "outcome": "", "verdict": verdict_text})
            continue
        measured = result.comparisons or (None,) * len(claim.comparisons)
        for comparison, r in zip(claim.comparisons, measured):
            ours = "" if r is None else f"{_percent(r.better)} vs {_percent(r.worse)}"
            rows.append({**base, "comparison": comparison.name, "ours": ours,
                         "test": "" if r is None else r.test,
                         "p": np.nan if r is None else r.p_value,
                         "outcome": "" if r is None else str(r.outcome),
                         "verdict": verdict_text})
    return pd.DataFrame(rows, columns=["claim", "hypothesis", "comparison", "ours", "test", "p",
                                       "outcome", "verdict"])


def claims_markdown(results) -> str:
    """A "## Claims" section: how verdicts are decided, then the claims table."""
    table = claims_table(results)
    lines = [
        "## Claims", "",
        f"Each claim was written down before any result. Comparisons are paired over the same "
        f"test videos: exact McNemar for accuracy (per video) and recall@{RECALL_IOU} (per "
        f"ground-truth tube, overlap > {RECALL_IOU}, as recall.csv counts), paired bootstrap "
        f"over videos, each with all its tubes, of the difference for mAP and the smoothing gain.",
        f"A comparison is better or worse when the difference has that sign with p < {ALPHA}; "
        f"a claim holds when all its comparisons are better, does not hold when any is worse, "
        f"and is inconclusive otherwise.",
        "Intervals are 95%: Wilson for accuracy (over videos) and recall (over ground-truth "
        "tubes), percentile bootstrap over videos for mAP and gain; numbers are percent, the "
        "gain in percentage points of mean overlap per ground-truth tube. "
        "A bootstrap p of 0 means no resample reached the opposite sign.", "",
        "| Claim | Hypothesis | Comparison | Ours | Test | p | Outcome | Verdict |",
        "|---|---|---|---|---|---:|---|---|",
    ]
    first = ~table["claim"].duplicated()
    for is_first, row in zip(first, table.itertuples(index=False)):
        p = "" if np.isnan(row.p) else f"{row.p:.3g}"
        key, hypothesis, claim_verdict = ((row.claim, row.hypothesis, f"**{row.verdict}**")
                                          if is_first else ("", "", ""))
        lines.append(f"| {key} | {hypothesis} | {row.comparison} | {row.ours} | {row.test} "
                     f"| {p} | {row.outcome} | {claim_verdict} |")
    return "\n".join(lines) + "\n"


def _successes(metric: str, measurement) -> np.ndarray:
    """Success flags: per video correctness for accuracy; for recall, per ground-truth tube
    (video by video, NaN entries being no tube) an overlap > RECALL_IOU."""
    if metric == "accuracy":
        return np.asarray(measurement, dtype=bool)
    overlaps = measurement[0] if isinstance(measurement, tuple) else measurement
    overlaps = np.asarray(overlaps, dtype=np.float64).ravel()
    return overlaps[np.isfinite(overlaps)] > RECALL_IOU


def _statistic(metric: str, map_at) -> Callable[..., float]:
    """The bootstrapped statistic of a map or gain measurement."""
    if metric == "gain":
        return lambda smoothed, not_smoothed: float(np.nanmean(smoothed - not_smoothed))
    if map_at is None:
        raise ValueError("a map comparison needs map_at(overlaps, scores, labels)")
    return map_at


def _streaming(claim: Claim, difference: float | None) -> ClaimResult:
    if difference is None:
        return ClaimResult(claim, Verdict.NOT_MEASURED, missing=("streaming_difference",))
    holds = difference <= STREAMING_TOLERANCE
    return ClaimResult(claim, Verdict.HOLDS if holds else Verdict.DOES_NOT_HOLD,
                       streaming_difference=float(difference))


def _percent(estimate: Estimate) -> str:
    return f"{100 * estimate.value:.1f} [{100 * estimate.low:.1f}, {100 * estimate.high:.1f}]"
