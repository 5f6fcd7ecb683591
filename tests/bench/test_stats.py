"""The statistics behind the benchmark's verdicts, on synthetic figures (no framework, no training)."""

from __future__ import annotations

import math
import random

import pytest
from tlcore_bench.stats import (
    FAIL,
    INCOMPLETE,
    PASS,
    UNDECIDED,
    Verdict,
    combine,
    equivalence,
    median_interval,
    positive_gain,
    ratio_verdict,
    seeds_to_decide,
    t_quantile,
)


def test_t_quantiles_match_the_tables() -> None:
    assert t_quantile(1) == pytest.approx(6.314, abs=1e-3)
    assert t_quantile(6) == pytest.approx(1.943, abs=1e-3)
    assert t_quantile(40) == pytest.approx(1.684, abs=1e-3)  # beyond the table: the expansion
    assert t_quantile(1000) == pytest.approx(1.6464, abs=1e-3)
    with pytest.raises(ValueError):
        t_quantile(0)


def test_tost_passes_inside_fails_outside_and_is_otherwise_undecided() -> None:
    inside = equivalence([0.001, -0.001, 0.002, 0.0, 0.001], 0.005)
    assert inside.verdict == PASS
    assert inside.interval is not None and -0.005 < inside.interval.low < inside.interval.high < 0.005
    outside = equivalence([0.011, 0.012, 0.013], 0.005)
    assert outside.verdict == FAIL
    straddling = equivalence([0.004, -0.004, 0.006], 0.005)
    assert straddling.verdict == UNDECIDED
    assert straddling.seeds_needed is not None and straddling.seeds_needed > 3
    assert f"about {straddling.seeds_needed} seeds would decide it" in straddling.reason
    assert equivalence([], 0.005).verdict == INCOMPLETE


def test_tost_interval_is_the_90_percent_t_interval_of_the_mean() -> None:
    values = [0.001, 0.003, -0.002, 0.004]
    verdict = equivalence(values, 0.005)
    mean = sum(values) / 4
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / 3)
    assert verdict.interval is not None
    assert verdict.interval.high - mean == pytest.approx(2.3534 * sd / 2, rel=1e-4)


def test_one_seed_is_undecided_and_says_how_many_seeds_would_decide_it() -> None:
    verdict = equivalence([0.001], 0.005, assumed_spread=0.0045)
    assert verdict.verdict == UNDECIDED
    # At 0.45 points a seed and 0.1 points of mean difference: t(n-1) * 0.45 / sqrt(n) < 0.4 first at n = 6.
    assert verdict.seeds_needed == 6
    assert "1 seed" in verdict.reason and "about 6 seeds would decide it" in verdict.reason
    assert "spread" in equivalence([0.001], 0.005).reason


def test_seeds_to_decide_grows_as_the_mean_nears_the_margin() -> None:
    assert seeds_to_decide(0.0, 0.0045, 0.005) == 5
    assert seeds_to_decide(0.003, 0.0045, 0.005) > seeds_to_decide(0.0, 0.0045, 0.005)  # type: ignore[operator]
    assert seeds_to_decide(0.005, 0.0045, 0.005) is None  # on the margin, no number of seeds decides it


def test_a_positive_gain_needs_its_lower_bound_above_zero() -> None:
    assert positive_gain([0.10], assumed_spread=0.04).verdict == PASS  # 10 points against a 4-point spread
    assert positive_gain([0.02], assumed_spread=0.04).verdict == UNDECIDED
    assert positive_gain([-0.10], assumed_spread=0.04).verdict == FAIL
    assert positive_gain([0.02, 0.025, 0.03], assumed_spread=0.04).verdict == PASS  # the seeds' own spread
    assert positive_gain([], assumed_spread=0.04).verdict == INCOMPLETE


def test_the_median_interval_uses_order_statistics_with_at_least_the_coverage() -> None:
    interval = median_interval([5.0, 1.0, 9.0, 3.0, 7.0, 2.0, 8.0, 4.0, 6.0])
    assert interval.estimate == 5.0
    assert (interval.low, interval.high) == (2.0, 8.0)  # the 2nd and 8th of 9: 96 %; the 3rd and 7th cover 82 %
    assert interval.confidence == pytest.approx(1 - 2 * 10 / 512)
    sixteen = median_interval([float(i) for i in range(16)])
    assert (sixteen.low, sixteen.high) == (4.0, 11.0)  # the 5th and 12th
    assert sixteen.confidence >= 0.90
    assert median_interval([1.0, 2.0, 3.0]).confidence < 0.90


def test_the_median_interval_covers_the_median_as_often_as_it_says() -> None:
    rng = random.Random(0)
    hits = sum(
        (lambda i: i.low <= 1.0 <= i.high)(median_interval([rng.lognormvariate(0.0, 0.1) for _ in range(9)]))
        for _ in range(2000)
    )
    assert 0.94 < hits / 2000 < 0.98


def test_overhead_ratios_pass_fail_or_straddle_the_bar() -> None:
    assert ratio_verdict([0.97, 0.99, 1.0, 1.02, 0.98, 1.01, 0.99], 0.95).verdict == PASS
    assert ratio_verdict([0.80, 0.85, 0.82, 0.9, 0.84, 0.83, 0.81], 0.95).verdict == FAIL
    straddling = ratio_verdict([0.90, 0.99, 1.02, 0.93, 0.97, 1.0, 0.94], 0.95)
    assert straddling.verdict == UNDECIDED and "straddles the bar" in straddling.reason
    few = ratio_verdict([1.0, 1.01, 0.99], 0.95)
    assert few.verdict == UNDECIDED and "at least 5 pairs" in few.reason
    assert ratio_verdict([], 0.95).verdict == INCOMPLETE


def test_combine_fails_on_any_failure_and_passes_only_when_all_pass() -> None:
    ok, unsure, bad = Verdict(PASS, "a"), Verdict(UNDECIDED, "b"), Verdict(FAIL, "c")
    assert combine({"x": ok, "y": ok}).verdict == PASS
    assert combine({"x": ok, "y": unsure}).verdict == UNDECIDED
    assert combine({"x": unsure, "y": bad}) == Verdict(FAIL, "y: c")
    assert combine({}).verdict == INCOMPLETE
    assert not unsure.counts_as_failure and bad.counts_as_failure
