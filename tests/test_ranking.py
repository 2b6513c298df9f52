"""The whole-system check: compute-only vs end-to-end rankings of systems (Pitfall 1)."""

from __future__ import annotations

import pandas as pd

from reproscope.report.ranking import system_ranking


def run(system: str, device: str, batch_size: int, compute: float, h2d: float) -> dict:
    return {
        "model": "resnet50-v1",
        "framework": "tensorflow",
        "env": "tf",
        "system": system,
        "device": device,
        "scenario": "FixedBatch",
        "batch_size": batch_size,
        "status": "ok",
        "breakdown_preprocess_ms": 5.0,
        "breakdown_h2d_ms": h2d,
        "breakdown_compute_ms": compute,
        "breakdown_d2h_ms": 0.5,
        "breakdown_postprocess_ms": 0.1,
    }


def test_compute_faster_but_end_to_end_slower_is_flagged() -> None:
    runs = pd.DataFrame(
        [
            # Volta-like: faster GPU, slow interconnect; Pascal-like: the reverse.
            run("volta", "cuda", 8, compute=4.0, h2d=9.0),
            run("pascal", "cuda", 8, compute=6.0, h2d=2.0),
            # At batch 64 the compute gap outweighs the copies: both rankings agree.
            run("volta", "cuda", 64, compute=30.0, h2d=20.0),
            run("pascal", "cuda", 64, compute=60.0, h2d=8.0),
        ]
    )
    table = system_ranking(runs).set_index("batch_size")
    assert len(table) == 2
    at8 = table.loc[8]
    assert at8["faster_by_compute"] == "volta/cuda/tf"
    assert at8["faster_end_to_end"] == "pascal/cuda/tf"
    assert bool(at8["rankings_disagree"])
    assert at8["end_to_end_ms_a"] + at8["end_to_end_ms_b"] == (5 + 6 + 2 + 0.6) + (5 + 4 + 9 + 0.6)
    assert not bool(table.loc[64]["rankings_disagree"])


def test_medians_over_repeats_failed_runs_and_environment_pairs_left_out() -> None:
    rows = [
        run("a", "cpu", 1, compute=10.0, h2d=0.0),
        run("a", "cpu", 1, compute=12.0, h2d=0.0),
        run("a", "cpu", 1, compute=100.0, h2d=0.0),  # median of the three: 12
        {**run("b", "cpu", 1, compute=1.0, h2d=0.0), "status": "failed"},
        run("b", "cpu", 1, compute=11.0, h2d=0.0),
        # The same system and device in another environment: not a system pair.
        {**run("b", "cpu", 1, compute=50.0, h2d=0.0), "env": "tf-old"},
    ]
    table = system_ranking(pd.DataFrame(rows))
    pairs = set(
        zip(table["env_a"], table["env_b"], table["system_a"], table["system_b"], strict=True)
    )
    assert ("tf", "tf", "a", "b") in pairs
    assert all(r.system_a != r.system_b for r in table.itertuples())
    row = table[(table["env_a"] == "tf") & (table["env_b"] == "tf")].iloc[0]
    assert row["compute_ms_a"] == 12.0 and row["compute_ms_b"] == 11.0
    assert row["faster_by_compute"] == "b/cpu/tf"


def test_no_pairs_gives_an_empty_table_with_its_columns() -> None:
    table = system_ranking(pd.DataFrame([run("only", "cpu", 1, compute=1.0, h2d=0.0)]))
    assert table.empty and "rankings_disagree" in table.columns
