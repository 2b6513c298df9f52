"""The ratio CI and verdict of report.compare against distributions with a known answer."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reproscope.report.compare import (
    FASTER,
    MIN_EFFECT,
    SAME,
    SLOWER,
    TOO_FEW,
    UNPAIRED,
    log_mean_ci,
    ratio_ci,
    t975,
    verdict,
    welch_ratio_ci,
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


@pytest.mark.parametrize("margin", [0.02, MIN_EFFECT])
def test_no_difference_between_equal_distributions(margin: float) -> None:
    rng = np.random.default_rng(3)
    verdicts = [
        verdict(*ratio_ci(rounds(rng, 5, 3, 0.05), rounds(rng, 5, 3, 0.05)), margin=margin)
        for _ in range(400)
    ]
    # At most 5 % false verdicts in expectation (fewer: the margin); 400 trials: sd 1.1 %.
    assert verdicts.count(SAME) / len(verdicts) >= 0.93
    if margin == MIN_EFFECT:  # 5 % noise per round never reaches beyond 10 %
        assert verdicts.count(SAME) == len(verdicts)


@pytest.mark.parametrize("true_ratio", [0.5, 0.7, 0.97, 1.0, 1.03, 1.4, 4.0])
def test_two_runs_give_the_same_verdict(true_ratio: float) -> None:
    """The acceptance of back-to-back runs, in simulation: 5 rounds with 5 % noise per
    round and figure (as measured on 2 cores) and a true ratio well away from the 10 %
    margin (one near it is a coin toss for any method): two independent runs give the
    same verdict in 99 % of 1000 pairs."""
    rng = np.random.default_rng(int(true_ratio * 100))

    def one_run() -> str:
        a = rounds(rng, 10.0, 5, 0.05)
        b = rounds(rng, 10.0 * true_ratio, 5, 0.05)
        return verdict(*ratio_ci(a, b))

    agree = sum(one_run() == one_run() for _ in range(1000))
    assert agree >= 990


def test_known_values() -> None:
    ratio, low, high = ratio_ci([10.0, 10.0, 10.0], [12.0, 12.0, 12.0])
    assert ratio == pytest.approx(1.2) and low == pytest.approx(1.2) and high == pytest.approx(1.2)
    centre, low, high = log_mean_ci([math.e, math.e**3])  # logs 1 and 3: mean 2, sd sqrt(2)
    assert centre == pytest.approx(math.e**2)
    assert math.log(high) - 2 == pytest.approx(12.7062, rel=1e-4)
    # Published t quantiles.
    assert t975(4) == pytest.approx(2.7764, rel=1e-4)
    assert t975(11) == pytest.approx(2.2010, rel=1e-4)
    assert t975(500) == pytest.approx(1.9647, rel=1e-4)


def test_small_differences_and_single_rounds() -> None:
    assert verdict(0.99, 0.985, 0.995) == SAME  # significant but within the margin
    assert verdict(0.95, 0.90, 1.01) == SAME  # CI contains 1
    assert verdict(1.05, 1.03, 1.08) == SAME  # beyond 2 %, not beyond the default 10 %
    assert verdict(1.05, 1.03, 1.08, margin=0.02) == SLOWER
    assert verdict(1.033, 1.020, 1.046, margin=0.02) == SAME  # the CI reaches into 2 %
    assert verdict(0.95, 0.93, 0.97, margin=0.02) == FASTER
    assert verdict(1.25, 1.12, 1.40) == SLOWER
    assert verdict(0.80, 0.70, 0.90) == FASTER  # 0.90 < 1 / 1.10
    assert verdict(0.85, 0.75, 0.92) == SAME  # 0.92 > 1 / 1.10
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
    from reproscope.report.aggregate import accuracy_table, agreement_table, runs_table

    index = {"dataset": "d", "content_digest": "sha256:0"}
    accuracy = accuracy_table([], index, {})
    runs = runs_table([], [])
    assert accuracy.empty and {"model", "system", "top1"} <= set(accuracy.columns)
    assert runs.empty and {"model", "system", "scenario", "repeat"} <= set(runs.columns)
    assert agreement_table([]).empty


def test_welch_between_groups() -> None:
    """Unpaired rounds: the ratio of geometric means and Welch's interval on the logs."""
    ratio, low, high = welch_ratio_ci([1.0, 1.0, 1.0], [2.0, 2.0])
    assert ratio == pytest.approx(2.0) and low == pytest.approx(2.0) == high
    # logs {0, 2} against {1, 3}: difference 1, se = sqrt(2/2 + 2/2), df = 2
    ratio, low, high = welch_ratio_ci([1.0, math.e**2], [math.e, math.e**3])
    assert ratio == pytest.approx(math.e)
    assert math.log(high) - 1 == pytest.approx(t975(2) * math.sqrt(2.0), rel=1e-6)
    assert math.isnan(welch_ratio_ci([1.0], [1.0, 2.0])[1])
    with pytest.raises(ValueError, match="positive"):
        welch_ratio_ci([1.0, 0.0], [1.0, 2.0])
    # Coverage: a true ratio of 1.5 lies inside about 95 % of the intervals.
    rng = np.random.default_rng(7)
    hits = 0
    for _ in range(400):
        low, high = welch_ratio_ci(rounds(rng, 10.0, 7, 0.05), rounds(rng, 15.0, 5, 0.1))[1:]
        hits += low <= 1.5 <= high
    assert 0.9 <= hits / 400 <= 0.99


def _timing_point(root, system: str, group: str, repeat: int, p50: float) -> str:
    """A minimal timing result of one configuration of model m on system."""
    import json

    path = root / f"{system}_{group}_{repeat}.json"
    job = dict(model="m", manifest="m-onnx", framework="onnxruntime", env="e", device="cpu")
    job.update(system=system, group=group, repeat=repeat, scenario="FixedBatch", batch_size=1)
    path.write_text(json.dumps({"job": job, "status": "ok", "metrics": {"p50_ms": p50}}))
    return str(path)


def test_comparisons_pair_inside_a_group_only(tmp_path) -> None:
    """Two systems' round jobs are different groups' rounds: their comparison is unpaired
    (Welch), and the row says so; the same configuration's rounds pair inside a group."""
    from reproscope.report.aggregate import comparisons_table

    files = [
        _timing_point(tmp_path, system, "m", r, base * (1.0 + 0.01 * r))
        for system, base in (("a", 10.0), ("b", 20.0))
        for r in range(4)
    ]
    table = comparisons_table(files)
    assert len(table) == 1
    row = table.iloc[0]
    assert row["kind"] == "system" and row["pairing"] == UNPAIRED and row["rounds"] == 4
    assert row["ratio_b_over_a"] == pytest.approx(2.0, rel=1e-3)
    assert row["verdict"] == SLOWER
