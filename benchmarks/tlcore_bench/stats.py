"""The statistics behind the benchmark's verdicts: each says pass, fail, or undecided, and why.

A verdict is only printed when the data can decide it. Whole fine-tuning
runs are chaotic, so claims about them are tested on paired per-seed
differences: parity with two one-sided tests (TOST: the 90 % interval of the
mean difference inside the tolerance), transfer value with a one-sided 95 %
bound on the mean gain. Throughput is noisy from epoch to epoch, so the
library overhead is a median of per-pair ratios with a distribution-free
(order-statistics) interval. Where the interval straddles the bar, the
verdict is "undecided", with the number of seeds that would decide it.
Pure Python: the driver imports no framework and no SciPy.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "FAIL",
    "INCOMPLETE",
    "PASS",
    "UNDECIDED",
    "Interval",
    "Verdict",
    "combine",
    "equivalence",
    "median_interval",
    "positive_gain",
    "ratio_verdict",
    "seeds_to_decide",
    "t_quantile",
]

PASS, FAIL, UNDECIDED, INCOMPLETE = "pass", "fail", "undecided", "incomplete"
MOST_SEEDS = 100  # beyond this, "more seeds" is not an answer worth printing

# The 0.95 quantile of Student's t for 1 to 30 degrees of freedom (one-sided 95 %, two-sided 90 %).
_T95 = (
    6.3138, 2.9200, 2.3534, 2.1318, 2.0150, 1.9432, 1.8946, 1.8595, 1.8331, 1.8125,
    1.7959, 1.7823, 1.7709, 1.7613, 1.7531, 1.7459, 1.7396, 1.7341, 1.7291, 1.7247,
    1.7207, 1.7171, 1.7139, 1.7109, 1.7081, 1.7056, 1.7033, 1.7011, 1.6991, 1.6973,
)  # fmt: skip


def t_quantile(df: int) -> float:
    """The 0.95 quantile of Student's t with ``df`` degrees of freedom (a Cornish-Fisher expansion above 30)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be at least 1; got {df}")
    if df <= len(_T95):
        return _T95[df - 1]
    z = statistics.NormalDist().inv_cdf(0.95)
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


@dataclass(frozen=True)
class Interval:
    """An estimate with its interval: ``low`` and ``high`` at ``confidence``, from ``n`` values."""

    estimate: float
    low: float
    high: float
    n: int
    confidence: float
    spread: float | None = None  # the values' standard deviation, where the interval rests on one

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return asdict(self)


@dataclass(frozen=True)
class Verdict:
    """``verdict`` (pass, fail, undecided, incomplete) and ``reason``, the sentence the report prints."""

    verdict: str
    reason: str = ""
    interval: Interval | None = None
    seeds_needed: int | None = None

    @property
    def counts_as_failure(self) -> bool:
        """Whether the final line lists it as not passed: a failure, or a measurement that did not finish."""
        return self.verdict in (FAIL, INCOMPLETE)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return {
            "verdict": self.verdict,
            "reason": self.reason,
            "interval": self.interval.to_dict() if self.interval else None,
            "seeds_needed": self.seeds_needed,
        }


def _mean_interval(values: Sequence[float], assumed_spread: float | None) -> Interval:
    """The 90 % two-sided (95 % one-sided) interval of the mean: Student's t, or with one value a normal interval
    around it at ``assumed_spread``."""
    n = len(values)
    mean = statistics.fmean(values)
    if n >= 2:
        spread = statistics.stdev(values)
        half = t_quantile(n - 1) * spread / math.sqrt(n)
    elif assumed_spread is not None:
        spread = assumed_spread
        half = statistics.NormalDist().inv_cdf(0.95) * spread
    else:
        return Interval(mean, -math.inf, math.inf, n, 0.90)
    return Interval(mean, mean - half, mean + half, n, 0.90, spread)


def seeds_to_decide(mean: float, spread: float, margin: float) -> int | None:
    """The fewest seeds whose 90 % interval of a mean ``mean`` with standard deviation ``spread`` lies wholly inside
    ``±margin`` (an equivalence) or wholly outside it; None beyond :data:`MOST_SEEDS`."""
    distance = abs(abs(mean) - margin)
    if spread <= 0:
        return 2
    for n in range(2, MOST_SEEDS + 1):
        if t_quantile(n - 1) * spread / math.sqrt(n) < distance:
            return n
    return None


def _points(value: float) -> str:
    return f"{100 * value:.2f}"


def _needed_text(needed: int | None, n: int) -> str:
    if needed is None:
        return f"more than {MOST_SEEDS} seeds would be needed"
    return f"about {max(needed, n + 1)} seeds would decide it"


