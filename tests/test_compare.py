"""The ratio CI and verdict of reproscope.compare against distributions with a known answer."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reproscope.compare import (
    FASTER,
    SAME,
    SLOWER,
    TOO_FEW,
    log_mean_ci,
    ratio_ci,
    t975,
    verdict,
)


def rounds(rng: np.random.Generator, median: float, n: int, sd: float) -> np.ndarray:
    """Per-round figures: lognormal around ``median`` (the round's noise, ``sd`` in log)."""
    return median * np.exp(rng.normal(0.0, sd, n))


@pytest.mark.parametrize("n_rounds", [3, 5, 10])
def test_coverage_of_the_true_ratio(n_rounds: int) -> None:
    rng = np.random.default_rng(n_rounds)
    true_ratio, trials, covered = 0.9, 2000, 0
    for _ in range(trials):
        a = rounds(rng, 10.0, n_rounds, 0.05)
        b = rounds(rng, 10.0 * true_ratio, n_rounds, 0.05)
        _, low, high = ratio_ci(a, b)
        covered += low <= true_ratio <= high
    # Exact 95 % for lognormal rounds; 2000 trials: binomial sd 0.5 %.
    assert 0.93 <= covered / trials <= 0.97


def test_pairing_cancels_what_disturbs_a_whole_round() -> None:
    rng = np.random.default_rng(2)
    machine = np.exp(rng.normal(0.0, 0.3, 5))  # each round's machine state, shared by A and B
    a = 10.0 * machine * np.exp(rng.normal(0.0, 0.005, 5))
    b = 8.0 * machine * np.exp(rng.normal(0.0, 0.005, 5))
    ratio, low, high = ratio_ci(a, b)
    assert low < 0.8 < high and high - low < 0.03
    assert verdict(ratio, low, high) == FASTER
    assert verdict(ratio, low, high, lower_is_better=False) == SLOWER  # e.g. a rate
    assert verdict(*ratio_ci(b, a)) == SLOWER


def test_no_difference_between_equal_distributions() -> None:
    rng = np.random.default_rng(3)
    verdicts = [
        verdict(*ratio_ci(rounds(rng, 5, 3, 0.05), rounds(rng, 5, 3, 0.05))) for _ in range(400)
    ]
    # At most 5 % false verdicts in expectation (fewer: the 2 % margin); 400 trials: sd 1.1 %.
    assert verdicts.count(SAME) / len(verdicts) >= 0.93


def test_known_values() -> None:
    ratio, low, high = ratio_ci([10.0, 10.0, 10.0], [12.0, 12.0, 12.0])
    assert ratio == pytest.approx(1.2) and low == pytest.approx(1.2) and high == pytest.approx(1.2)
    centre, low, high = log_mean_ci([math.e, math.e**3])  # logs 1 and 3: mean 2, sd sqrt(2)
    assert centre == pytest.approx(math.e**2)
    assert math.log(high) - 2 == pytest.approx(12.7062, rel=1e-4)
    # Published t quantiles (0.975 and, for a family of 5 intervals, 0.995).
    assert t975(4) == pytest.approx(2.7764, rel=1e-4)
    assert t975(11) == pytest.approx(2.2010, rel=1e-4)
    assert t975(500) == pytest.approx(1.9647, rel=1e-4)
    _, low5, high5 = log_mean_ci([math.e, math.e**3], family=5)
    assert math.log(high5) - 2 == pytest.approx(63.6567, rel=1e-4)  # t(0.995, 1)


def test_small_differences_and_single_rounds() -> None:
    assert verdict(0.99, 0.985, 0.995) == SAME  # significant but within 2 %
    assert verdict(0.95, 0.90, 1.01) == SAME  # CI contains 1
    assert verdict(1.033, 1.020, 1.046) == SAME  # the CI reaches into the 2 % margin
    assert verdict(1.05, 1.03, 1.08) == SLOWER
    assert verdict(0.95, 0.93, 0.97) == FASTER
    ratio, low, high = ratio_ci([1.0], [2.0])
    assert ratio == 2.0 and math.isnan(low) and verdict(ratio, low, high) == TOO_FEW


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="paired"):
        ratio_ci([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="positive"):
        log_mean_ci([1.0, 0.0])


def test_a_study_without_accuracy_or_timing_jobs_gets_headers() -> None:
    """A timing-only study (every system `accuracy: false`) has no accuracy results, an
    accuracy-only one no timing results: their tables are headers, not a crash."""
    from reproscope.aggregate import accuracy_table, agreement_table, runs_table

    index = {"dataset": "d", "content_digest": "sha256:0"}
    accuracy = accuracy_table([], index, {})
    runs = runs_table([], [])
    assert accuracy.empty and {"model", "system", "top1"} <= set(accuracy.columns)
    assert runs.empty and {"model", "system", "scenario", "repeat"} <= set(runs.columns)
    assert agreement_table([]).empty
