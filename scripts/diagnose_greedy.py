"""Rule diagnose_greedy: round 1's single-field ranking, then greedy rounds."""

import sys
from pathlib import Path

# This checkout's package, whatever reproscope the interpreter has installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

import json
import os

import pandas as pd

from reproscope.plan.summaries import from_report
from reproscope.report.aggregate import claim_for
from reproscope.report.greedy import accuracy_evaluator, greedy_diagnosis
from reproscope.report.tables import write_csv
from reproscope.report.variants_table import DEFAULT_TOLERANCE

snakemake = snakemake  # noqa: F821, PLW0127 (injected by Snakemake)

index = json.loads(Path(snakemake.input.index).read_text())
round1 = pd.read_csv(snakemake.input.round1)
tables = []
with open(snakemake.log[0], "w") as log:
    for name, spec in from_report(snakemake.params.diagnosed).items():
        group = spec["group"]
        rows = round1[
            (round1["manifest"] == name)
            & (round1["env"] == group["env"])
            & (round1["device"] == group["device"])
            & (round1["system"] == group["system"])
        ]
        if rows.empty:
            log.write(f"{name}: no round-1 result, skipped\n")
            continue
        claim = claim_for(spec["data"]["claims"], index["dataset"])
        evaluate = accuracy_evaluator(
            spec["job"],
            spec["python"],
            os.environ["REPROSCOPE_SRC"],
            index,
            spec["labels"],
            Path(snakemake.params.caches),
            Path(snakemake.params.work) / name,
            snakemake.threads,
            log,
        )
        table = greedy_diagnosis(
            spec["data"],
            rows[["variant", "field", "overrides", "top1"]],
            float(rows["measured_top1"].iloc[0]),
            claim["top1"],
            claim.get("tolerance", DEFAULT_TOLERANCE),
            evaluate,
        )
        table.insert(0, "manifest", name)
        table.insert(1, "claimed_top1", claim["top1"])
        table.insert(2, "measured_top1", float(rows["measured_top1"].iloc[0]))
        tables.append(table)
        for row in table[table["chosen"]].itertuples():
            log.write(
                f"{name}: round {row.round} fixes {row.field} ({row.variant}), "
                f"top-1 {row.start_top1:.1f} -> {row.top1:.1f}, closes {row.gap_closed:.1f}\n"
            )
write_csv(pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(), snakemake.output[0])