def equivalence(
    differences: Sequence[float], margin: float, *, assumed_spread: float | None = None, what: str = "difference"
) -> Verdict:
    """Two one-sided tests on paired per-seed ``differences`` (fractions): pass when the 90 % interval of their mean
    lies inside ``±margin``, fail when it lies wholly outside, else undecided with the seeds that would decide it.

    With one seed the interval needs a spread from elsewhere: ``assumed_spread``
    (the verdict then stays undecided: one run of a chaotic recipe decides nothing)."""
    n = len(differences)
    if n == 0:
        return Verdict(INCOMPLETE, "no paired seeds yet")
    interval = _mean_interval(differences, assumed_spread)
    bounds = f"mean {what} {_points(interval.estimate)} points, 90 % interval [{_points(interval.low)}, "
    bounds += f"{_points(interval.high)}] against ±{_points(margin)}"
    if n == 1:
        needed = seeds_to_decide(interval.estimate, assumed_spread, margin) if assumed_spread else None
        spread = f"; at an assumed per-seed spread of {_points(assumed_spread)} points, " if assumed_spread else "; "
        return Verdict(
            UNDECIDED,
            f"1 seed ({what} {_points(interval.estimate)} points): the paired test needs the seed-to-seed spread"
            f"{spread}{_needed_text(needed, n)}",
            interval,
            needed,
        )
    if -margin < interval.low and interval.high < margin:
        return Verdict(PASS, f"{bounds} ({n} seeds)", interval)
    if interval.low >= margin or interval.high <= -margin:
        return Verdict(FAIL, f"{bounds} ({n} seeds)", interval)
    needed = seeds_to_decide(interval.estimate, interval.spread or 0.0, margin)
    return Verdict(UNDECIDED, f"{bounds} ({n} seeds): {_needed_text(needed, n)}", interval, needed)


def positive_gain(gains: Sequence[float], *, assumed_spread: float, what: str = "gain") -> Verdict:
    """Whether paired per-seed ``gains`` (fractions) are positive: pass when the one-sided 95 % lower bound of their
    mean is above 0, fail when the upper bound is below 0, else undecided.

    With one seed the bound uses ``assumed_spread``, a per-seed standard
    deviation measured elsewhere (the reason says so)."""
    n = len(gains)
    if n == 0:
        return Verdict(INCOMPLETE, "no paired seeds yet")
    interval = _mean_interval(gains, assumed_spread)
    basis = f"{n} seeds" if n > 1 else f"1 seed, at an assumed per-seed spread of {_points(assumed_spread)} points"
    text = f"mean {what} {_points(interval.estimate)} points, 95 % bounds [{_points(interval.low)}, "
    text += f"{_points(interval.high)}] ({basis})"
    if interval.low > 0:
        return Verdict(PASS, text, interval)
    if interval.high < 0:
        return Verdict(FAIL, text, interval)
    needed = seeds_to_decide(interval.estimate, interval.spread or assumed_spread, 0.0)
    return Verdict(UNDECIDED, f"{text}: {_needed_text(needed, n)}", interval, needed)


def median_interval(values: Sequence[float], confidence: float = 0.90) -> Interval:
    """The median of ``values`` and a distribution-free interval for it: the ``k``-th smallest and ``k``-th largest
    values, ``k`` as large as keeps the coverage at least ``confidence`` (binomial order statistics).

    Fewer than 5 values cannot reach 90 %: the interval is then the whole
    range, and its ``confidence`` says how little it covers."""
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        raise ValueError("median_interval needs at least one value")
    median = float(statistics.median(ordered))

    def coverage(k: int) -> float:  # P(x_(k) <= median <= x_(n+1-k)) = 1 - 2 P(Binomial(n, 1/2) < k)
        return 1 - 2 * sum(math.comb(n, i) for i in range(k)) / (1 << n)

    k = 1
    while k + 1 <= (n + 1) // 2 and coverage(k + 1) >= confidence:
        k += 1
    return Interval(median, ordered[k - 1], ordered[n - k], n, coverage(k))


def ratio_verdict(ratios: Sequence[float], bar: float) -> Verdict:
    """Per-pair throughput ratios against ``bar``: pass when the median's interval lies at or above it, fail when it
    lies below, undecided when it straddles the bar or covers less than 90 %."""
    if not ratios:
        return Verdict(INCOMPLETE, "no pairs measured")
    interval = median_interval(ratios)
    text = (
        f"median ratio {interval.estimate:.3f} of {interval.n} pairs, {100 * interval.confidence:.0f} % interval "
        f"[{interval.low:.3f}, {interval.high:.3f}] against {bar}"
    )
    if interval.confidence < 0.90:
        return Verdict(UNDECIDED, f"{text}: at least 5 pairs are needed for a 90 % interval", interval)
    if interval.low >= bar:
        return Verdict(PASS, text, interval)
    if interval.high < bar:
        return Verdict(FAIL, text, interval)
    return Verdict(UNDECIDED, f"{text}: the interval straddles the bar", interval)


def combine(verdicts: dict[str, Verdict]) -> Verdict:
    """One check's verdict from its parts' (tasks', backends'): any failure fails it, then anything unfinished,
    then anything undecided; it passes when every part does."""
    if not verdicts:
        return Verdict(INCOMPLETE, "nothing measured yet")
    for state in (FAIL, INCOMPLETE, UNDECIDED):
        named = [f"{name}: {v.reason}" for name, v in verdicts.items() if v.verdict == state]
        if named:
            return Verdict(state, "; ".join(named))
    return Verdict(PASS, "; ".join(f"{name}: {v.reason}" for name, v in verdicts.items()))
