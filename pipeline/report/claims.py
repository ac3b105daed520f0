"""The paper's claims, written down as hypotheses before any numbers exist, and their verdicts.

Each claim is a set of comparisons between two per-video measurements on the same test videos,
named by keys such as "table1/rgb/convalstm", each measured once per training replicate ([run]
replicates). The rule (POOLED_RULE), fixed before any numbers: a comparison is decided over all
replicates by one paired test that keeps the video as the unit, and counts only if its
difference also has the claimed sign in more than half of the replicates; a claim holds only
when every one of its comparisons is significantly in the claimed direction. Each replicate's
own outcome (its single-run test) is reported beside the pooled one.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Callable, Mapping, NamedTuple

import numpy as np
import pandas as pd

from pipeline.report.stats import (bootstrap_interval, paired_bootstrap, sign_flip_test,
                                   replicate_mean_interval)

ALPHA = 0.05
RECALL_IOU = 0.2
STREAMING_TOLERANCE = 1e-4
STREAMING_CLAIM = "C5"
METRICS = ("accuracy", "recall", "map", "gain")
POOLED_RULE = ("A comparison is decided over all training replicates at once: for accuracy and "
               "recall, an exact sign-flip test over the test videos (the ground-truth tubes for "
               "recall) of each one's success difference averaged over the replicates (exact "
               "McNemar when there is one replicate); for mAP and the smoothing gain, a paired "
               "bootstrap over videos of the replicates' mean statistic. It is better (worse) "
               "when p < {alpha}, the pooled difference is positive (negative) and the difference "
               "has that sign in more than half of the replicates; otherwise there is no "
               "significant difference.")
"""The rule that decides a comparison over replicates, as the report states it."""


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
    """A comparison's two estimates (means over replicates), their difference, the pooled
    paired test and its outcome, and each replicate's own outcome."""

    comparison: Comparison
    better: Estimate
    worse: Estimate
    difference: float
    p_value: float
    test: str
    outcome: Outcome
    replicates: tuple[Outcome, ...] = ()


class ClaimResult(NamedTuple):
    """A claim's verdict, its comparisons' results, the measurements it lacked and, for the
    streaming claim, the measured maximum score difference."""

    claim: Claim
    verdict: Verdict
    comparisons: tuple[ComparisonResult, ...] = ()
    missing: tuple[str, ...] = ()
    streaming_difference: float | None = None


