"""The whole-system check (the seed paper's Pitfall 1): rank systems by compute alone and
by end-to-end time, per model, framework and batch size, and flag where they disagree.

End-to-end is the sum of the parts of one batch: preprocessing, host-to-device copy,
compute, device-to-host copy and post-processing. A system whose accelerator computes faster
can still lose end to end through slower copies or a slower host; looking at compute alone
then picks the wrong system.

Every round counts. Each round measures a configuration's FixedBatch run (copies and compute,
``latency_ms_p50``); the breakdown, measured at the first round's FixedBatch points only
(reproscope.runtime.latency.measures_breakdown), says which share of that run is compute and
adds the per-batch preprocessing and post-processing. So each round gives

    compute_r    = run_r * compute / (h2d + compute + d2h)
    end_to_end_r = run_r + preprocess + postprocess

(the breakdown's medians over the rounds that have one), and B is compared with A as
``comparisons.csv`` compares configurations (reproscope.report.compare): paired by round when
both ran in the same round jobs (two devices of one system), otherwise unpaired, Welch's test
on the logs (two systems, measured in separate jobs, perhaps on separate nodes). The intervals
cover the round-to-round variation of the run; the breakdown's split is taken as measured.
A system is ranked faster only when the 95 % CI of the ratio excludes 1; otherwise the row
says ``undetermined``, and ``rankings_disagree`` is True only where both rankings are
decided and name different systems.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd

from reproscope.report.compare import PAIRED, UNPAIRED, RatioTest, paired_test, welch_test

PARTS = ["preprocess_ms", "h2d_ms", "compute_ms", "d2h_ms", "postprocess_ms"]
CONTESTANT = ["system", "device", "env"]
UNDETERMINED = "undetermined (95 % CI includes 1)"
TOO_FEW = "undetermined (fewer than 2 rounds)"
MEASURES = ("compute", "end_to_end")
COLUMNS = [
    "model",
    "framework",
    "batch_size",
    "system_a",
    "device_a",
    "env_a",
    "system_b",
    "device_b",
    "env_b",
    "pairing",
    "rounds_a",
    "rounds_b",
    "compute_ms_a",
    "compute_ms_b",
    "compute_ratio_b_over_a",
    "compute_ci95_low",
    "compute_ci95_high",
    "end_to_end_ms_a",
    "end_to_end_ms_b",
    "end_to_end_ratio_b_over_a",
    "end_to_end_ci95_low",
    "end_to_end_ci95_high",
    "faster_by_compute",
    "faster_end_to_end",
    "rankings_disagree",
]


def _per_round(runs: pd.DataFrame) -> dict[str, Any] | None:
    """One contestant's per-round compute and end-to-end figures, or None without a
    breakdown to split its runs by."""
    split = runs[[f"breakdown_{p}" for p in PARTS]].dropna()
    if split.empty:
        return None
    part = {p: float(split[f"breakdown_{p}"].median()) for p in PARTS}
    run_ms = part["h2d_ms"] + part["compute_ms"] + part["d2h_ms"]
    rounds = runs.groupby("repeat")["latency_ms_p50"].median()
    return {
        "compute": rounds * (part["compute_ms"] / run_ms if run_ms > 0 else 1.0),
        "end_to_end": rounds + part["preprocess_ms"] + part["postprocess_ms"],
        "jobs": (runs["system"].iloc[0], runs["group"].iloc[0]),
    }


def _test(a: pd.Series, b: pd.Series, paired: bool) -> RatioTest:
    if paired:
        common = sorted(set(a.index) & set(b.index))
        return paired_test(a[common].tolist(), b[common].tolist())
    return welch_test(a.tolist(), b.tolist())


def system_ranking(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per pair of (system, device, environment) that ran the same model and
    framework at the same batch size: both rankings from every round, with 95 % CIs."""
    needed = {*(f"breakdown_{p}" for p in PARTS), "latency_ms_p50", "repeat"}
    if runs.empty or not needed <= set(runs.columns):
        return pd.DataFrame(columns=COLUMNS)
    ok = runs[
        (runs["status"] == "ok")
        & (runs["scenario"] == "FixedBatch")
        & (pd.to_numeric(runs["latency_ms_p50"], errors="coerce") > 0)
    ].copy()
    ok["group"] = ok["group"] if "group" in ok.columns else ok["model"]
    rows = []
    for (model, framework, batch_size), group in ok.groupby(["model", "framework", "batch_size"]):
        contestants = {
            key: figures
            for key, c in group.groupby(CONTESTANT)
            if (figures := _per_round(c)) is not None
        }
        for (key_a, a), (key_b, b) in itertools.combinations(sorted(contestants.items()), 2):
            if key_a[:2] == key_b[:2]:
                continue  # the same system and device in two environments: environments.csv
            paired = a["jobs"] == b["jobs"]
            row: dict[str, Any] = {"model": model, "framework": framework}
            row["batch_size"] = batch_size
            row.update({f"{k}_a": v for k, v in zip(CONTESTANT, key_a, strict=True)})
            row.update({f"{k}_b": v for k, v in zip(CONTESTANT, key_b, strict=True)})
            row["pairing"] = PAIRED if paired else UNPAIRED
            row["rounds_a"], row["rounds_b"] = len(a["compute"]), len(b["compute"])
            for measure in MEASURES:
                test = _test(a[measure], b[measure], paired)
                row[f"{measure}_ms_a"] = float(np.median(a[measure]))
                row[f"{measure}_ms_b"] = float(np.median(b[measure]))
                row[f"{measure}_ratio_b_over_a"] = test.ratio
                row[f"{measure}_ci95_low"], row[f"{measure}_ci95_high"] = test.ci95
                faster = _faster(test, row)
                row["faster_by_compute" if measure == "compute" else "faster_end_to_end"] = faster
            rows.append(row)
    table = pd.DataFrame(rows, columns=COLUMNS)
    decided = ~table["faster_by_compute"].str.startswith("undetermined", na=True) & ~table[
        "faster_end_to_end"
    ].str.startswith("undetermined", na=True)
    table["rankings_disagree"] = decided & (
        table["faster_by_compute"] != table["faster_end_to_end"]
    )
    return table.sort_values(
        ["model", "framework", "system_a", "device_a", "system_b", "device_b", "batch_size"],
        ignore_index=True,
    )


def _faster(test: RatioTest, row: dict[str, Any]) -> str:
    """The contestant whose time is lower with 95 % confidence, as system/device/env."""
    low, high = test.ci95
    if np.isnan(low):
        return TOO_FEW
    side = "b" if high < 1.0 else "a" if low > 1.0 else None
    if side is None:
        return UNDETERMINED
    return "/".join(str(row[f"{k}_{side}"]) for k in CONTESTANT)
