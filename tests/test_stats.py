"""Tests for reproscope.runtime.stats (expected values worked out by hand)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reproscope.runtime.stats import (
    UNSTABLE_IQR_RATIO,
    exact_mcnemar,
    median_ci_order_stats,
    summarize,
)

# Sorted, n = 10. Linear percentiles sit at 0-based position (n - 1) * p / 100 = 9p/100.
SMALL = [5.0, 2.0, 12.0, 4.0, 9.0, 4.0, 10.0, 5.0, 4.0, 7.0]  # sorted: 2 4 4 4 5 5 7 9 10 12


def test_summarize_small_sample_by_hand() -> None:
    s = summarize(SMALL)
    assert s["n"] == 10
    assert s["mean_ms"] == pytest.approx(6.2)  # 62 / 10
    assert s["median_ms"] == s["p50_ms"] == pytest.approx(5.0)  # pos 4.5 -> (5 + 5) / 2
    assert s["p90_ms"] == pytest.approx(10.2)  # pos 8.1 -> 10 + 0.1 * (12 - 10)
    assert s["p99_ms"] == pytest.approx(11.82)  # pos 8.91 -> 10 + 0.91 * 2
    assert s["min_ms"] == 2.0
    assert s["max_ms"] == 12.0
    # Squared deviations from 6.2 sum to 91.6; ddof=1 -> var = 91.6 / 9.
    assert s["std_ms"] == pytest.approx(math.sqrt(91.6 / 9))
    assert s["cv"] == pytest.approx(math.sqrt(91.6 / 9) / 6.2)
    # p25: pos 2.25 -> 4; p75: pos 6.75 -> 7 + 0.75 * 2 = 8.5.
    assert s["iqr_ms"] == pytest.approx(4.5)
    assert s["iqr_over_median"] == pytest.approx(0.9)
    assert s["unstable"] is True
    # CI: j = floor(5 - 1.96 * sqrt(10) / 2) = floor(1.90) = 1, k = 11 - 1 = 10 -> [min, max].
    assert median_ci_order_stats(10) == (1, 10)
    assert s["median_ci95_low_ms"] == 2.0
    assert s["median_ci95_high_ms"] == 12.0


def test_summarize_one_to_hundred() -> None:
    s = summarize([float(i) for i in range(100, 0, -1)])
    assert s["n"] == 100
    assert s["mean_ms"] == pytest.approx(50.5)
    assert s["median_ms"] == pytest.approx(50.5)
    assert s["p90_ms"] == pytest.approx(90.1)  # pos 89.1 -> 90 + 0.1
    assert s["p99_ms"] == pytest.approx(99.01)  # pos 98.01 -> 99 + 0.01
    assert s["iqr_ms"] == pytest.approx(75.25 - 25.75)
    assert s["std_ms"] == pytest.approx(math.sqrt(100 * 101 / 12))  # var of 1..n = n(n+1)/12
    # j = floor(50 - 1.96 * 10 / 2) = floor(40.2) = 40, k = 101 - 40 = 61.
    assert median_ci_order_stats(100) == (40, 61)
    assert s["median_ci95_low_ms"] == 40.0
    assert s["median_ci95_high_ms"] == 61.0
    assert s["unstable"] is True


def test_median_ci_coverage_at_least_95_percent() -> None:
    for n in range(6, 400):
        j, k = median_ci_order_stats(n)  # type: ignore[misc]
        assert 1 <= j < k <= n
        coverage = sum(math.comb(n, i) for i in range(j, k)) / 2**n
        assert coverage >= 0.95, n


def test_median_ci_nan_for_small_n() -> None:
    assert median_ci_order_stats(5) is None
    s = summarize([1.0, 2.0, 3.0, 4.0, 5.0])
    assert math.isnan(s["median_ci95_low_ms"])
    assert math.isnan(s["median_ci95_high_ms"])
    s6 = summarize([6.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    assert (s6["median_ci95_low_ms"], s6["median_ci95_high_ms"]) == (1.0, 6.0)


def test_unstable_flag_both_ways() -> None:
    stable = summarize([100.0, 101.0, 102.0, 103.0, 104.0])  # iqr 2 / median 102
    assert stable["iqr_over_median"] == pytest.approx(2 / 102)
    assert stable["unstable"] is False
    # iqr / median exactly at the threshold is not unstable (strict >).
    edge = summarize([9.0, 10.0, 11.0])  # p25 9.5, p75 10.5, median 10
    assert edge["iqr_over_median"] == pytest.approx(UNSTABLE_IQR_RATIO)
    assert edge["unstable"] is False
    wide = summarize([5.0, 10.0, 20.0])  # p25 7.5, p75 15 -> 7.5 / 10
    assert wide["unstable"] is True


def test_single_sample_and_types() -> None:
    s = summarize([3.0])
    assert s["n"] == 1 and s["median_ms"] == 3.0 and s["iqr_ms"] == 0.0
    assert math.isnan(s["std_ms"]) and math.isnan(s["cv"])
    assert type(s["n"]) is int and type(s["unstable"]) is bool
    assert all(type(v) is float for k, v in s.items() if k not in ("n", "unstable"))


def test_summarize_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="empty"):
        summarize([])
    with pytest.raises(ValueError, match="non-finite"):
        summarize([1.0, float("nan")])


@pytest.mark.parametrize(
    ("lost", "gained", "expected"),
    [
        (10, 2, 2 * (1 + 12 + 66) / 2**12),  # 0.03857...
        (0, 0, 1.0),
        (0, 5, 2 / 32),
        (1, 9, 2 * (1 + 10) / 2**10),
        (3, 1, 2 * (1 + 4) / 2**4),
        (5, 5, 1.0),  # doubled tail exceeds 1 -> clipped
    ],
)
def test_exact_mcnemar_known_values(lost: int, gained: int, expected: float) -> None:
    assert exact_mcnemar(lost, gained) == pytest.approx(expected)
    assert exact_mcnemar(gained, lost) == pytest.approx(expected)


def test_exact_mcnemar_reference_and_edges() -> None:
    assert exact_mcnemar(10, 2) == pytest.approx(0.0386, abs=5e-5)
    assert exact_mcnemar(2000, 1000) < 1e-60  # large n: exact big-int arithmetic, no overflow
    assert exact_mcnemar(500, 500) == 1.0
    with pytest.raises(ValueError):
        exact_mcnemar(-1, 3)


# --- Percentile estimability ------------------------------------------------------------------


def test_queries_needed_for_a_tail_percentile() -> None:
    from reproscope.runtime.stats import queries_needed

    assert queries_needed(90) == 29 and 0.9**29 <= 0.05 < 0.9**28
    assert queries_needed(99) == 299 and 0.99**299 <= 0.05 < 0.99**298
    assert queries_needed(99.9) == 2995
    with pytest.raises(ValueError):
        queries_needed(100)


def test_trusted_percentile_says_what_is_missing() -> None:
    from reproscope.runtime.stats import trusted_percentile

    assert trusted_percentile(12.5, 299, 99) == 12.5
    assert trusted_percentile(12.5, 298, 99) == "not estimable, needs 299 queries (ran 298)"
    assert trusted_percentile(3.0, 29, 90) == 3.0
    assert trusted_percentile(None, 100, 90) is None


def test_the_rule_bounds_the_percentile_at_95_percent() -> None:
    """With n = queries_needed(p), the sample maximum exceeds the true p-quantile in >= 95 %
    of samples (checked on an exponential distribution with a known quantile)."""
    from reproscope.runtime.stats import queries_needed

    rng = np.random.default_rng(0)
    n = queries_needed(90)
    true_p90 = -np.log(0.1)
    covered = np.mean([rng.exponential(size=n).max() >= true_p90 for _ in range(4000)])
    assert covered >= 0.94  # 1 - 0.9**29 = 0.953


# --- report-side statistics: t tails, Clopper-Pearson, Holm, CSV rounding ----------------


def test_t_tail_against_closed_forms() -> None:
    from reproscope.report.compare import t_sf

    for t in (0.0, 0.5, 1.0, 3.0, 40.0):
        # 1 degree of freedom is Cauchy; 2 has P(T > t) = (1 - t / sqrt(t^2 + 2)) / 2.
        assert t_sf(t, 1) == pytest.approx(0.5 - math.atan(t) / math.pi, rel=1e-10)
        assert t_sf(t, 2) == pytest.approx((1 - t / math.sqrt(t * t + 2)) / 2, rel=1e-10)
        assert t_sf(-t, 5) == pytest.approx(1.0 - t_sf(t, 5), abs=1e-14)
    # A tiny tail keeps its relative accuracy (no 1 - (1 - p) cancellation).
    assert t_sf(1e6, 1) == pytest.approx(1 / (math.pi * 1e6), rel=1e-6)
    assert t_sf(3.0, 1e6) == pytest.approx(0.5 * math.erfc(3 / math.sqrt(2)), rel=1e-4)  # normal


def test_clopper_pearson_known_values_and_coverage() -> None:
    from reproscope.report.compare import clopper_pearson

    assert clopper_pearson(5, 10) == pytest.approx((0.187086, 0.812914), abs=1e-6)
    low, high = clopper_pearson(0, 10)
    assert low == 0.0 and high == pytest.approx(1 - 0.025 ** (1 / 10), rel=1e-9)
    low, high = clopper_pearson(24, 24)
    assert high == 1.0 and low == pytest.approx(0.025 ** (1 / 24), rel=1e-9)
    # 1,000 images at 75 %: about +-2.7 points, far wider than a 0.5-point tolerance.
    low, high = clopper_pearson(750, 1000)
    assert 0.72 < low < 0.7225 and 0.776 < high < 0.778
    # Exact coverage, summed over the binomial: never below 95 % (n = 30).
    n = 30
    intervals = [clopper_pearson(k, n) for k in range(n + 1)]
    for p in np.linspace(0.01, 0.99, 99):
        pmf = [math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]
        coverage = sum(w for w, (lo, hi) in zip(pmf, intervals, strict=True) if lo <= p <= hi)
        assert coverage >= 0.95 - 1e-9, (p, coverage)
    with pytest.raises(ValueError, match="hits"):
        clopper_pearson(11, 10)


def test_holm_by_hand_and_its_family_wise_error() -> None:
    from reproscope.report.compare import holm

    # sorted 0.005 0.01 0.03 0.04 (m = 4): x4 x3 x2 x1 = 0.02 0.03 0.06 0.04 -> monotone
    adjusted = holm([0.01, 0.04, 0.03, math.nan, 0.005])
    assert list(adjusted[[0, 1, 2, 4]]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert math.isnan(adjusted[3])
    assert list(holm([0.5, 0.9])) == [1.0, 1.0] and holm([]).size == 0
    # 20 true nulls: some p < 0.05 in about 64 % of studies, some adjusted one in <= 5 %.
    rng = np.random.default_rng(4)
    raw = adjusted_hits = 0
    for _ in range(2000):
        p = rng.uniform(size=20)
        raw += bool((p < 0.05).any())
        adjusted_hits += bool((holm(p) < 0.05).any())
    assert raw / 2000 > 0.55 and adjusted_hits / 2000 <= 0.06


def test_csv_floats_are_rounded_to_meaningful_digits(tmp_path) -> None:
    import pandas as pd

    from reproscope.report.tables import write_csv

    table = pd.DataFrame(
        {
            "delta_top1": [-34.699999999999996, 0.1 + 0.2],
            "p_value": [1.2345678e-7, 0.0456789],
            "max_abs_logit_diff": [3.0517578125e-05, 12.3456789],
            "latency_ms_p50": [1.234567891, math.nan],
            "wall_s": [1.23456, 2.0],
            "throughput_ips": [123.4567, 1.0],
            "n_images": [1000, 24],
        }
    )
    out = tmp_path / "t.csv"
    write_csv(table, out)
    assert out.read_text().splitlines()[1:] == [
        "-34.7,1.23e-07,3.052e-05,1.2346,1.235,123.46,1000",
        "0.3,0.0457,12.3457,,2.0,1.0,24",
    ]