def outcome(difference: float, p_value: float, differences=None) -> Outcome:
    """Whether a paired difference is significantly positive, significantly negative, or neither;
    with ``differences`` (one per replicate), its sign must also hold in more than half of them."""
    signs = np.sign([difference] if differences is None else differences)
    if p_value < ALPHA and difference > 0 and np.sum(signs > 0) > len(signs) / 2:
        return Outcome.BETTER
    if p_value < ALPHA and difference < 0 and np.sum(signs < 0) > len(signs) / 2:
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
    """Estimates, pooled paired test and outcome of one comparison (POOLED_RULE) from its two
    measurements, each a list with one entry per replicate (a measurement alone is one
    replicate).

    accuracy: bool (V,) correct per video. recall: overlaps (V, K) of each video's tube with
    its ground-truth tubes, NaN past a video's tubes (or the map tuple, whose first element
    they are); a success is a ground-truth tube overlapping > RECALL_IOU, counted per tube as
    recall.csv counts them, so the test pairs the two methods tube by tube. Both by the Wilson
    interval of the replicate-mean rate and the sign-flip test. map: (overlaps (V, K), scores
    (V, C), labels (V,)) scored by `map_at`; gain: (smoothed overlaps (V, K), not-smoothed
    overlaps (V, K)), the mean change per ground-truth tube; both by a bootstrap over videos,
    each with all its tubes.
    """
    better, worse = (m if isinstance(m, list) else [m] for m in (better, worse))
    if len(better) != len(worse):
        raise ValueError(f"{comparison.name}: {len(better)} replicates against {len(worse)}")
    if comparison.metric in ("accuracy", "recall"):
        flags = [np.stack([_successes(comparison.metric, m) for m in ms])
                 for ms in (better, worse)]
        estimates = [Estimate(float(f.mean()),
                              *replicate_mean_interval(f))
                     for f in flags]
        test = sign_flip_test(*flags)
        per_replicate = [sign_flip_test(a, b) for a, b in zip(*flags)]
        name = "McNemar" if len(better) == 1 else "sign-flip over videos"
    else:
        statistic = _statistic(comparison.metric, map_at)
        better, worse = ([tuple(np.asarray(a) for a in m) for m in ms] for ms in (better, worse))
        bootstrap = {"resamples": resamples, "seed": seed}
        estimates = [Estimate(float(np.mean([statistic(*m) for m in ms])),
                              *bootstrap_interval(ms, statistic, **bootstrap))
                     for ms in (better, worse)]
        test = paired_bootstrap(better, worse, statistic, **bootstrap)
        per_replicate = [paired_bootstrap(a, b, statistic, **bootstrap)
                         for a, b in zip(better, worse)]
        name = "paired bootstrap"
    differences = [r.difference for r in per_replicate]
    return ComparisonResult(comparison, *estimates, test.difference, test.p_value, name,
                            outcome(test.difference, test.p_value, differences),
                            tuple(outcome(r.difference, r.p_value) for r in per_replicate))


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
                         "outcome": "", "replicates": "", "verdict": verdict_text})
            continue
        measured = result.comparisons or (None,) * len(claim.comparisons)
        for comparison, r in zip(claim.comparisons, measured):
            ours = "" if r is None else f"{_percent(r.better)} vs {_percent(r.worse)}"
            rows.append({**base, "comparison": comparison.name, "ours": ours,
                         "test": "" if r is None else r.test,
                         "p": np.nan if r is None else r.p_value,
                         "outcome": "" if r is None else str(r.outcome),
                         "replicates": "" if r is None else ", ".join(map(str, r.replicates)),
                         "verdict": verdict_text})
    return pd.DataFrame(rows, columns=["claim", "hypothesis", "comparison", "ours", "test", "p",
                                       "outcome", "replicates", "verdict"])


def claims_markdown(results) -> str:
    """A "## Claims" section: how verdicts are decided, then the claims table."""
    table = claims_table(results)
    lines = [
        "## Claims", "",
        f"Each claim was written down before any result. Comparisons are paired over the same "
        f"test videos: accuracy per video, recall@{RECALL_IOU} per ground-truth tube "
        f"(overlap > {RECALL_IOU}, as recall.csv counts), mAP and the smoothing gain over videos, "
        f"each with all its tubes. " + POOLED_RULE.format(alpha=ALPHA),
        "A claim holds when all its comparisons are better, does not hold when any is worse, "
        "and is inconclusive otherwise. \"Per replicate\" is each training replicate's own "
        "outcome by the same test on that replicate alone.",
        "Numbers are means over replicates with 95% intervals: Wilson for accuracy (over videos) "
        "and recall (over ground-truth tubes), percentile bootstrap over videos for mAP and "
        "gain; percent, the gain in percentage points of mean overlap per ground-truth tube. "
        "A bootstrap p of 0 means no resample reached the opposite sign.", "",
        "| Claim | Hypothesis | Comparison | Ours | Test | p | Outcome | Per replicate "
        "| Verdict |",
        "|---|---|---|---|---|---:|---|---|---|",
    ]
    first = ~table["claim"].duplicated()
    for is_first, row in zip(first, table.itertuples(index=False)):
        p = "" if np.isnan(row.p) else f"{row.p:.3g}"
        key, hypothesis, claim_verdict = ((row.claim, row.hypothesis, f"**{row.verdict}**")
                                          if is_first else ("", "", ""))
        lines.append(f"| {key} | {hypothesis} | {row.comparison} | {row.ours} | {row.test} "
                     f"| {p} | {row.outcome} | {row.replicates} | {claim_verdict} |")
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
