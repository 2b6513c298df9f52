"""The whole-system check: compute-only vs end-to-end rankings of systems (Pitfall 1),
from every round, with CIs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reproscope.report.compare import PAIRED, UNPAIRED
from reproscope.report.ranking import TOO_FEW, UNDETERMINED, system_ranking

ROUNDS = 5


def run(
    system: str,
    device: str,
    batch_size: int,
    compute: float,
    h2d: float,
    repeat: int = 0,
    run_ms: float | None = None,
) -> dict:
    """One round's FixedBatch row; round 0 carries the breakdown (as the runtime records it)
    and every round its run time (copies and compute)."""
    row = {
        "model": "resnet50-v1",
        "framework": "tensorflow",
        "env": "tf",
        "system": system,
        "group": "resnet50-v1",
        "device": device,
        "scenario": "FixedBatch",
        "batch_size": batch_size,
        "repeat": repeat,
        "status": "ok",
        "latency_ms_p50": run_ms if run_ms is not None else h2d + compute + 0.5,
    }
    parts = dict(preprocess=5.0, h2d=h2d, compute=compute, d2h=0.5, postprocess=0.1)
    row.update({f"breakdown_{k}_ms": v if repeat == 0 else np.nan for k, v in parts.items()})
    return row


def rounds_of(system: str, device: str, batch_size: int, compute: float, h2d: float) -> list:
    """ROUNDS rounds whose run times move by +-1 % around the breakdown's."""
    wobble = [1.0, 1.01, 0.99, 1.005, 0.995][:ROUNDS]
    return [
        run(system, device, batch_size, compute, h2d, r, (h2d + compute + 0.5) * w)
        for r, w in enumerate(wobble)
    ]


def test_compute_faster_but_end_to_end_slower_is_flagged() -> None:
    runs = pd.DataFrame(
        # Volta-like: faster GPU, slow interconnect; Pascal-like: the reverse.
        rounds_of("volta", "cuda", 8, compute=4.0, h2d=9.0)
        + rounds_of("pascal", "cuda", 8, compute=6.0, h2d=2.0)
        # At batch 64 the compute gap outweighs the copies: both rankings agree.
        + rounds_of("volta", "cuda", 64, compute=30.0, h2d=20.0)
        + rounds_of("pascal", "cuda", 64, compute=60.0, h2d=8.0)
    )
    table = system_ranking(runs).set_index("batch_size")
    assert len(table) == 2
    at8 = table.loc[8]
    assert at8["pairing"] == UNPAIRED  # two systems: separate round jobs
    assert at8["rounds_a"] == at8["rounds_b"] == ROUNDS
    assert at8["faster_by_compute"] == "volta/cuda/tf"
    assert at8["faster_end_to_end"] == "pascal/cuda/tf"
    assert bool(at8["rankings_disagree"])
    # a is pascal (sorted): end to end 5 + 6 + 2 + 0.5 + 0.1, volta 5 + 4 + 9 + 0.5 + 0.1
    assert at8["end_to_end_ms_a"] == pytest.approx(13.6) and at8["end_to_end_ms_b"] == 18.6
    assert at8["end_to_end_ci95_low"] < 18.6 / 13.6 < at8["end_to_end_ci95_high"]
    assert at8["compute_ci95_low"] < 4.0 / 6.0 < at8["compute_ci95_high"] < 1.0
    assert not bool(table.loc[64]["rankings_disagree"])


def test_every_round_counts_not_round_zero_alone() -> None:
    """Round 0 alone says b computes faster; the other rounds say the opposite, and the
    ranking follows all of them (with a CI), not the first."""
    a = [run("a", "cpu", 1, 10.0, 0.0, r, ms) for r, ms in enumerate([10.0, 10.1, 9.9] * 3)]
    b = [run("b", "cpu", 1, 9.0, 0.0, r, ms) for r, ms in enumerate([9.0] + [12.1, 11.9] * 4)]
    row = system_ranking(pd.DataFrame(a + b)).iloc[0]
    assert row["rounds_a"] == row["rounds_b"] == 9
    assert row["compute_ci95_low"] > 1.0 and row["faster_by_compute"] == "a/cpu/tf"
    assert row["compute_ms_b"] > row["compute_ms_a"]


def test_devices_of_one_system_pair_by_round_and_noise_gives_no_ranking() -> None:
    """Two devices of one system ran in the same round jobs: paired, and a round-wide
    disturbance cancels. Two systems a few per cent apart in noisy rounds: no ranking."""
    machine = [1.0, 1.5, 0.8, 1.2]
    cpu = [run("s", "cpu", 1, 10.0, 0.0, r, 10.0 * m) for r, m in enumerate(machine)]
    cuda = [run("s", "cuda", 1, 5.0, 0.0, r, 5.0 * m * 1.001**r) for r, m in enumerate(machine)]
    row = system_ranking(pd.DataFrame(cpu + cuda)).iloc[0]
    assert row["pairing"] == PAIRED
    assert row["compute_ci95_high"] < 0.52 and row["faster_by_compute"] == "s/cuda/tf"
    rng = np.random.default_rng(0)
    noisy = [
        run(system, "cpu", 1, 10.0, 0.0, r, base * float(np.exp(rng.normal(0, 0.1))))
        for system, base in (("x", 10.0), ("y", 10.2))
        for r in range(4)
    ]
    row = system_ranking(pd.DataFrame(noisy)).iloc[0]
    assert row["faster_by_compute"] == UNDETERMINED and not bool(row["rankings_disagree"])


def test_one_round_is_not_enough_failed_runs_and_environment_pairs_left_out() -> None:
    rows = [
        *rounds_of("a", "cpu", 1, compute=12.0, h2d=0.0),
        {**run("b", "cpu", 1, compute=1.0, h2d=0.0, repeat=1), "status": "failed"},
        *rounds_of("b", "cpu", 1, compute=11.0, h2d=0.0),
        # The same system and device in another environment: not a system pair.
        *[{**r, "env": "tf-old"} for r in rounds_of("b", "cpu", 1, compute=50.0, h2d=0.0)],
        # One round only: no interval, no ranking.
        run("c", "cpu", 1, compute=1.0, h2d=0.0),
    ]
    table = system_ranking(pd.DataFrame(rows))
    pairs = set(
        zip(table["env_a"], table["env_b"], table["system_a"], table["system_b"], strict=True)
    )
    assert ("tf", "tf", "a", "b") in pairs
    assert all(r.system_a != r.system_b for r in table.itertuples())
    row = table[(table["system_a"] == "a") & (table["system_b"] == "b")]
    row = row[(row["env_a"] == "tf") & (row["env_b"] == "tf")].iloc[0]
    assert row["compute_ms_a"] == pytest.approx(12.0 * 1.0, rel=0.01)
    assert row["compute_ms_b"] == pytest.approx(11.0, rel=0.01)
    assert row["faster_by_compute"] == "b/cpu/tf"
    with_c = table[table["system_b"] == "c"]
    assert len(with_c) and (with_c["faster_by_compute"] == TOO_FEW).all()
    assert not with_c["rankings_disagree"].any()


def test_no_pairs_gives_an_empty_table_with_its_columns() -> None:
    table = system_ranking(pd.DataFrame([run("only", "cpu", 1, compute=1.0, h2d=0.0)]))
    assert table.empty and "rankings_disagree" in table.columns
