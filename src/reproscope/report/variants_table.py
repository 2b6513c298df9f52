"""Ablation and diagnosis tables: each variant against its base, image by image.

Each variant's exact McNemar test against its base gives ``p_value`` and ``significant``
(that test alone at 5 %); a study runs many (16 ablations by default), so ``p_value_holm``
is Holm's adjustment over the variants of one kind (ablations, or diagnosis candidates) and
``significant_holm`` says whether the change survives it (family-wise error 5 %)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from reproscope.plan.ablation import compare_hits, rank_diagnosis
from reproscope.report.aggregate import claim_for, image_hits
from reproscope.report.compare import holm
from reproscope.runtime import layout

DEFAULT_TOLERANCE = 1.0
ABLATION_COLUMNS = [
    "model",
    "framework",
    "variant",
    "overrides",
    "n_images",
    "top1",
    "top5",
    "delta_top1",
    "delta_top5",
    "lost",
    "gained",
    "significant",
    "p_value",
    "p_value_holm",
    "significant_holm",
    "kind",
    "field",
    "manifest",
    "base",
    "env",
    "device",
    "system",
    "status",
    "reason",
]


def variants_table(
    variant_files: list[str],
    index: dict[str, Any],
    manifests: dict[str, dict[str, Any]],
    variants: dict[str, dict[str, Any]],
) -> pd.DataFrame:
    rows = []
    for path in map(Path, variant_files):
        record = json.loads(path.read_text())
        job = record["job"]
        variant = variants[job["manifest"]]
        base_path = layout.base_result(path, job["manifest"], variant["base"])
        base_record = json.loads(base_path.read_text())
        row = {
            "model": job["model"],
            "framework": job["framework"],
            "variant": job["manifest"].split("~", 1)[1],
            "kind": variant["kind"],
            "field": variant["field"],
            "overrides": json.dumps(variant["overrides"], sort_keys=True),
            "manifest": job["manifest"],
            "base": variant["base"],
            "env": job["env"],
            "device": job["device"],
            "system": job["system"],
            "status": record["status"],
            "reason": record["reason"],
        }
        if record["status"] == "ok" and base_record["status"] == "ok":
            top1, top5 = image_hits(path, index, manifests[job["manifest"]])
            base1, base5 = image_hits(base_path, index, manifests[variant["base"]])
            row.update(
                n_images=len(top1),
                top1=100.0 * top1.mean(),
                top5=100.0 * top5.mean(),
                delta_top1=100.0 * (top1.mean() - base1.mean()),
                delta_top5=100.0 * (top5.mean() - base5.mean()),
                base_top1=100.0 * base1.mean(),
                **compare_hits(base1, top1),
            )
        elif base_record["status"] != "ok":
            row["reason"] = f"base run {base_record['status']}: {base_record['reason']}"
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return pd.DataFrame(columns=ABLATION_COLUMNS)
    extra = [c for c in table.columns if c not in ABLATION_COLUMNS]
    table = table.reindex(columns=ABLATION_COLUMNS + extra)
    adjusted = pd.Series(float("nan"), index=table.index)
    for _, family in table.groupby("kind"):
        adjusted[family.index] = holm(family["p_value"].to_numpy(dtype=float))
    table["p_value_holm"] = adjusted
    table["significant_holm"] = (adjusted < 0.05).astype(object).where(adjusted.notna())
    return table.sort_values(["kind", "base", "delta_top1", "variant"], ignore_index=True)


def diagnosis_table(
    variants: pd.DataFrame, dataset: str, manifests: dict[str, dict[str, Any]]
) -> pd.DataFrame:
    """For each diagnosed manifest: candidates ranked by how much of the gap they close."""
    tables = []
    candidates = variants[(variants["kind"] == "diagnosis") & variants["top1"].notna()]
    for (base, env, device, system), group in candidates.groupby(
        ["base", "env", "device", "system"]
    ):
        claim = claim_for(manifests[base]["claims"], dataset)
        tolerance = claim.get("tolerance", DEFAULT_TOLERANCE)
        ranked = rank_diagnosis(
            float(group["base_top1"].iloc[0]),
            claim["top1"],
            tolerance,
            group[["variant", "field", "overrides", "top1"]],
        )
        ranked.insert(0, "manifest", base)
        ranked.insert(1, "env", env)
        ranked.insert(2, "device", device)
        ranked.insert(3, "system", system)
        ranked.insert(4, "claimed_top1", claim["top1"])
        ranked.insert(5, "claim_dataset", claim["dataset"])
        ranked.insert(6, "measured_top1", float(group["base_top1"].iloc[0]))
        ranked.insert(7, "tolerance", tolerance)
        ranked["most_likely"] = (
            (ranked["rank"] == 1) & ranked["misses_claim"] & (ranked["gap_closed"] > 0)
        )
        tables.append(ranked)
    columns = [
        "manifest",
        "env",
        "device",
        "system",
        "claimed_top1",
        "claim_dataset",
        "measured_top1",
        "tolerance",
        "variant",
        "field",
        "overrides",
        "top1",
        "gap",
        "gap_closed",
        "misses_claim",
        "rank",
        "most_likely",
    ]
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=columns)
