"""The ratio CI and verdict of reproscope.compare against distributions with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from reproscope.compare import FASTER, SAME, SLOWER, Rounds, ratio_ci, verdict


def measure(
    rng: np.random.Generator, median: float, rounds: int, queries: int, round_sd: float
) -> Rounds:
    """Per-round latencies: lognormal queries around a round level that itself drifts."""
    levels = median * np.exp(rng.normal(0.0, round_sd, rounds))
    samples = [level * np.exp(rng.normal(0.0, 0.1, queries)) for level in levels]
    return Rounds([float(np.median(s)) for s in samples], samples)


def test_coverage_of_the_true_ratio() -> None:
    rng = np.random.default_rng(1)
    true_ratio, covered, runs = 0.9, 0, 60
    for i in range(runs):
        a = measure(rng, 10.0, 7, 40, 0.03)
        b = measure(rng, 10.0 * true_ratio, 7, 40, 0.03)
        _, low, high = ratio_ci(a, b, n_boot=400, seed=i)
        covered += low <= true_ratio <= high
    assert covered / runs >= 0.85  # nominal 95 %; the percentile bootstrap on 7 rounds is a bit short


def test_a_clear_difference_is_found_in_both_directions() -> None:
    rng = np.random.default_rng(2)
    a, b = measure(rng, 10.0, 5, 50, 0.01), measure(rng, 8.0, 5, 50, 0.01)
    ratio, low, high = ratio_ci(a, b)
    assert low < 0.8 * 1.03 and 0.8 * 0.97 < high < 1.0
    assert low <= ratio <= high
    assert verdict(ratio, low, high) == FASTER
    assert verdict(ratio, low, high, lower_is_better=False) == SLOWER  # e.g. a rate
    back = ratio_ci(b, a)
    assert verdict(*back) == SLOWER


def test_no_difference_between_equal_distributions() -> None:
    rng = np.random.default_rng(3)
    verdicts = [
        verdict(*ratio_ci(measure(rng, 5.0, 5, 50, 0.02), measure(rng, 5.0, 5, 50, 0.02), seed=s))
        for s in range(20)
    ]
    assert verdicts.count(SAME) >= 19


def test_round_noise_widens_the_interval() -> None:
    rng = np.random.default_rng(4)
    quiet = ratio_ci(measure(rng, 5.0, 6, 50, 0.0), measure(rng, 5.0, 6, 50, 0.0))
    noisy = ratio_ci(measure(rng, 5.0, 6, 50, 0.2), measure(rng, 5.0, 6, 50, 0.2))
    assert noisy[2] - noisy[1] > 3 * (quiet[2] - quiet[1])


def test_figures_without_samples_bootstrap_over_rounds() -> None:
    a = Rounds([100.0, 102.0, 98.0, 101.0, 99.0])
    b = Rounds([120.0, 123.0, 118.0, 121.0, 119.0])
    ratio, low, high = ratio_ci(a, b)
    assert ratio == pytest.approx(1.2)
    assert 1.15 < low <= ratio <= high < 1.25
    assert verdict(ratio, low, high, lower_is_better=False) == FASTER


def test_small_differences_inside_the_margin_are_not_verdicts() -> None:
    assert verdict(0.99, 0.985, 0.995) == SAME  # significant but within 2 %
    assert verdict(0.95, 0.90, 1.01) == SAME  # CI contains 1
    assert verdict(1.05, 1.03, 1.08) == SLOWER


def test_unpaired_rounds_are_refused() -> None:
    with pytest.raises(ValueError, match="paired"):
        ratio_ci(Rounds([1.0, 2.0]), Rounds([1.0]))
