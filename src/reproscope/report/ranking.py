"""The whole-system check (the seed paper's Pitfall 1): rank systems by compute alone and
by end-to-end time, per model, framework and batch size, and flag where they disagree.

End-to-end is the sum of the parts infer.py records for one batch: preprocessing,
host-to-device copy, compute, device-to-host copy and post-processing. A system whose
accelerator computes faster can still lose end to end through slower copies or a slower
host; looking at compute alone then picks the wrong system.
"""

from __future__ import annotations

import itertools

import pandas as pd

PARTS = ["preprocess_ms", "h2d_ms", "compute_ms", "d2h_ms", "postprocess_ms"]
CONTESTANT = ["system", "device", "env"]
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
    "compute_ms_a",
    "compute_ms_b",
    "end_to_end_ms_a",
    "end_to_end_ms_b",
    "faster_by_compute",
    "faster_end_to_end",
    "rankings_disagree",
]


def system_ranking(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per pair of (system, device, environment) that ran the same model and
    framework at the same batch size, medians over repeats of the FixedBatch breakdown."""
    columns = [f"breakdown_{p}" for p in PARTS]
    if runs.empty or not set(columns) <= set(runs.columns):
        return pd.DataFrame(columns=COLUMNS)
    ok = runs[(runs["status"] == "ok") & (runs["scenario"] == "FixedBatch")].dropna(subset=columns)
    keys = ["model", "framework", "batch_size", *CONTESTANT]
    medians = ok.groupby(keys)[columns].median().reset_index()
    medians["compute_ms"] = medians["breakdown_compute_ms"]
    medians["end_to_end_ms"] = medians[columns].sum(axis=1)
    rows = []
    for (model, framework, batch_size), group in medians.groupby(
        ["model", "framework", "batch_size"]
    ):
        for (_, a), (_, b) in itertools.combinations(group.iterrows(), 2):
            if a["system"] == b["system"] and a["device"] == b["device"]:
                continue  # the same system in two environments: environments.csv
            row = {"model": model, "framework": framework, "batch_size": batch_size}
            for side, run in (("a", a), ("b", b)):
                row.update({f"{k}_{side}": run[k] for k in CONTESTANT})
                row[f"compute_ms_{side}"] = run["compute_ms"]
                row[f"end_to_end_ms_{side}"] = run["end_to_end_ms"]
            row["faster_by_compute"] = _faster(row, "compute_ms")
            row["faster_end_to_end"] = _faster(row, "end_to_end_ms")
            rows.append(row)
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["rankings_disagree"] = table["faster_by_compute"] != table["faster_end_to_end"]
    return table.sort_values(
        ["model", "framework", "system_a", "device_a", "system_b", "device_b", "batch_size"],
        ignore_index=True,
    )


def _faster(row: dict, measure: str) -> str:
    a, b = row[f"{measure}_a"], row[f"{measure}_b"]
    side = "a" if a < b else "b" if b < a else None
    if side is None:
        return "tie"
    return "/".join(str(row[f"{k}_{side}"]) for k in CONTESTANT)
