"""Comparisons with confidence intervals and a verdict.

Method (stated in the README): two configurations A and B measured in the same rounds (round r
of A and of B ran back to back, interleaved with the study's other configurations). Each
configuration's figure is the median over rounds of its per-round figure (a latency median,
a throughput or a peak rate). The ratio is ``B / A``. Its 95 % CI is a paired hierarchical
percentile bootstrap: each replicate draws rounds with replacement (the same rounds for A and
B, keeping the pairing) and, where a round kept its per-query latencies, redraws the queries
inside every drawn round; so both the round-to-round and the within-round noise are in the
interval. The verdict is ``faster``/``slower`` only when the CI excludes 1 AND the ratio differs
from 1 by more than ``margin`` (2 %: the precision a measurement aims for); otherwise ``no
significant difference``. ``faster`` always means B is the better one (lower latency, or higher
throughput/rate).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

FASTER, SLOWER, SAME = "faster", "slower", "no significant difference"
MARGIN = 0.02
N_BOOT = 2000


@dataclass
class Rounds:
    """One configuration's measurement: a figure per round and, optionally, the samples
    (per-query latencies) the figure is the median of."""

    values: Sequence[float]
    samples: Sequence[Sequence[float]] | None = None


def _round_replicates(rounds: Rounds, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_rounds, n_boot): each round's figure recomputed on resampled queries, or repeated
    as it is when the round kept no samples."""
    values = np.asarray(rounds.values, dtype=np.float64)
    if rounds.samples is None:
        return np.repeat(values[:, None], n_boot, axis=1)
    out = np.empty((len(values), n_boot))
    for r, sample in enumerate(rounds.samples):
        x = np.asarray(sample, dtype=np.float64)
        if x.size == 0:
            out[r] = values[r]
            continue
        # Chunked so that a long round does not need an n_boot x n matrix at once.
        for start in range(0, n_boot, 250):
            stop = min(n_boot, start + 250)
            draws = rng.integers(0, x.size, size=(stop - start, x.size))
            out[r, start:stop] = np.median(x[draws], axis=1)
    return out


def _medians(replicates: np.ndarray, picks: np.ndarray) -> np.ndarray:
    """Per bootstrap replicate b: the median over the rounds ``picks[b]`` of their
    replicate-b figures."""
    return np.median(replicates[picks, np.arange(len(picks))[:, None]], axis=1)


def _interval(boot: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(boot, [tail, 100.0 - tail])
    return float(low), float(high)


def ratio_ci(
    a: Rounds, b: Rounds, n_boot: int = N_BOOT, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """``(ratio, ci_low, ci_high)`` of median(B) / median(A) over paired rounds."""
    n = len(a.values)
    if n == 0 or n != len(b.values):
        raise ValueError(f"paired rounds needed: A has {n}, B has {len(b.values)}")
    rng = np.random.default_rng(seed)
    ratio = float(np.median(b.values) / np.median(a.values))
    rep_a = _round_replicates(a, n_boot, rng)
    rep_b = _round_replicates(b, n_boot, rng)
    picks = rng.integers(0, n, size=(n_boot, n))
    boot = _medians(rep_b, picks) / _medians(rep_a, picks)
    return (ratio, *_interval(boot, level))


def median_ci(
    rounds: Rounds, n_boot: int = N_BOOT, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """``(median, ci_low, ci_high)`` of one configuration's median over rounds, by the same
    hierarchical bootstrap."""
    n = len(rounds.values)
    if n == 0:
        raise ValueError("median_ci() needs at least one round")
    rng = np.random.default_rng(seed)
    replicates = _round_replicates(rounds, n_boot, rng)
    picks = rng.integers(0, n, size=(n_boot, n))
    boot = _medians(replicates, picks)
    return (float(np.median(rounds.values)), *_interval(boot, level))


def verdict(
    ratio: float, low: float, high: float, lower_is_better: bool = True, margin: float = MARGIN
) -> str:
    """``faster``, ``slower`` or ``no significant difference`` for B relative to A."""
    if low <= 1.0 <= high or abs(ratio - 1.0) <= margin:
        return SAME
    b_lower = high < 1.0
    return FASTER if b_lower == lower_is_better else SLOWER
