"""Rules compare_variants and diagnose_variants: one kind of variant against its bases."""

import sys
from pathlib import Path

# This checkout's package, whatever reproscope the interpreter has installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821


import json

from reproscope.plan.summaries import from_report
from reproscope.report.provenance import check_results
from reproscope.report.tables import write_csv
from reproscope.report.variants_table import diagnosis_table, variants_table

snakemake = snakemake  # noqa: F821, PLW0127 (injected by Snakemake)

check_results([*snakemake.input.base, *snakemake.input.variants], dict(snakemake.params.jobs))
index = json.loads(Path(snakemake.input.index).read_text())
table = variants_table(
    list(snakemake.input.variants),
    index,
    from_report(snakemake.params.manifests),
    from_report(snakemake.params.variants),
)
if snakemake.params.kind == "diagnosis":
    diagnosis = diagnosis_table(table, index["dataset"], from_report(snakemake.params.manifests))
    write_csv(diagnosis, snakemake.output.table)
    with open(snakemake.log[0], "w") as log:
        for row in diagnosis[diagnosis["most_likely"]].itertuples():
            log.write(f"{row.manifest}: most likely mis-stated field {row.field} ({row.variant})\n")
else:
    write_csv(table, snakemake.output.table)
    Path(snakemake.log[0]).write_text(f"{len(table)} variants compared with their bases\n")
